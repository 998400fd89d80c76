"""Gossip benchmark on the deterministic simulator: prints a table; asserts nothing.

For each N: rounds for a new application state to reach every node (median and worst over trials) beside the
push-pull bound log3(N) + ln(ln(N)); rounds from a crash until every live node marks it down; bytes sent per node
per second in steady state (msgpack sizes). Then false convictions per node-hour with 10% loss, and with one node
stalled 2 s at a time, on a 20-node cluster.

Usage: python bench/gossip.py [--sizes 10,100] [--trials 10]  (N = 1,000 needs digest summaries first: every SYN
still carries a digest per endpoint, so a run costs O(N^2))
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from widecol.cluster.gossip import SCHEMA  # noqa: E402
from widecol.cluster.simulator import Simulator  # noqa: E402


def names(n: int) -> list[str]:
    return [f"n{i:05d}" for i in range(n)]


def spread_rounds(n: int, seed: int) -> int:
    sim = Simulator(names(n), seed=seed, seeds=max(1, n // 100))
    sim.run(3 * math.log2(n) + 10)
    origin = names(n)[seed % n]
    sim.nodes[origin].set_local_state(SCHEMA, f"v{seed}")
    rounds = 0
    while not all(node.state(origin, SCHEMA) == f"v{seed}" for node in sim.nodes.values()):
        sim.run(1)
        rounds += 1
    return rounds


def detection_rounds(n: int, seed: int) -> int:
    sim = Simulator(names(n), seed=seed, seeds=max(1, n // 100))
    sim.run(3 * math.log2(n) + 20)
    victim = names(n)[-1]
    sim.crash(victim)
    rounds = 0
    while sim.who_sees_down(victim) != set(sim.alive()) - {victim}:
        sim.run(1)
        rounds += 1
    return rounds


def bytes_per_node_second(n: int) -> float:
    sim = Simulator(names(n), seed=1, seeds=max(1, n // 100), count_bytes=True)
    sim.run(3 * math.log2(n) + 10)
    sim.bytes_sent.clear()
    sim.run(10)
    return sum(sim.bytes_sent.values()) / n / 10


def false_convictions_per_node_hour(loss: float, stall: bool) -> float:
    n = 20
    sim = Simulator(names(n), seed=9, loss=loss)
    sim.run(30)
    sim.events.clear()
    hour = 3600.0
    t = 0.0
    while t < hour:
        if stall:
            sim.pause(names(n)[5], 2.0)
        sim.run(10.0)
        t += 10.0
    downs = sum(1 for _, _, e in sim.events if e.kind == "down")
    return downs / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100")
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    print(f"{'N':>6} {'bound':>6} {'median':>7} {'worst':>6} {'detect':>7} {'B/node/s':>9} {'seconds':>8}")
    for n in [int(s) for s in args.sizes.split(",")]:
        started = time.perf_counter()
        trials = args.trials if n <= 100 else max(3, args.trials // 5)
        rounds = [spread_rounds(n, seed) for seed in range(trials)]
        bound = math.log(n, 3) + math.log(math.log(n))
        detect = detection_rounds(n, 1)
        per_node = bytes_per_node_second(n)
        print(
            f"{n:>6} {bound:>6.1f} {statistics.median(rounds):>7.1f} {max(rounds):>6} {detect:>7} "
            f"{per_node:>9,.0f} {time.perf_counter() - started:>8.1f}",
            flush=True,
        )
    print()
    print("false convictions per node-hour (20 nodes, 1 s interval, phi threshold 8):")
    print(f"  10% message loss:                {false_convictions_per_node_hour(0.10, False):.3f}")
    print(f"  one node stalled 2 s every 10 s: {false_convictions_per_node_hour(0.0, True):.3f}")


if __name__ == "__main__":
    main()
