"""Gossip: membership, liveness and application state, spread epidemically (sans-IO).

How this works. Every endpoint has a heartbeat (generation = its start time in seconds, version = a counter it
bumps every round) and application states (STATUS, TOKENS, SCHEMA, ...), each stamped with the heartbeat version
current when it was set, so one counter orders everything an endpoint says within a generation. A higher
generation supersedes everything of a lower one (a restart).

Each round, tick(now) bumps our heartbeat and starts a three-way exchange with one random live peer, and
sometimes with an unreachable one or a seed (as Cassandra's Gossiper does):
  SYN  [(endpoint, generation, max version), ...]           what I know
  ACK  requests [(endpoint, generation, version)], deltas    what you lack that I have, and what I lack
  ACK2 deltas                                                what I had that you asked for
A delta is (endpoint, generation, heartbeat version, {state: (value, version)}) holding only what is newer than
the version the other side knows. handle(sender, message, now) applies deltas and returns the replies to send.

Liveness comes from the failure detector: every rise of an endpoint's heartbeat version is an arrival; tick()
convicts endpoints whose phi passes the threshold. Events (joined, up, down, state changed, left) collect in a list
that take_events() drains. A node whose STATUS says left or removed is quarantined: deltas about it with the same
or an older generation are ignored for `quarantine_s`, so stale gossip never brings it back.

Nothing here reads a clock, sleeps or touches a socket: `now` (seconds) is an argument, randomness is an injected
random.Random, and messages are plain lists that msgpack carries.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from widecol.cluster.failure_detector import FailureDetector

SYN, ACK, ACK2 = "GOSSIP_SYN", "GOSSIP_ACK", "GOSSIP_ACK2"
STATUS, TOKENS, SCHEMA, LOAD, DC, RACK, HOST_ID, NATIVE_ADDRESS, RELEASE_VERSION = (
    "STATUS", "TOKENS", "SCHEMA", "LOAD", "DC", "RACK", "HOST_ID", "NATIVE_ADDRESS", "RELEASE_VERSION",
)
GONE = ("left", "removed")


@dataclass
class EndpointState:
    generation: int
    version: int = 0  # heartbeat version
    states: dict[str, tuple[Any, int]] = field(default_factory=dict)  # key -> (value, version)

    def max_version(self) -> int:
        return max([self.version, *(v for _, v in self.states.values())])

    def delta_since(self, version: int) -> list:
        """(generation, heartbeat version, {key: [value, version]}) with the states newer than VERSION."""
        newer = {k: [value, v] for k, (value, v) in self.states.items() if v > version}
        return [self.generation, self.version, newer]


@dataclass(frozen=True)
class Event:
    kind: str  # "joined", "up", "down", "changed", "left"
    endpoint: str
    key: str | None = None
    value: Any = None


class Gossiper:
    def __init__(
        self,
        endpoint: str,
        generation: int,
        seeds: Iterable[str],
        rng: random.Random,
        detector: FailureDetector | None = None,
        quarantine_s: float = 60.0,
    ) -> None:
        self.endpoint = endpoint
        self.seeds = [s for s in seeds if s != endpoint]
        self.rng = rng
        self.detector = detector or FailureDetector()
        self.quarantine_s = quarantine_s
        self.endpoints: dict[str, EndpointState] = {endpoint: EndpointState(generation)}
        self.live: set[str] = set()
        self._quarantine: dict[str, tuple[int, float]] = {}  # endpoint -> (generation, until)
        self._events: list[Event] = []
        self.rounds = 0

    # -- local state -----------------------------------------------------------------------------------------------

    @property
    def local(self) -> EndpointState:
        return self.endpoints[self.endpoint]

    def set_local_state(self, key: str, value: Any) -> None:
        """Publish KEY = VALUE for this node; it spreads from the next round on."""
        local = self.local
        local.version += 1
        local.states[key] = (value, local.version)

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # -- rounds ------------------------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[tuple[str, str, list]]:
        """One gossip round: bump the heartbeat, convict silent endpoints, pick whom to talk to.
        Returns (peer, verb, body) messages to send."""
        self.rounds += 1
        self.local.version += 1
        for endpoint in list(self.live):
            if not self.detector.is_alive(endpoint, now):
                self.live.discard(endpoint)
                self._events.append(Event("down", endpoint))
        for endpoint, (_gen, until) in list(self._quarantine.items()):
            if now >= until:
                del self._quarantine[endpoint]
        digests = self._digests()
        out = []
        live = sorted(self.live)
        if live:
            out.append(self.rng.choice(live))
        unreachable = sorted(e for e in self.endpoints if e != self.endpoint and e not in self.live and not self._gone(e))
        if unreachable and self.rng.random() < len(unreachable) / (len(live) + 1):
            out.append(self.rng.choice(unreachable))
        if self.seeds and (not live or (self.rng.random() < len(self.seeds) / (len(live) + len(unreachable) + 1))):
            seed = self.rng.choice(self.seeds)
            if seed not in out:
                out.append(seed)
        return [(peer, SYN, digests) for peer in out]

    def _digests(self) -> list:
        digests = [[e, s.generation, s.max_version()] for e, s in self.endpoints.items()]
        self.rng.shuffle(digests)
        return digests

    # -- messages ----------------------------------------------------------------------------------------------------

    def handle(self, sender: str, verb: str, body: list, now: float) -> list[tuple[str, str, list]]:
        """Apply one gossip message from SENDER; returns the replies to send."""
        if verb == SYN:
            requests, deltas = [], {}
            for endpoint, generation, max_version in body:
                mine = self.endpoints.get(endpoint)
                if mine is None or generation > mine.generation:
                    requests.append([endpoint, generation, -1])
                elif generation < mine.generation:
                    deltas[endpoint] = mine.delta_since(-1)
                elif max_version > mine.max_version():
                    requests.append([endpoint, generation, mine.max_version()])
                elif max_version < mine.max_version():
                    deltas[endpoint] = mine.delta_since(max_version)
            known = {d[0] for d in body}
            for endpoint, state in self.endpoints.items():
                if endpoint not in known:
                    deltas[endpoint] = state.delta_since(-1)
            return [(sender, ACK, [requests, deltas])]
        if verb == ACK:
            requests, deltas = body
            self._apply(deltas, now)
            reply = {}
            for endpoint, generation, version in requests:
                mine = self.endpoints.get(endpoint)
                if mine is not None and mine.generation >= generation:
                    reply[endpoint] = mine.delta_since(version if mine.generation == generation else -1)
            return [(sender, ACK2, [reply])] if reply else []
        if verb == ACK2:
            self._apply(body[0], now)
            return []
        return []

    def _apply(self, deltas: dict, now: float) -> None:
        for endpoint, (generation, heartbeat, states) in deltas.items():
            if endpoint == self.endpoint:
                continue
            quarantined = self._quarantine.get(endpoint)
            if quarantined is not None and generation <= quarantined[0]:
                continue
            mine = self.endpoints.get(endpoint)
            if mine is None or generation > mine.generation:
                if mine is not None:
                    self.detector.remove(endpoint)
                    self.live.discard(endpoint)
                mine = EndpointState(generation, -1)
                new = endpoint not in self.endpoints
                self.endpoints[endpoint] = mine
                if new:
                    self._events.append(Event("joined", endpoint))
            elif generation < mine.generation:
                continue
            if heartbeat > mine.version:
                mine.version = heartbeat
                self.detector.report(endpoint, now)
                if endpoint not in self.live and not self._gone(endpoint):
                    self.live.add(endpoint)
                    self._events.append(Event("up", endpoint))
            for key, (value, version) in states.items():
                old = mine.states.get(key)
                if old is None or version > old[1]:
                    mine.states[key] = (value, version)
                    if old is None or old[0] != value:
                        self._events.append(Event("changed", endpoint, key, value))
                    if key == STATUS and value in GONE:
                        self._leave(endpoint, generation, now)

    def _gone(self, endpoint: str) -> bool:
        status = self.endpoints[endpoint].states.get(STATUS)
        return status is not None and status[0] in GONE

    def _leave(self, endpoint: str, generation: int, now: float) -> None:
        self.live.discard(endpoint)
        self.detector.remove(endpoint)
        self._quarantine[endpoint] = (generation, now + self.quarantine_s)
        self._events.append(Event("left", endpoint))

    # -- views -------------------------------------------------------------------------------------------------------

    def state(self, endpoint: str, key: str) -> Any:
        entry = self.endpoints.get(endpoint)
        if entry is None or key not in entry.states:
            return None
        return entry.states[key][0]

    def view(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """Every endpoint's generation and application states (what two converged nodes agree on)."""
        return {e: (s.generation, {k: v for k, (v, _) in s.states.items()}) for e, s in self.endpoints.items()}
