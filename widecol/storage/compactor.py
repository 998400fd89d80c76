"""The worker: a child process that merges clean SSTables and writes packed memtables, off the node's interpreter lock.

How this works. Python runs one thread at a time, so a compaction or a flush in a background thread takes its CPU
from the writers. Two kinds of work need nothing from the node's process but bytes, and go to one worker process
per engine, started on first use:
- a merge of clean SSTables (no tombstone, no TTL cell: nothing to purge and nothing that depends on data outside
  the compaction), which most compactions of a write-heavy table are. A request names the table's folder, the input
  generations and the output generation; the worker merges them with the same code as an in-process compaction
  (compaction.merge_clean).
- a flush of a memtable whose partitions are all in packed form (write-once data: each partition one msgpack
  fragment). The request gives the output generation and the statistics, and the sorted (sort key, (key,
  fragment)) pairs follow in chunks, each packed by msgpack in one C-level pass; the worker feeds them to the same
  writer calls as an in-process flush, so the SSTable is the same, byte for byte. A flush finds the worker busy
  with a merge (or closed) at once, without waiting, and is then written in the node's process.
Either way the worker writes the output durably under its final names and answers with its statistics. The engine
then installs the output in the manifest (and, for a merge, deletes the inputs), so a crash of either process at any
point leaves the previous state live (an output not yet in the manifest is removed at the next open). Requests and
answers are msgpack values behind a 4-byte length, over the worker's stdin and stdout; the worker exits when its
stdin closes, and stops its work (removing its output) at its next chunk once it finds that the engine's process has
died (its parent changed), so an orphan stops within milliseconds. The engine records the output's generation in
the manifest's next_generation before handing it out, so no later SSTable reuses it even if an orphan writes a file
or two after a restart's clean-up; such strays are in no manifest, and the next open removes them. Closing the
engine (after its last flush) kills a busy worker: a merge in flight is Interrupted. A flush whose worker dies is
written in the node's process instead.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO

import msgpack

_LENGTH = struct.Struct(">I")
FLUSH_CHUNK = 8192  # partitions a message in a flush: about 1.5 MB of 100-byte rows


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
            return self._exchange(lambda stdin: _send(stdin, {
                "directory": str(directory), "inputs": inputs, "generation": generation, "expected": expected}))

    def flush(self, directory: Path, generation: int, items: Sequence, stats: Sequence[int]) -> dict | None:
        """Write ITEMS, a frozen memtable's partitions in packed form as sorted (sort key, (key, fragment)) pairs
        whose summed statistics are STATS (memtable.EMPTY_STATS), as SSTable GENERATION of the table in
        DIRECTORY, durably; returns its statistics. None, having done nothing, while the worker is merging or
        closed: the caller writes the SSTable itself. Raises as run() does.

        The pairs go over in chunks of FLUSH_CHUNK, each packed by msgpack in one C-level pass: this process's
        share of a flush is that pass and the sort, and the writing (most of a flush) runs on another core."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._closed:
                return None

            def send(stdin: IO[bytes]) -> None:
                starts = range(0, len(items), FLUSH_CHUNK)
                _send(stdin, {"flush": str(directory), "generation": generation, "expected": len(items),
                              "stats": list(stats), "chunks": len(starts)})
                pack = msgpack.Packer().pack
                for i in starts:
                    payload = pack(items[i : i + FLUSH_CHUNK])
                    stdin.write(_LENGTH.pack(len(payload)))
                    stdin.write(payload)
                stdin.flush()

            return self._exchange(send)
        finally:
            self._lock.release()

    def _exchange(self, send: Callable[[IO[bytes]], None]) -> dict:
        """SEND a request to the worker (started if need be) and return its answer's statistics (lock held)."""
        if self._closed:
            raise Interrupted
        if self._proc is None or self._proc.poll() is not None:
            self._proc = self._start()
            if self._closed:  # close() ran while the worker started, and found no process to stop
                self._proc.kill()
                self._proc.wait()
                raise Interrupted
        proc = self._proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            send(proc.stdin)
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
    """The worker's loop: merge or flush what each request names, answer, until REQUESTS ends. A merge stops (and
    removes its output) as soon as the worker finds itself orphaned: PARENT, the engine's process, has died."""
    from widecol.storage.compaction import merge_clean

    def orphaned() -> bool:
        return os.getppid() != parent

    while True:
        request = _receive(requests)
        if not isinstance(request, dict) or orphaned():
            return
        reply: dict[str, object]
        try:
            if "flush" in request:
                reply = {"stats": _flush(request, requests, orphaned)}
            else:
                reply = {"stats": merge_clean(Path(request["directory"]), request["inputs"], request["generation"],
                                              request["expected"], orphaned)}
        except _StreamEnded:
            return
        except Exception as e:  # noqa: BLE001 - reported to the engine, which surfaces it
            reply = {"error": f"{type(e).__name__}: {e}"}
        try:
            _send(replies, reply)
        except OSError:  # the engine is gone (BrokenPipeError): nobody is waiting
            return


class _StreamEnded(Exception):
    """The engine's side of the pipe closed in the middle of a request."""


def _flush(request: dict, requests: IO[bytes], orphaned: Callable[[], bool]) -> dict:
    """Write the SSTable a flush request describes from the chunks that follow it (Compactor.flush). Every chunk is
    read even after a failure, so the next message read is the next request."""
    from widecol.storage.sstable.writer import SSTableWriter

    writer = SSTableWriter(Path(request["flush"]), request["generation"], request["expected"])
    failure: Exception | None = None
    try:
        for _ in range(request["chunks"]):
            chunk = _receive(requests)
            if not isinstance(chunk, list) or orphaned():
                raise _StreamEnded
            if failure is None:
                try:
                    writer.add_fragments(chunk, None)
                except Exception as e:  # noqa: BLE001 - answered once the request is read whole
                    failure = e
        if failure is not None:
            raise failure
        writer.add_fragments((), request["stats"])
        if orphaned():
            raise _StreamEnded
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


if __name__ == "__main__":
    serve(sys.stdin.buffer, sys.stdout.buffer, int(os.environ.get("WIDECOL_COMPACTOR_PARENT", "0")) or os.getppid())
    os._exit(0)  # not through the interpreter's exit, which would flush a stdout whose reader may be gone
