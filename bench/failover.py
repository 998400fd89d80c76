"""Failure detection between real processes: seconds from SIGKILL until every survivor shows DN, from restart
until every node shows UN again, and false DNs during an idle period.

    python bench/failover.py [--nodes 5] [--interval-ms 1000] [--trials 3] [--idle-s 60]

Nodes are `widecol serve` processes on 127.0.97.x; what each node sees is read from system_views.ring through
widecol.client every 100 ms. Not a test: the figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from widecol.testing import LocalCluster


def seen_states(cluster: LocalCluster, name: str) -> dict[str, str]:
    try:
        return {addr: row.state for addr, row in cluster.ring(name).items()}
    except Exception:  # noqa: BLE001 - a node busy starting answers nothing; count it as not seeing yet
        return {}


def wait_all(cluster: LocalCluster, observers: list[str], target: str, state: str, timeout: float = 120) -> float:
    start = time.monotonic()
    pending = set(observers)
    while pending:
        for name in list(pending):
            if seen_states(cluster, name).get(cluster.hosts[target]) == state:
                pending.discard(name)
        if time.monotonic() - start > timeout:
            raise SystemExit(f"{pending} did not see {target} {state} within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument("--idle-s", type=float, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cluster = LocalCluster(Path(tmp), args.nodes, interval_ms=args.interval_ms)
        cluster.start_all()
        names = list(cluster.hosts)
        victim, survivors = names[-1], names[:-1]
        try:
            false_down = 0
            end = time.monotonic() + args.idle_s
            while time.monotonic() < end:
                for name in names:
                    false_down += sum(1 for s in seen_states(cluster, name).values() if s.startswith("D"))
                time.sleep(1)
            downs, ups = [], []
            for _ in range(args.trials):
                cluster.kill(victim)
                downs.append(wait_all(cluster, survivors, victim, "DN"))
                start = time.monotonic()
                cluster.start(victim, wait=False)
                ups.append(time.monotonic() - start + wait_all(cluster, names, victim, "UN"))
        finally:
            cluster.kill_all()
    print(f"\n{args.nodes} nodes, gossip interval {args.interval_ms} ms, {args.trials} trials\n")
    print("| measure | median s | worst s |")
    print("|---|---:|---:|")
    print(f"| SIGKILL until every survivor shows DN | {statistics.median(downs):.1f} | {max(downs):.1f} |")
    print(f"| restart until every node shows UN (process start included) | {statistics.median(ups):.1f} | "
          f"{max(ups):.1f} |")
    print(f"\nfalse DN observations in a {args.idle_s:.0f} s idle run (every node polled each second): {false_down}")


if __name__ == "__main__":
    main()
