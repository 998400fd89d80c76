"""Real local clusters for tests and benchmarks: `widecol serve` processes on 127.0.x.y loopback addresses.

Each LocalCluster gets its own third octet and ports, so clusters of different tests (and of parallel runs) never
share an address. Nodes log to files in the cluster's directory; `wait_log` waits for a line to appear, and
`wait_view` until a node sees others up or down. `session()` needs the cassandra-driver package (the test extra).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from widecol.client import connect


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_port(host: str = "127.0.0.1") -> int:
    return _free_port(host)


@contextmanager
def single_node(root: Path, cluster: str = "test") -> Iterator[tuple[subprocess.Popen, int, Path]]:
    """One `widecol serve` of a one-node cluster file on 127.0.0.1 (free native and internode ports), logging to
    ROOT/server.log: yields (process, native port, log) once it listens. On exit it is stopped with SIGTERM, and
    AssertionError is raised unless it stopped cleanly with no traceback or internal error in its log."""
    port = free_port()
    (root / "c.toml").write_text(
        f'[cluster]\nname = "{cluster}"\nnum_tokens = 4\n[[nodes]]\nname = "n1"\naddress = "127.0.0.1"\n'
        f'native_port = {port}\ninternode_port = {free_port()}\ndata_dir = "n1"\n')
    log = root / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "widecol.cli", "serve", "--config", "c.toml", "--node", "n1"],
                                cwd=root, stderr=out)
    try:
        wait_until(lambda: f"native protocol listening on 127.0.0.1:{port}" in log.read_text()
                   or proc.poll() is not None, 30, "the node to listen")
        assert proc.poll() is None, log.read_text()
        yield proc, port, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        finally:
            proc.kill()
            proc.wait()
    text = log.read_text()
    assert code == 0 and "stopped cleanly" in text, text
    assert "internal error" not in text and "Traceback" not in text, text


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


class LocalCluster:
    def __init__(self, root: Path, size: int, *, hints: bool = True, interval_ms: int = 200,
                 num_tokens: int = 8, extra: str = "") -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.root = root
        octet = random.randint(2, 250)
        self.hosts = {f"n{i + 1}": f"127.0.{octet}.{i + 1}" for i in range(size)}
        self.native_port = _free_port(self.hosts["n1"])
        self.internode_port = _free_port(self.hosts["n1"])
        nodes = "".join(
            f'[[nodes]]\nname = "{name}"\naddress = "{host}"\nnative_port = {self.native_port}\n'
            f'internode_port = {self.internode_port}\ndata_dir = "data/{name}"\n\n'
            for name, host in self.hosts.items()
        )
        self.file = root / "cluster.toml"
        self.file.write_text(
            f'[cluster]\nname = "test"\nnum_tokens = {num_tokens}\nseeds = ["{self.hosts["n1"]}"]\n\n'
            f"[gossip]\ninterval_ms = {interval_ms}\n\n[hints]\nenabled = {'true' if hints else 'false'}\n\n"
            f"[timeouts]\nwrite_ms = 2000\nread_ms = 3000\n\n{extra}\n{nodes}"
        )
        self.procs: dict[str, subprocess.Popen] = {}
        self.log_offsets: dict[str, int] = {}

    def log_path(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def start(self, name: str, wait: bool = True) -> None:
        log = self.log_path(name)
        self.log_offsets[name] = log.stat().st_size if log.exists() else 0
        with log.open("ab") as out:
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "widecol.cli", "serve", "--config", str(self.file), "--node", name],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        if wait:
            self.wait_log(name, f"node {name}: ready", timeout=60)

    def start_all(self) -> LocalCluster:
        for name in self.hosts:
            self.start(name)
        for name in self.hosts:
            self.wait_view(name, up=set(self.hosts))
        return self

    def log_text(self, name: str) -> str:
        data = self.log_path(name).read_bytes()[self.log_offsets.get(name, 0):]
        return data.decode(errors="replace")

    def wait_log(self, name: str, text: str, timeout: float = 30.0) -> None:
        def seen() -> bool:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None and text not in self.log_text(name):
                raise AssertionError(f"{name} exited ({proc.returncode}):\n{self.log_text(name)[-3000:]}")
            return text in self.log_text(name)
        wait_until(seen, timeout, f"{text!r} in {name}'s log")

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, self.log_text(name)[-3000:]

    def stop_all(self) -> None:
        """SIGTERM every node, then wait until each has exited (its storage closed)."""
        stopping = [self.procs.pop(name) for name in list(self.procs)]
        for proc in stopping:
            proc.send_signal(signal.SIGTERM)
        for proc in stopping:
            proc.wait(timeout=60)

    def kill_all(self) -> None:
        for name in list(self.procs):
            self.kill(name)

    # -- what nodes see ------------------------------------------------------------------------------------------

    def session(self, name: str, whitelist: bool = True) -> tuple[Any, Any]:
        """A cassandra-driver (cluster, session) that talks only to NAME (or, whitelist=False, to every node)."""
        from cassandra import ConsistencyLevel
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import FallthroughRetryPolicy, RoundRobinPolicy, WhiteListRoundRobinPolicy

        host = self.hosts[name]
        policy = WhiteListRoundRobinPolicy([host]) if whitelist else RoundRobinPolicy()
        profile = ExecutionProfile(load_balancing_policy=policy, consistency_level=ConsistencyLevel.ONE,
                                   request_timeout=20, retry_policy=FallthroughRetryPolicy())
        cluster = Cluster([host], port=self.native_port, execution_profiles={EXEC_PROFILE_DEFAULT: profile},
                          protocol_version=4, connect_timeout=10, control_connection_timeout=10)
        return cluster, cluster.connect()

    def ring(self, name: str, keyspace: str = "") -> dict[str, Any]:
        """system_views.ring as NAME sees it: address -> row."""
        with connect(f"{self.hosts[name]}:{self.native_port}", timeout=5) as client:
            result = client.execute(f"SELECT * FROM system_views.ring WHERE keyspace_name = '{keyspace}'")
            return {r["address"]: SimpleNamespace(**r) for r in result.as_dicts()}

    def wait_view(self, name: str, up: set[str] = frozenset(), down: set[str] = frozenset(),  # type: ignore[assignment]
                  timeout: float = 30.0) -> None:
        """Wait until NAME sees the nodes UP as UN and those DOWN as DN."""
        want = {self.hosts[n]: "UN" for n in up} | {self.hosts[n]: "DN" for n in down}

        def ok() -> bool:
            try:
                ring = self.ring(name)
            except Exception:  # noqa: BLE001 - the node may still be starting
                return False
            return all(addr in ring and ring[addr].state == state for addr, state in want.items())
        wait_until(ok, timeout, f"{name} to see {want}")
