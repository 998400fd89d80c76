"""Gossip benchmark on the deterministic simulator: prints a table; asserts nothing.

For each N, on a cluster started converged (Simulator(warm=True)) and run 10 s: bytes sent per node per second
over 20 quiet seconds (msgpack sizes); then `trials` times, a random node publishes a new application state and we
count rounds until every node has it (median and worst), beside the push-pull bound log3(N) + ln(ln(N)); then
`crashes` times, a random node crashes and we count rounds until every live node marks it down. Detection is
measured twice: with sub-round probe timers (the driver calls advance() at deadline()) and with tick() alone.
Then false convictions per node-hour with 10% loss, and with one node stalled 2 s every 10 s. Each row also gives
the seconds its warm start took and the process's peak RSS so far (the simulator shares one read-only state object
per endpoint among all nodes, so N = 5,000 needs about 25 million small dict and set entries, not 25 million
states). Sizes run in the order given; to see each size's own peak, run one size per process.

Usage: python bench/gossip.py [--sizes 10,100,1000] [--trials 20] [--crashes 5] [--hours 1] [--lossy-n 20]
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from widecol.cluster.gossip import SCHEMA  # noqa: E402
from widecol.cluster.simulator import Simulator  # noqa: E402


def names(n: int) -> list[str]:
    return [f"10.{i // 65536}.{i // 256 % 256}.{i % 256}:7000" for i in range(n)]  # like real endpoints


def cluster(n: int, seed: int, timers: bool = True, loss: float = 0.0) -> Simulator:
    sim = Simulator(names(n), seed=seed, seeds=max(1, n // 100), warm=True, timers=timers, loss=loss)
    sim.run(10)
    return sim


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def bytes_per_node_second(sim: Simulator, seconds: float = 20.0) -> float:
    before = sum(sim.bytes_sent().values())
    sim.run(seconds)
    return (sum(sim.bytes_sent().values()) - before) / len(sim.nodes) / seconds


def spread_rounds(sim: Simulator, trials: int) -> list[int]:
    out = []
    for trial in range(trials):
        origin = sim.rng.choice(sim.alive())
        sim.nodes[origin].set_local_state(SCHEMA, f"v{trial}")
        rounds = 0
        while not all(sim.nodes[n].state(origin, SCHEMA) == f"v{trial}" for n in sim.alive()):
            sim.run(1)
            rounds += 1
        out.append(rounds)
    return out


def detection_rounds(sim: Simulator, crashes: int) -> list[int]:
    out = []
    for _ in range(crashes):
        victim = sim.rng.choice(sim.alive()[1:])  # keep the first seed
        sim.crash(victim)
        rounds = 0
        while sim.who_sees_down(victim) != set(sim.alive()) - {victim}:
            sim.run(1)
            rounds += 1
        out.append(rounds)
        sim.run(5)
    return out


def false_convictions_per_node_hour(n: int, hours: float, loss: float, stall: bool) -> float:
    sim = cluster(n, seed=9, loss=loss)
    sim.events.clear()
    t = 0.0
    while t < hours * 3600:
        if stall:
            sim.pause(names(n)[5], 2.0)
        sim.run(10.0)
        t += 10.0
    downs = sum(1 for _, _, e in sim.events if e.kind == "down")
    return downs / n / hours


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10,100,1000")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--crashes", type=int, default=5)
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--lossy-n", type=int, default=20, help="cluster size for the false-conviction runs")
    args = parser.parse_args()
    print(f"{'N':>6} {'bound':>6} {'median':>7} {'worst':>6} {'detect (timers)':>16} {'detect (tick)':>14} "
          f"{'B/node/s':>9} {'seconds':>8} {'warm s':>7} {'peak MB':>8}")
    for n in [int(s) for s in args.sizes.split(",")]:
        started = time.perf_counter()
        sim = Simulator(names(n), seed=1, seeds=max(1, n // 100), warm=True)
        warm = time.perf_counter() - started
        sim.run(10)
        per_node = bytes_per_node_second(sim)
        rounds = spread_rounds(sim, args.trials)
        detect = detection_rounds(sim, args.crashes)
        del sim  # before the second cluster: at N = 5,000 each holds gigabytes
        detect_tick = detection_rounds(cluster(n, seed=2, timers=False), args.crashes)
        bound = math.log(n, 3) + math.log(math.log(n))
        print(
            f"{n:>6} {bound:>6.1f} {statistics.median(rounds):>7.1f} {max(rounds):>6} "
            f"{statistics.median(detect):>9.1f} ({max(detect):>2}) {statistics.median(detect_tick):>8.1f} "
            f"({max(detect_tick):>2}) {per_node:>9,.0f} {time.perf_counter() - started:>8.1f} {warm:>7.1f} "
            f"{peak_rss_mb():>8,.0f}",
            flush=True,
        )
    if args.hours <= 0:
        return
    print()
    print(f"false convictions per node-hour ({args.lossy_n} nodes, 1 s interval, phi threshold 8, "
          f"{args.hours:g} h):")
    print(f"  10% message loss:                {false_convictions_per_node_hour(args.lossy_n, args.hours, 0.1, False):.3f}")
    print(f"  one node stalled 2 s every 10 s: {false_convictions_per_node_hour(args.lossy_n, args.hours, 0.0, True):.3f}")


if __name__ == "__main__":
    main()
