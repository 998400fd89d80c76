"""A deterministic gossip simulator: many Gossipers, one process, virtual time (sans-IO).

How this works. Events (a node's round, a message's arrival) wait in a heap ordered by virtual time and a sequence
number; step() pops the next one and feeds it to its node, queueing whatever the node returns. All randomness comes
from one seeded random.Random, so a seed replays exactly. Controls: message loss (probability), delay (seconds,
jittered), partitions (groups that cannot reach each other), crashes and restarts (a restart is a new Gossiper
with a higher generation), and pauses (a stalled node neither ticks nor reads; its messages wait).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable

import msgpack

from widecol.cluster.failure_detector import FailureDetector
from widecol.cluster.gossip import Event, Gossiper


class Simulator:
    def __init__(
        self,
        names: Iterable[str],
        seed: int = 0,
        interval: float = 1.0,
        loss: float = 0.0,
        delay: float = 0.01,
        seeds: int = 1,
        threshold: float = 8.0,
        count_bytes: bool = False,
    ) -> None:
        self.rng = random.Random(seed)
        self.interval = interval
        self.loss = loss
        self.delay = delay
        self.threshold = threshold
        self.count_bytes = count_bytes
        self.now = 0.0
        self._heap: list[tuple[float, int, str, tuple]] = []
        self._seq = 0
        self.names = list(names)
        self.seed_names = self.names[:seeds]
        self.nodes: dict[str, Gossiper] = {}
        self.crashed: set[str] = set()
        self.paused_until: dict[str, float] = {}
        self.groups: list[set[str]] | None = None
        self.bytes_sent: Counter[str] = Counter()
        self.messages = 0
        self.events: list[tuple[float, str, Event]] = []
        for name in self.names:
            self.start(name)

    # -- controls ----------------------------------------------------------------------------------------------------

    def start(self, name: str, generation: int | None = None) -> Gossiper:
        """Start (or restart, with a higher generation) node NAME; its first round is within one interval."""
        previous = self.nodes.get(name)
        if generation is None:
            generation = previous.local.generation + 1 if previous else 1
        node = Gossiper(
            name, generation, self.seed_names, random.Random(self.rng.random()),
            FailureDetector(threshold=self.threshold, expected_interval=self.interval, max_interval=2 * self.interval),
        )
        self.nodes[name] = node
        self.crashed.discard(name)
        self._schedule(self.now + self.rng.random() * self.interval, name, ("tick", generation))
        return node

    def crash(self, name: str) -> None:
        self.crashed.add(name)

    def pause(self, name: str, seconds: float) -> None:
        self.paused_until[name] = self.now + seconds

    def partition(self, *groups: Iterable[str]) -> None:
        self.groups = [set(g) for g in groups]

    def heal(self) -> None:
        self.groups = None

    # -- running -----------------------------------------------------------------------------------------------------

    def _schedule(self, at: float, name: str, event: tuple) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, name, event))

    def _reachable(self, a: str, b: str) -> bool:
        if self.groups is None:
            return True
        return any(a in g and b in g for g in self.groups)

    def run(self, seconds: float) -> None:
        """Process every event up to now + SECONDS."""
        until = self.now + seconds
        while self._heap and self._heap[0][0] <= until:
            at, _, name, event = heapq.heappop(self._heap)
            self.now = at
            if name in self.crashed:
                continue
            paused = self.paused_until.get(name, 0.0)
            if paused > at:
                self._schedule(paused, name, event)
                continue
            node = self.nodes[name]
            if event[0] == "tick":
                if event[1] != node.local.generation:
                    continue  # a round of a previous incarnation
                out = node.tick(at)
                self._schedule(at + self.interval, name, event)
            else:
                _, sender, verb, body = event
                out = node.handle(sender, verb, body, at)
            for e in node.take_events():
                self.events.append((at, name, e))
            for peer, verb, body in out:
                self._send(name, peer, verb, body)
        self.now = until

    def _send(self, sender: str, peer: str, verb: str, body: list) -> None:
        self.messages += 1
        if self.count_bytes:
            self.bytes_sent[sender] += len(msgpack.packb(body))
        if peer not in self.nodes or not self._reachable(sender, peer):
            return
        if self.loss and self.rng.random() < self.loss:
            return
        self._schedule(self.now + self.delay * (0.5 + self.rng.random()), peer, ("msg", sender, verb, body))

    # -- observations --------------------------------------------------------------------------------------------------

    def alive(self) -> list[str]:
        return [n for n in self.names if n not in self.crashed]

    def converged(self, names: Iterable[str] | None = None) -> bool:
        """True if every given live node holds the same view (generations and application states)."""
        views = [self.nodes[n].view() for n in (names if names is not None else self.alive())]
        return all(v == views[0] for v in views[1:])

    def who_sees_down(self, target: str) -> set[str]:
        return {n for n in self.alive() if n != target and target not in self.nodes[n].live}
