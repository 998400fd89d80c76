"""Cluster benchmark: a three-node local cluster against one node, through the cassandra-driver.

Starts `widecol serve` processes on loopback addresses (127.0.99.1-3), creates a keyspace (RF 3 on the cluster,
RF 1 on the single node) and measures single-row writes, reads and a 50/50 mix at ONE and at QUORUM with many
requests in flight (token-aware routing), printing operations per second and p50/p99 latency.

    python bench/cluster.py [--ops 20000] [--concurrency 64]

Not a test: figures depend on the machine. All nodes share this machine's cores, so a three-node cluster does
three times the work of one node on the same CPUs; the ratio shows the coordinator's overhead, not scaling.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cassandra import ConsistencyLevel
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
from cassandra.policies import RoundRobinPolicy, TokenAwarePolicy


def free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_cluster(root: Path, size: int, octet: int) -> tuple[list[subprocess.Popen], list[str], int]:
    hosts = [f"127.0.{octet}.{i + 1}" for i in range(size)]
    native, internode = free_port(hosts[0]), free_port(hosts[0])
    nodes = "".join(f'[[nodes]]\nname = "n{i + 1}"\naddress = "{h}"\nnative_port = {native}\n'
                    f'internode_port = {internode}\ndata_dir = "n{i + 1}"\n\n' for i, h in enumerate(hosts))
    (root / "cluster.toml").write_text(f'[cluster]\nname = "bench"\nnum_tokens = 16\nseeds = ["{hosts[0]}"]\n\n{nodes}')
    procs = []
    for i in range(size):
        log = root / f"n{i + 1}.log"
        with log.open("wb") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "widecol.cli", "serve", "--config", str(root / "cluster.toml"),
                 "--node", f"n{i + 1}"],
                stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}))
        deadline = time.monotonic() + 60
        while b"ready" not in log.read_bytes():
            if time.monotonic() > deadline or procs[-1].poll() is not None:
                raise SystemExit(f"n{i + 1} did not start:\n{log.read_text()}")
            time.sleep(0.1)
    time.sleep(2)  # let gossip settle so every node sees every other
    return procs, hosts, native


def run(session, statement, args: list, concurrency: int) -> tuple[float, list[float]]:
    """Execute STATEMENT once per ARGS with at most CONCURRENCY in flight: (seconds, latencies)."""
    latencies: list[float] = []
    lock = threading.Lock()
    done = threading.Event()
    it = iter(args)
    state = {"in_flight": 0, "errors": 0}

    def launch() -> None:
        with lock:
            a = next(it, None)
            if a is None:
                if state["in_flight"] == 0:
                    done.set()
                return
            state["in_flight"] += 1
        t0 = time.perf_counter()
        future = session.execute_async(statement, a)
        future.add_callbacks(finished, failed, callback_args=(t0,), errback_args=(t0,))

    def finished(_rows, t0: float) -> None:
        latencies.append(time.perf_counter() - t0)
        with lock:
            state["in_flight"] -= 1
        launch()

    def failed(_exc, t0: float) -> None:
        state["errors"] += 1
        finished(None, t0)

    start = time.perf_counter()
    for _ in range(concurrency):
        launch()
    done.wait()
    if state["errors"]:
        print(f"  ({state['errors']} errors)")
    return time.perf_counter() - start, latencies


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))] * 1000


def measure(name: str, hosts: list[str], port: int, rf: int, ops: int, concurrency: int) -> list[tuple]:
    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(RoundRobinPolicy()), request_timeout=30)
    cluster = Cluster(hosts[:1], port=port, protocol_version=4, execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    session = cluster.connect()
    session.execute(f"CREATE KEYSPACE IF NOT EXISTS b WITH replication = {{'class': 'SimpleStrategy', "
                    f"'replication_factor': {rf}}}")
    session.execute("CREATE TABLE IF NOT EXISTS b.kv (k int PRIMARY KEY, v blob)")
    value = os.urandom(100)
    results = []
    for level_name in ("ONE", "QUORUM"):
        level = getattr(ConsistencyLevel, level_name)
        insert = session.prepare("INSERT INTO b.kv (k, v) VALUES (?, ?)")
        select = session.prepare("SELECT v FROM b.kv WHERE k = ?")
        insert.consistency_level = select.consistency_level = level
        keys = random.sample(range(10 * ops), ops)
        seconds, lat = run(session, insert, [(k, value) for k in keys], concurrency)
        results.append((name, "write", level_name, ops / seconds, pct(lat, 0.5), pct(lat, 0.99)))
        random.shuffle(keys)
        seconds, lat = run(session, select, [(k,) for k in keys], concurrency)
        results.append((name, "read", level_name, ops / seconds, pct(lat, 0.5), pct(lat, 0.99)))
        # 50/50: interleave reads and writes through one bound-statement list
        mixed = [insert.bind((k, value)) if i % 2 else select.bind((k,)) for i, k in enumerate(keys)]
        seconds, lat = run(session, _Bound(), mixed, concurrency)
        results.append((name, "50/50", level_name, ops / seconds, pct(lat, 0.5), pct(lat, 0.99)))
    cluster.shutdown()
    return results


class _Bound:
    """Lets run() execute pre-bound statements: session.execute_async(_Bound(), bound) runs `bound`."""


def _patch_execute_async(session_cls) -> None:
    original = session_cls.execute_async

    def execute_async(self, query, parameters=None, *args, **kwargs):
        if isinstance(query, _Bound):
            return original(self, parameters, None, *args, **kwargs)
        return original(self, query, parameters, *args, **kwargs)

    session_cls.execute_async = execute_async


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    from cassandra.cluster import Session

    _patch_execute_async(Session)
    rows = []
    for name, size, rf, octet in (("1 node, RF 1", 1, 1, 98), ("3 nodes, RF 3", 3, 3, 99)):
        with tempfile.TemporaryDirectory() as tmp:
            procs, hosts, port = start_cluster(Path(tmp), size, octet)
            try:
                rows += measure(name, hosts, port, rf, args.ops, args.concurrency)
            finally:
                for p in procs:
                    p.send_signal(signal.SIGTERM)
                for p in procs:
                    p.wait(timeout=60)
    print(f"\n{args.ops} operations each, {args.concurrency} in flight, 100-byte values, cassandra-driver "
          f"(token aware), {os.cpu_count()} cores\n")
    print("| setup | operation | level | ops/s | p50 ms | p99 ms |")
    print("|---|---|---|---:|---:|---:|")
    for name, op, level, rate, p50, p99 in rows:
        print(f"| {name} | {op} | {level} | {rate:,.0f} | {p50:.1f} | {p99:.1f} |")


if __name__ == "__main__":
    main()
