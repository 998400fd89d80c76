"""Streaming between two local nodes: a second node bootstraps from a first that holds N rows.

    python bench/streaming.py [--rows 100000] [--value-bytes 100]

Loads N rows into a one-node cluster (RF 1, through widecol.client), starts a second node, and reads what its
bootstrap streamed and how long it took from its log: MB/s with the default cap (64 MB/s) lifted. Not a test.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import trio

from widecol.client import AsyncClient
from widecol.testing import LocalCluster


async def load(host: str, rows: int, value: bytes) -> float:
    async with await AsyncClient.connect(host) as c:
        await c.execute("CREATE KEYSPACE b WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        await c.execute("CREATE TABLE b.kv (k int PRIMARY KEY, v blob)")
        insert = await c.prepare("INSERT INTO b.kv (k, v) VALUES (?, ?)")
        start = time.perf_counter()
        keys = iter(range(rows))

        async def worker() -> None:
            for k in keys:
                await c.execute(insert, [k, value])

        async with trio.open_nursery() as nursery:
            for _ in range(32):
                nursery.start_soon(worker)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp), 2, interval_ms=500, extra="[streaming]\nthroughput_mb_s = 0\n")
        try:
            cluster.start("n1")
            seconds = trio.run(load, f"{cluster.hosts['n1']}:{cluster.native_port}", args.rows,
                               b"x" * args.value_bytes)
            print(f"loaded {args.rows} rows of {args.value_bytes} bytes into n1 in {seconds:.1f} s")
            cluster.start("n2")
            cluster.wait_log("n2", "bootstrap streamed", timeout=3600)
            line = next(x for x in cluster.log_text("n2").splitlines() if "bootstrap streamed" in x)
            m = re.search(r"streamed (\d+) partitions \((\d+) bytes\) in ([\d.]+) s", line)
            assert m is not None, line
            partitions, size, took = int(m[1]), int(m[2]), float(m[3])
            print(f"n2 bootstrap: {partitions} partitions, {size / 1e6:.1f} MB in {took:.1f} s = "
                  f"{size / 1e6 / took:.1f} MB/s, {partitions / took:,.0f} partitions/s")
        finally:
            cluster.kill_all()


if __name__ == "__main__":
    main()
