"""`widecol launch`: every node of a cluster file as a child process, for development.

How this works. Nodes start one at a time, seeds first, each as `widecol serve --config FILE --node NAME` with
its output appended to a log file beside its data directory (data/n1 -> data/n1.log). The launcher waits for
the node's "ready" line before starting the next, so that each new node chooses its tokens knowing the ring so
far. Then it watches: a node that exits is reported. Ctrl-C (SIGINT) or SIGTERM stops every node with SIGTERM,
waits for each to stop cleanly (memtables flushed), and kills any that has not after `stop_timeout` seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from widecol.config import NodeConfig, node_config, node_names
from widecol.errors import ConfigError

READY = "ready"


@dataclass
class Child:
    config: NodeConfig
    log_path: Path
    process: subprocess.Popen
    log: IO[bytes]
    log_start: int  # where this run's output begins in the log


class _Stop(Exception):
    pass


def launch(path: str | Path, *, ready_timeout: float = 60.0, stop_timeout: float = 30.0,
           out: IO[str] = sys.stdout) -> int:
    """Run every node of cluster file PATH until interrupted. Returns the exit status."""
    path = Path(path)
    configs = [node_config(path, name) for name in node_names(path)]
    seeds = {seed.rpartition(":")[0] for seed in configs[0].seeds} if configs else set()
    configs.sort(key=lambda c: c.address not in seeds)
    children: list[Child] = []

    def stop(signum: int, _frame: object) -> None:
        raise _Stop

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        for config in configs:
            child = _start(path, config)
            children.append(child)
            if not _wait_ready(child, ready_timeout):
                print(f"{config.name}: did not become ready; see {child.log_path}", file=out, flush=True)
                return 1
            print(f"{config.name} up: cql {config.address}:{config.native_port}, internode "
                  f"{config.address}:{config.internode_port}, data {config.data_dir}, log {child.log_path}",
                  file=out, flush=True)
        print(f"cluster '{configs[0].cluster_name}' up: {len(children)} nodes. Ctrl-C stops them all.",
              file=out, flush=True)
        running = set(range(len(children)))
        while running:
            for i in sorted(running):
                code = children[i].process.poll()
                if code is not None:
                    running.discard(i)
                    print(f"{children[i].config.name} exited with status {code}; see {children[i].log_path}",
                          file=out, flush=True)
            time.sleep(0.5)
        return 1
    except (KeyboardInterrupt, _Stop):
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
        with _ignoring_signals():
            _stop_all(children, stop_timeout, out)


class _ignoring_signals:
    """Stopping must finish even if the user presses Ctrl-C again."""

    def __enter__(self) -> None:
        self.saved = signal.signal(signal.SIGINT, signal.SIG_IGN), signal.signal(signal.SIGTERM, signal.SIG_IGN)

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.saved[0])
        signal.signal(signal.SIGTERM, self.saved[1])


def _start(path: Path, config: NodeConfig) -> Child:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    log_path = config.data_dir.parent / f"{config.data_dir.name}.log"
    log = log_path.open("ab")
    log_start = log_path.stat().st_size
    process = subprocess.Popen(
        [sys.executable, "-m", "widecol.cli", "serve", "--config", str(path), "--node", config.name],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C reaches the launcher only; it stops the nodes itself
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    return Child(config, log_path, process, log, log_start)


def _wait_ready(child: Child, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    with child.log_path.open("rb") as f:
        f.seek(child.log_start)
        seen = b""
        while time.monotonic() < deadline:
            seen += f.read()
            if f"node {child.config.name}: {READY}".encode() in seen:
                return True
            if child.process.poll() is not None:
                return False
            time.sleep(0.1)
    return False


def _stop_all(children: list[Child], timeout: float, out: IO[str]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.process.wait(max(0.0, deadline - time.monotonic()))
            print(f"{child.config.name} stopped", file=out, flush=True)
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
            print(f"{child.config.name} killed after {timeout:g} s", file=out, flush=True)
        child.log.close()


def main(config: str | None) -> int:
    path = Path(config or "cluster.toml")
    if not path.exists():
        raise ConfigError(f"{path}: no such cluster file")
    return launch(path)
