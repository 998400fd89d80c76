"""Native protocol benchmark: widecol.client against the cassandra-driver on one `widecol serve` process.

Starts `widecol serve` in a subprocess on free loopback ports (fresh data directory), makes a table
(k int PRIMARY KEY, v text), then for each concurrency (requests in flight) and each client runs OPS prepared
INSERTs, then OPS prepared SELECTs by key, and prints ops/s with p50 and p99 latency. Our client runs N trio tasks
on one connection; the driver keeps N `execute_async` requests outstanding with callbacks. Asserts nothing.
The server is one Python process, so these figures are mostly the server's cost; the client's own overhead is
the gap between the two clients at the same concurrency.

Usage: python bench/native.py [--ops 20000] [--concurrency 1,16,128]
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from widecol.client import AsyncClient  # noqa: E402

KEYSPACE = "CREATE KEYSPACE IF NOT EXISTS bench WITH replication = {'class': 'SimpleStrategy', " \
           "'replication_factor': 1}"
INSERT = "INSERT INTO bench.kv (k, v) VALUES (?, ?)"
SELECT = "SELECT v FROM bench.kv WHERE k = ?"
VALUE = "x" * 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(tmp: Path, standalone: bool) -> tuple[subprocess.Popen, int]:
    port = free_port()
    (tmp / "c.toml").write_text(
        '[cluster]\nname = "bench"\nnum_tokens = 4\n[[nodes]]\nname = "n1"\naddress = "127.0.0.1"\n'
        f'native_port = {port}\ninternode_port = {free_port()}\ndata_dir = "n1"\n')
    log = tmp / "server.log"
    # A standalone node answers on its event loop; a node of a cluster file goes through the coordinator.
    how = ["--config", "c.toml", "--node", "n1"] if not standalone else ["--data-dir", "n1"]
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "widecol.cli", "serve", *how, "--log-level", "WARNING"],
                                cwd=tmp, stderr=out)
    if standalone:
        port = 9042
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start:\n{log.read_text()}") from None
            time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process PID so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(name: str, latencies: list[float], elapsed: float) -> str:
    lat = sorted(latencies)
    p50, p99 = lat[len(lat) // 2], lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return f"{name:<28}{len(lat) / elapsed:>10,.0f}{p50 * 1e3:>10.2f}{p99 * 1e3:>10.2f}"


# -- widecol.client --------------------------------------------------------------------------------------------


async def ours(port: int, ops: int, concurrency: int, base: int) -> list[str]:
    out = []
    async with await AsyncClient.connect(f"127.0.0.1:{port}") as c:
        await c.execute(KEYSPACE)
        await c.execute("CREATE TABLE IF NOT EXISTS bench.kv (k int PRIMARY KEY, v text)")
        for label, query, params in (("INSERT", INSERT, lambda k: [k, VALUE]), ("SELECT", SELECT, lambda k: [k])):
            prepared = await c.prepare(query)
            latencies: list[float] = []
            keys = iter(range(base, base + ops))

            async def worker(prepared=prepared, params=params, latencies=latencies, keys=keys) -> None:
                for k in keys:
                    t0 = time.perf_counter()
                    await c.execute(prepared, params(k))
                    latencies.append(time.perf_counter() - t0)

            start = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for _ in range(concurrency):
                    nursery.start_soon(worker)
            out.append(summary(f"widecol.client {label} x{concurrency}", latencies, time.perf_counter() - start))
    return out


# -- cassandra-driver ------------------------------------------------------------------------------------------


def driver(session, ops: int, concurrency: int, base: int) -> list[str]:
    out = []
    for label, query, params in (("INSERT", INSERT, lambda k: (k, VALUE)), ("SELECT", SELECT, lambda k: (k,))):
        prepared = session.prepare(query)
        start = time.perf_counter()
        latencies = _outstanding(session, prepared, [params(k) for k in range(base, base + ops)], concurrency)
        out.append(summary(f"cassandra-driver {label} x{concurrency}", latencies, time.perf_counter() - start))
    return out


def _outstanding(session, prepared, all_params: list[tuple], concurrency: int) -> list[float]:
    """Runs every request keeping CONCURRENCY in flight with execute_async callbacks; their latencies."""
    latencies: list[float] = []
    failures: list[BaseException] = []
    lock, done = threading.Lock(), threading.Event()
    pending = iter(all_params)

    def launch() -> None:
        with lock:
            params = next(pending, None)
        if params is None:
            if len(latencies) + len(failures) == len(all_params):
                done.set()
            return
        t0 = time.perf_counter()
        future = session.execute_async(prepared, params)
        future.add_callbacks(finished(t0, latencies, launch), failed(failures, launch))

    for _ in range(concurrency):
        launch()
    done.wait()
    if failures:
        raise failures[0]
    return latencies


def finished(t0: float, latencies: list[float], launch: Callable[[], None]) -> Callable[[object], None]:
    def callback(_rows: object) -> None:
        latencies.append(time.perf_counter() - t0)
        launch()
    return callback


def failed(failures: list[BaseException], launch: Callable[[], None]) -> Callable[[BaseException], None]:
    def callback(exc: BaseException) -> None:
        failures.append(exc)
        launch()
    return callback


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=20_000, help="requests per kind, client and concurrency")
    parser.add_argument("--concurrency", default="1,16,128", help="requests in flight, comma separated")
    parser.add_argument("--standalone", action="store_true", help="a standalone node (widecol serve --data-dir, "
                        "on 127.0.0.1:9042) instead of a one-node cluster")
    args = parser.parse_args()
    levels = [int(n) for n in args.concurrency.split(",")]

    from cassandra.cluster import Cluster

    with tempfile.TemporaryDirectory(prefix="widecol-bench-") as tmp:
        proc, port = start_server(Path(tmp), args.standalone)
        try:
            print(f"{args.ops} ops per row; server: widecol serve (one process) on 127.0.0.1:{port}")
            print(f"{'client / op / in flight':<28}{'ops/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
            cluster = Cluster(["127.0.0.1"], port=port, protocol_version=4)
            session = cluster.connect()
            base = 0
            for n in levels:
                cpu = cpu_seconds(proc.pid)
                for line in trio.run(ours, port, args.ops, n, base):
                    print(line, flush=True)
                print(f"  server CPU per operation: {(cpu_seconds(proc.pid) - cpu) / (2 * args.ops) * 1e6:.0f} us")
                base += args.ops
                cpu = cpu_seconds(proc.pid)
                for line in driver(session, args.ops, n, base):
                    print(line, flush=True)
                print(f"  server CPU per operation: {(cpu_seconds(proc.pid) - cpu) / (2 * args.ops) * 1e6:.0f} us")
                base += args.ops
            cluster.shutdown()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


if __name__ == "__main__":
    main()
