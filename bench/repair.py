"""Repair benchmark: `widecol repair` on a three-node local cluster (RF 3, hints off) with 0% and 1% divergence.

Loads N rows at ALL, then:
1. repairs with the replicas in agreement (0%): the cost of building and comparing the trees;
2. stops n3, overwrites 1% of the rows at QUORUM (n3 misses them), restarts n3 and repairs again (1%);
3. repairs once more (0% again: what the first repair left is in agreement).
For each it prints the time the command took, what it compared and streamed, and how many partitions were read
from replicas in the sub-ranges out of sync (system_views.repair), against what a full copy would stream.

    python bench/repair.py [--rows 100000] [--value-bytes 100]

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
from widecol.testing import LocalCluster


def load(session, keys, value_bytes: int, level: int, seed: int) -> float:
    insert = session.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
    insert.consistency_level = level
    rng = random.Random(seed)
    args = [(k, rng.randbytes(value_bytes // 2).hex()) for k in keys]
    started = time.monotonic()
    for i in range(0, len(args), 5000):
        for ok, result in execute_concurrent_with_args(session, insert, args[i:i + 5000], concurrency=64):
            if not ok:
                raise result
    return time.monotonic() - started


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
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--divergence", type=float, default=0.01)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="widecol-repair-bench-"))
    cluster = LocalCluster(root, 3, hints=False, num_tokens=8, interval_ms=500)
    try:
        cluster.start_all()
        drv, s = cluster.session("n1", whitelist=False)
        s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
        s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
        took = load(s, range(args.rows), args.value_bytes, ConsistencyLevel.ALL, 1)
        print(f"loaded {args.rows} rows of ~{args.value_bytes} bytes at ALL in {took:.1f} s", flush=True)
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
