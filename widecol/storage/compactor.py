"""The compaction worker: a child process that merges SSTables which need no purging, off the node's interpreter lock.

How this works. Python runs one thread at a time, so a compaction in a background thread takes its CPU from the
writers. Most compactions in a write-heavy table merge clean SSTables (no tombstone, no TTL cell: nothing to purge
and nothing that depends on data outside the compaction), and such a merge needs nothing but the input files. The
engine hands those to one worker process per engine, started on first use: a request names the table's folder,
the input generations and the output generation; the worker merges them with the same code as an in-process
compaction (compaction.merge_clean), writes the output durably under its final names and answers with its
statistics. The engine then installs the output in the manifest and deletes the inputs, as for any compaction, so
a crash of either process at any point leaves the inputs live (an output not yet in the manifest is removed at the
next open). Requests and answers are msgpack maps behind a 4-byte length, over the worker's stdin and stdout; the
worker exits when its stdin closes, and a merge stops at its next chunk of blocks once the worker finds that the
engine's process has died (its parent changed), so an orphan stops within milliseconds. The engine records the
output's generation in the manifest's next_generation before handing it out, so no later SSTable reuses it even if
an orphan writes a file or two after a restart's clean-up; such strays are in no manifest, and the next open
removes them. Closing the engine kills a busy worker: the compaction is Interrupted.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO

import msgpack

_LENGTH = struct.Struct(">I")


class Interrupted(Exception):
    """The worker was stopped (the engine is closing) or died: the compaction did not happen."""


class WorkerFailed(Exception):
    """The worker reported an error while merging."""


def _send(stream: IO[bytes], message: object) -> None:
    payload = msgpack.packb(message)
    stream.write(_LENGTH.pack(len(payload)) + payload)
    stream.flush()


def _receive(stream: IO[bytes]) -> object | None:
    header = stream.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    payload = stream.read(length)
    if len(payload) < length:
        return None
    return msgpack.unpackb(payload)


class Compactor:
    """The engine's handle on its worker process. run() blocks its calling thread (not the interpreter lock)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._closed = False
        self.pid: int | None = None

    def _start(self) -> subprocess.Popen:
        root = str(Path(__file__).resolve().parents[2])  # the folder holding the widecol package
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
               "WIDECOL_COMPACTOR_PARENT": str(os.getpid())}
        proc = subprocess.Popen(
            [sys.executable, "-m", "widecol.storage.compactor"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            env=env,
        )
        self.pid = proc.pid
        return proc

    def run(self, directory: Path, inputs: list[int], generation: int, expected: int) -> dict:
        """Merge the clean SSTables INPUTS of the table in DIRECTORY into SSTable GENERATION, durably; returns its
        statistics. Raises Interrupted if the worker is stopped or dies meanwhile, WorkerFailed on its error."""
        with self._lock:
            if self._closed:
                raise Interrupted
            if self._proc is None or self._proc.poll() is not None:
                self._proc = self._start()
            proc = self._proc
            assert proc.stdin is not None and proc.stdout is not None
            try:
                _send(proc.stdin, {"directory": str(directory), "inputs": inputs, "generation": generation,
                                   "expected": expected})
                reply = _receive(proc.stdout)
            except (BrokenPipeError, OSError, ValueError):
                reply = None
            if not isinstance(reply, dict):
                self._proc = None
                proc.kill()
                proc.wait()
                raise Interrupted
            if "error" in reply:
                raise WorkerFailed(reply["error"])
            return reply["stats"]

    def close(self) -> None:
        """Stop the worker, interrupting a merge in progress. Idempotent."""
        self._closed = True
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.kill()  # a merge in flight is abandoned: its output is not in any manifest
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


def serve(requests: IO[bytes], replies: IO[bytes], parent: int) -> None:
    """The worker's loop: merge what each request names, answer, until REQUESTS ends. A merge stops (and removes
    its output) as soon as the worker finds itself orphaned: PARENT, the engine's process, has died."""
    from widecol.storage.compaction import merge_clean

    def orphaned() -> bool:
        return os.getppid() != parent

    while True:
        request = _receive(requests)
        if not isinstance(request, dict) or orphaned():
            return
        reply: dict[str, object]
        try:
            reply = {"stats": merge_clean(Path(request["directory"]), request["inputs"], request["generation"],
                                          request["expected"], orphaned)}
        except Exception as e:  # noqa: BLE001 - reported to the engine, which surfaces it
            reply = {"error": f"{type(e).__name__}: {e}"}
        try:
            _send(replies, reply)
        except OSError:  # the engine is gone (BrokenPipeError): nobody is waiting
            return


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer, int(os.environ.get("WIDECOL_COMPACTOR_PARENT", "0")) or os.getppid())
    os._exit(0)  # not through the interpreter's exit, which would flush a stdout whose reader may be gone
