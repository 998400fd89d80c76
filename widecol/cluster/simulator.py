"""A deterministic gossip simulator: many Gossipers, one process, virtual time (sans-IO).

How this works. Events (a node's round, a node's timer, a message's arrival) wait in a heap ordered by virtual
time and a sequence number; run() pops the next one and feeds it to its node, queueing whatever the node returns,
and after each event schedules the node's next timer (Gossiper.deadline()) if it is earlier than the one pending.
All randomness comes from one seeded random.Random, so a seed replays exactly. Controls: message loss
(probability), delay (seconds, jittered), partitions (groups that cannot reach each other), single cut links
(block), crashes and restarts (a restart is a new Gossiper with a higher generation), and pauses (a stalled node
neither ticks nor reads; its messages and timers wait). With `refusals`, a message to a crashed node comes back to
its sender as a refused connection (Gossiper.unreachable) after one delay, as TCP does on a live host whose
process died; a paused node's messages just wait, as a stopped process's would. Bodies are handed over as objects, not bytes; each
Gossiper counts msgpack sizes. `warm=True` starts the cluster converged (everyone preloaded with everyone).

Cost: a quiet round is O(N) events (one SYN answered by a summary comparison, two probes with their answers), so
N = 1,000 runs a virtual second in about 0.1 s of real time (a warm start costs about 6 s once).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable
from typing import Any

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
        timers: bool = True,
        warm: bool = False,
        refusals: bool = False,
        **gossiper_options: Any,
    ) -> None:
        self.rng = random.Random(seed)
        self.interval = interval
        self.loss = loss
        self.delay = delay
        self.threshold = threshold
        self.timers = timers
        self.refusals = refusals
        self.gossiper_options = gossiper_options
        self.now = 0.0
        self._heap: list[tuple[float, int, str, tuple]] = []
        self._seq = 0
        self._wake: dict[str, float] = {}
        self.names = list(names)
        self.seed_names = self.names[:seeds]
        self.nodes: dict[str, Gossiper] = {}
        self.crashed: set[str] = set()
        self.paused_until: dict[str, float] = {}
        self.groups: list[set[str]] | None = None
        self.blocked: set[tuple[str, str]] = set()
        self.messages = 0
        self.verbs: Counter[str] = Counter()  # messages sent, by verb
        self.lost = 0  # to the loss draw
        self.cut = 0  # to partitions and blocked links
        self.events: list[tuple[float, str, Event]] = []
        for name in self.names:
            self.start(name)
        if warm:  # start as a converged cluster: everyone knows everyone (O(N^2) once, no messages)
            shared = [(name, node.local.copy()) for name, node in self.nodes.items()]  # one read-only copy each
            for node in self.nodes.values():
                for name, state in shared:
                    node.preload(name, state)

    # -- controls ----------------------------------------------------------------------------------------------------

    def start(self, name: str, generation: int | None = None) -> Gossiper:
        """Start (or restart, with a higher generation) node NAME; its first round is within one interval."""
        previous = self.nodes.get(name)
        if generation is None:
            generation = previous.local.generation + 1 if previous else 1
        node = Gossiper(
            name, generation, self.seed_names, random.Random(self.rng.random()),
            FailureDetector(threshold=self.threshold, expected_interval=self.interval),
            interval=self.interval, **self.gossiper_options,
        )
        self.nodes[name] = node
        self.crashed.discard(name)
        self._wake.pop(name, None)
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

    def refuse(self, sender: str, peer: str) -> None:
        """Tell SENDER now that PEER refused a connection, whether or not PEER is really down (a false alarm
        when it is alive, like a restarting listener or a transient network error)."""
        self._schedule(self.now, sender, ("refused", self.nodes[sender].local.generation, peer))

    def block(self, a: str, b: str) -> None:
        """Cut the link between A and B only (both ways); everyone else still reaches both."""
        self.blocked.update({(a, b), (b, a)})

    def unblock(self, a: str, b: str) -> None:
        self.blocked.difference_update({(a, b), (b, a)})

    # -- running -----------------------------------------------------------------------------------------------------

    def _schedule(self, at: float, name: str, event: tuple) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (at, self._seq, name, event))

    def _reachable(self, a: str, b: str) -> bool:
        if (a, b) in self.blocked:
            return False
        if self.groups is None:
            return True
        return any(a in g and b in g for g in self.groups)

    def run(self, seconds: float) -> None:
        """Process every event up to now + SECONDS."""
        until = self.now + seconds
        heap = self._heap
        while heap and heap[0][0] <= until:
            at, _, name, event = heapq.heappop(heap)
            self.now = at
            if name in self.crashed:
                continue
            paused = self.paused_until.get(name, 0.0)
            if paused > at:
                self._schedule(paused, name, event)
                continue
            node = self.nodes[name]
            kind = event[0]
            if kind == "msg":
                _, sender, verb, body = event
                out = node.handle(sender, verb, body, at)
            elif event[1] != node.local.generation:
                continue  # a round or timer of a previous incarnation
            elif kind == "refused":
                out = node.unreachable(event[2], at)
            elif kind == "tick":
                out = node.tick(at)
                self._schedule(at + self.interval, name, event)
            else:
                if self._wake.get(name) == at:
                    del self._wake[name]
                out = node.advance(at)
            if node._events:
                for e in node.take_events():
                    self.events.append((at, name, e))
            for peer, verb, body in out:
                self._send(name, peer, verb, body)
            if self.timers:
                deadline = node.deadline()
                if deadline is not None:
                    deadline = max(deadline, at + 1e-6)
                    pending = self._wake.get(name)
                    if pending is None or deadline < pending:
                        self._wake[name] = deadline
                        self._schedule(deadline, name, ("wake", node.local.generation))
        self.now = until

    def _send(self, sender: str, peer: str, verb: str, body: list) -> None:
        self.messages += 1
        self.verbs[verb] += 1
        if peer not in self.nodes:
            return
        if self.refusals and peer in self.crashed and self._reachable(sender, peer):
            gen = self.nodes[sender].local.generation
            self._schedule(self.now + self.delay * (0.5 + self.rng.random()), sender, ("refused", gen, peer))
            return
        if not self._reachable(sender, peer):
            self.cut += 1
            return
        if self.loss and self.rng.random() < self.loss:
            self.lost += 1
            return
        self._schedule(self.now + self.delay * (0.5 + self.rng.random()), peer, ("msg", sender, verb, body))

    # -- observations --------------------------------------------------------------------------------------------------

    def alive(self) -> list[str]:
        return [n for n in self.names if n not in self.crashed]

    def converged(self, names: Iterable[str] | None = None) -> bool:
        """True if every given live node holds the same view (generations and application states)."""
        hashes = {self.nodes[n].view_hash() for n in (names if names is not None else self.alive())}
        return len(hashes) <= 1

    def who_sees_down(self, target: str) -> set[str]:
        return {n for n in self.alive() if n != target and target not in self.nodes[n].live}

    def bytes_sent(self) -> dict[str, int]:
        """Bytes each node has sent so far (msgpack sizes of bodies)."""
        return {n: g.statistics(self.now).bytes_sent for n, g in self.nodes.items()}
