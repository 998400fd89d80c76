"""Repair benchmark: `widecol repair` on a three-node local cluster (RF 3, hints off) with 0% and 1% divergence.

Loads N rows into every replica, then:
1. repairs with the replicas in agreement (0%): the cost of building and comparing the trees;
2. stops n3, overwrites 1% of the rows at QUORUM (n3 misses them), restarts n3 and repairs again (1%);
3. repairs once more (0% again: what the first repair left is in agreement).
For each it prints the time the command took, what it compared and streamed, and how many partitions were read
from replicas in the sub-ranges out of sync (system_views.repair), against what a full copy would stream.

    python bench/repair.py [--rows 1000000] [--value-bytes 100] [--load offline|driver]

Loading: `--load driver` writes the rows through the driver at ALL (about 600 rows/s on 2 cores, so half an hour
for 1,000,000). `--load offline` (the default) creates the table through CQL, stops the nodes, and writes the same
rows (same timestamp) into each node's storage with Engine.ingest, the path streaming uses, then starts them again:
the replicas hold identical data in SSTables, which is what the repair is measured on.

Not a test: figures depend on the machine; the three nodes share its cores.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cassandra import ConsistencyLevel
from cassandra.concurrent import execute_concurrent_with_args

from widecol.client import connect
from widecol.storage.engine import Engine
from widecol.storage.mutation import Mutation
from widecol.testing import LocalCluster


def load(session, keys, value_bytes: int, level: int, seed: int) -> float:
    insert = session.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
    insert.consistency_level = level
    args = values(keys, value_bytes, seed)
    started = time.monotonic()
    for i in range(0, len(args), 5000):
        for ok, result in execute_concurrent_with_args(session, insert, args[i:i + 5000], concurrency=64):
            if not ok:
                raise result
    return time.monotonic() - started


def values(keys, value_bytes: int, seed: int) -> list[tuple[int, str]]:
    rng = random.Random(seed)
    return [(k, rng.randbytes(value_bytes // 2).hex()) for k in keys]


def load_offline(cluster: LocalCluster, rows: int, value_bytes: int) -> float:
    """Stop the cluster, write ROWS rows into every node's storage as new SSTables, start it again."""
    cluster.stop_all()
    started = time.monotonic()
    timestamp = int(time.time() * 1_000_000)
    for name in cluster.hosts:
        engine = Engine.open(cluster.root / "data" / name / "storage")
        try:
            table_id = next(t for t in engine.tables if t.startswith("ks.t-"))
            for lo in range(0, rows, 250_000):
                batch = []
                for k, v in values(range(lo, min(rows, lo + 250_000)), value_bytes, lo):
                    cells = {b"": (timestamp, b"", 0, 0), b"v": (timestamp, v.encode(), 0, 0)}
                    batch.append(Mutation.from_raw(table_id, k.to_bytes(4, "big", signed=True),
                                                   (None, [], {b"": [None, cells]})))
                engine.ingest(batch)
        finally:
            engine.close()
    took = time.monotonic() - started
    cluster.start_all()
    for name in cluster.hosts:
        cluster.wait_view(name, up=set(cluster.hosts), timeout=120)
    return took


def repair(cluster: LocalCluster, name: str) -> dict:
    host = f"{cluster.hosts[name]}:{cluster.native_port}"
    started = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "widecol.cli", "repair", "ks", "--host", host],
                         capture_output=True, text=True, timeout=3600)
    took = time.monotonic() - started
    if out.returncode != 0:
        raise SystemExit(f"repair failed:\n{out.stdout}\n{out.stderr}")
    with connect(host) as client:
        row = client.execute("SELECT * FROM system_views.repair").as_dicts()[-1]
    row["command_s"] = took
    return row


def show(label: str, row: dict, rows: int, full_copy: float | None) -> None:
    bytes_ = row["bytes_streamed"]
    share = f"{100 * bytes_ / full_copy:.2f}% of a full copy" if full_copy else ""
    print(f"{label:<22} {row['command_s']:7.1f} s  ranges {row['ranges_total']:3d}, out of sync "
          f"{row['ranges_out_of_sync']:3d}  read {row['partitions_compared']:7d} partitions "
          f"({100 * row['partitions_compared'] / rows:.1f}% of the rows)  streamed {row['partitions_streamed']:6d} "
          f"partitions, {bytes_:9d} bytes {share}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--divergence", type=float, default=0.01)
    parser.add_argument("--load", choices=["offline", "driver"], default="offline")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="widecol-repair-bench-"))
    cluster = LocalCluster(root, 3, hints=False, num_tokens=8, interval_ms=500)
    try:
        cluster.start_all()
        drv, s = cluster.session("n1", whitelist=False)
        s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
        s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
        if args.load == "driver":
            took = load(s, range(args.rows), args.value_bytes, ConsistencyLevel.ALL, 1)
            print(f"loaded {args.rows} rows of ~{args.value_bytes} bytes at ALL in {took:.1f} s", flush=True)
        else:
            drv.shutdown()
            took = load_offline(cluster, args.rows, args.value_bytes)
            print(f"loaded {args.rows} rows of ~{args.value_bytes} bytes into each node's storage in {took:.1f} s",
                  flush=True)
            drv, s = cluster.session("n1", whitelist=False)
        show("repair, 0% divergence", repair(cluster, "n1"), args.rows, None)

        changed = random.Random(2).sample(range(args.rows), int(args.rows * args.divergence))
        cluster.stop("n3")
        cluster.wait_view("n1", up={"n1", "n2"}, down={"n3"}, timeout=60)
        load(s, changed, args.value_bytes, ConsistencyLevel.QUORUM, 3)
        drv.shutdown()
        cluster.start("n3")
        for name in cluster.hosts:
            cluster.wait_view(name, up=set(cluster.hosts), timeout=60)
        row = repair(cluster, "n1")
        per_partition = row["bytes_streamed"] / max(1, row["partitions_streamed"])
        show(f"repair, {100 * args.divergence:g}% divergence", row, args.rows, per_partition * args.rows)
        show("repair again", repair(cluster, "n1"), args.rows, None)
    finally:
        cluster.kill_all()


if __name__ == "__main__":
    main()
