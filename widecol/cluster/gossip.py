"""Gossip: membership, liveness and application state, spread epidemically (sans-IO).

How this works. Every endpoint has a heartbeat (generation = its start time in seconds, version = a counter it
bumps every round) and application states (STATUS, TOKENS, SCHEMA, ...), each stamped with the heartbeat version
current when it was set, so one counter orders everything an endpoint says within a generation. A higher
generation supersedes everything of a lower one (a restart). Two liveness fields ride along, merged by maximum:
`suspect` (the heartbeat version a prober last knew when it failed to reach the endpoint) and `alive` (the
heartbeat version of its last refutation). A suspicion is open while suspect >= alive.

Anti-entropy (every round, with one random live peer; sometimes an unreachable one or a seed, as Cassandra does):
  SYN   [B, summary]                      one 32-bit hash per bucket of endpoints (summary.py); no heartbeats
  ACK   [B, buckets, digests]             the responder's digests [endpoint, gen, version, suspect, alive] in
                                          the buckets whose hashes differ (nothing at all when none differ)
  ACK2  [requests, deltas]                what the initiator lacks, and what the responder lacks
  ACK3  [deltas]                          what was asked for
A delta is [generation, heartbeat, {key: [value, version]}, suspect, suspicion age, alive, confirmers] (a RUMOR
record is [endpoint, generation, heartbeat, suspect, age, alive, confirmers]; without confirmers, both are the
6-field form older nodes read).
Each message has a byte budget; when not everything fits, the endpoints furthest behind go first. A quiet cluster
exchanges only summaries: at N = 1,000, 128 buckets, 512 bytes a round. Endpoint states may be shared with other
gossipers in one process (a simulator): we copy one before changing it (endpoint_state.py).

Failure detection (probes.py, failure_detector.py): each round we probe two endpoints, directly then through k
helpers; a failed probe opens a suspicion, which we flood at once (RUMOR to `fanout` random peers and to the
suspect; every node that learns something new forwards it once), with anti-entropy as the backstop. A suspect
that hears of it refutes (bumps its heartbeat into `alive`) and floods that; so does anyone who hears from it
directly. Halfway to conviction a node that still holds the suspicion pings the suspect itself (and tells it),
so a refutation the flood lost still reaches it. Each node convicts a suspect whose open suspicion's phi passes
the threshold (failure_detector.py), and brings it back up when a refutation or a new generation arrives. A prober
whose own probe fails while a suspicion is open confirms it (its name joins the suspicion's confirmers, flooded
until `confirmations` are known); each confirmation shortens the time to conviction, down to half (Lifeguard). A
transport that loses its connection to a peer calls unreachable(): we probe that peer at once, directly and through
helpers, and suspect it only if all of that fails. A node that finds it was stalled (no call for 1.5 intervals)
drops its outstanding probes and convicts no one for one interval, while it catches up.

Events (joined, up, down, changed, left) collect for take_events(). A node whose STATUS says left or removed is
quarantined: deltas about it with the same or an older generation are ignored for `quarantine_s`.

Nothing here reads a clock, sleeps or touches a socket: `now` (seconds) is an argument, randomness is an injected
random.Random, and messages are plain lists that msgpack carries. Drivers call tick(now) once per interval and,
for sub-round probe timers, advance(now) at deadline() (without it, timers fire at the next tick).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

import msgpack

from widecol.cluster.endpoint_state import EndpointState
from widecol.cluster.failure_detector import FailureDetector
from widecol.cluster.pool import Pool
from widecol.cluster.probes import PING, PING_REQ, PONG, Prober
from widecol.cluster.summary import FINE, Summary, bucket_count, digest_hash
from widecol.errors import ProtocolError

SYN, ACK, ACK2, ACK3, RUMOR = "GOSSIP_SYN", "GOSSIP_ACK", "GOSSIP_ACK2", "GOSSIP_ACK3", "GOSSIP_RUMOR"
VERBS = (SYN, ACK, ACK2, ACK3, RUMOR, PING, PONG, PING_REQ)
STATUS, TOKENS, SCHEMA, LOAD, DC, RACK, HOST_ID, NATIVE_ADDRESS, RELEASE_VERSION = (
    "STATUS", "TOKENS", "SCHEMA", "LOAD", "DC", "RACK", "HOST_ID", "NATIVE_ADDRESS", "RELEASE_VERSION",
)
GONE = ("left", "removed")
BEHIND_ALL = 1 << 62  # how far behind a peer is that lacks an endpoint (or its generation) entirely

Message = tuple[str, str, list]


@dataclass(frozen=True)
class Event:
    kind: str  # "joined", "up", "down", "changed", "left"
    endpoint: str
    key: str | None = None
    value: Any = None


@dataclass(frozen=True)
class GossipStatistics:
    rounds: int
    messages_sent: int
    messages_received: int
    bytes_sent: int  # msgpack sizes of the bodies
    bytes_received: int
    convictions: int  # times this node marked an endpoint down
    suspicions: int  # probes of ours that failed and opened a suspicion
    refutations: int  # times we refuted a suspicion of ourselves
    live: int
    down: int
    heartbeat_age: Mapping[str, float | None]  # peer -> seconds since its last heartbeat or probe answer


class Gossiper:
    """One node's gossip state machine. `interval` defaults to the detector's expected interval; `fanout` is how
    many peers a new suspicion or refutation is flooded to; `max_message_bytes` bounds each ACK/ACK2/ACK3
    (estimated msgpack size; a single endpoint larger than that is still sent, alone); `confirmations` is how many
    independent confirmations bring a suspicion to its shortest conviction time."""

    def __init__(
        self,
        endpoint: str,
        generation: int,
        seeds: Iterable[str],
        rng: random.Random,
        detector: FailureDetector | None = None,
        quarantine_s: float = 60.0,
        *,
        interval: float | None = None,
        fanout: int = 3,
        max_message_bytes: int = 65536,
        probe_helpers: int = 5,
        probes_per_round: int = 2,
        confirmations: int = 3,
    ) -> None:
        self.endpoint = endpoint
        self.seeds = [s for s in seeds if s != endpoint]
        self.rng = rng
        self.detector = detector or FailureDetector()
        self.quarantine_s = quarantine_s
        self.interval = interval if interval is not None else self.detector.expected_interval
        self.fanout = fanout
        self.max_message_bytes = max_message_bytes
        self.confirmations = confirmations
        self._token = object()  # marks the EndpointStates this gossiper may modify in place (endpoint_state.py)
        self.endpoints: dict[str, EndpointState] = {endpoint: EndpointState(generation, owner=self._token)}
        self.live = Pool()  # live peers: read it as a set; only the gossiper changes it
        self._down = Pool()  # convicted, not gone: whom we sometimes gossip with to notice a recovery
        self._suspected: set[str] = set()  # open suspicions we know of
        self._checked: set[str] = set()  # ... and those we have pinged ourselves, halfway to conviction
        self._summary = Summary()
        self._summary.add(endpoint)
        self._rehash(endpoint)
        self._prober = Prober(rng, self.interval, helpers=probe_helpers, per_round=probes_per_round)
        self._quarantine: dict[str, tuple[int, float]] = {}  # endpoint -> (generation, until)
        self._events: list[Event] = []
        self._last_now: float | None = None
        self._grace_until = float("-inf")
        self.rounds = 0
        self._sent = [0, 0]  # messages, bytes
        self._received = [0, 0]
        self.convictions = 0
        self.suspicions = 0
        self.refutations = 0

    # -- local state -----------------------------------------------------------------------------------------------

    @property
    def local(self) -> EndpointState:
        return self.endpoints[self.endpoint]

    def set_local_state(self, key: str, value: Any) -> None:
        """Publish KEY = VALUE for this node; it spreads from the next round on."""
        local = self.local
        local.version += 1
        local.set(key, value, local.version)
        self._rehash(self.endpoint)

    def preload(self, endpoint: str, state: EndpointState) -> None:
        """Install a peer's state as if gossip had brought it, live, without events: a simulator's warm start, or
        a node restoring the peers it saved. A state with no owner is shared, not copied (we copy it before any
        change; see endpoint_state.py); one with an owner is copied. No heartbeat arrival is recorded. Ignored if
        we already know that endpoint."""
        if endpoint == self.endpoint or endpoint in self.endpoints:
            return
        mine = state if state.owner is None else state.copy(self._token)
        mine.hashed = digest_hash(endpoint, mine.generation, mine.app_version, mine.suspect, mine.alive)  # a cache
        self.endpoints[endpoint] = mine
        self._summary.add(endpoint, mine.hashed)
        if not self._gone(endpoint) and not mine.suspected():
            self.live.add(endpoint)

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    # -- rounds and timers -------------------------------------------------------------------------------------------

    def tick(self, now: float) -> list[Message]:
        """One gossip round: bump the heartbeat, run due timers, gossip with a peer (and maybe an unreachable one
        or a seed), start this round's probes. Returns (peer, verb, body) messages to send."""
        out = self._timers(now)
        self.rounds += 1
        self.local.version += 1
        for endpoint, (_gen, until) in list(self._quarantine.items()):
            if now >= until:
                del self._quarantine[endpoint]
        peers = []
        if self.live:
            peers.append(self.live.choice(self.rng))
        if self._down and self.rng.random() < len(self._down) / (len(self.live) + 1):
            peers.append(self._down.choice(self.rng))
        if self.seeds and (not self.live or self.rng.random() < len(self.seeds) / (len(self.endpoints))):
            seed = self.rng.choice(self.seeds)
            if seed not in peers:
                peers.append(seed)
        buckets = bucket_count(len(self.endpoints))
        summary = self._summary.fold(buckets)
        out.extend((peer, SYN, [buckets, summary]) for peer in peers)
        out.extend(self._prober.start(now, self._hello(), self._probe_candidates, self._probe_valid))
        return self._count(out)

    def advance(self, now: float) -> list[Message]:
        """Run the timers due by `now` (probe escalations and failures, convictions); call it at deadline()."""
        return self._count(self._timers(now))

    def unreachable(self, endpoint: str, now: float) -> list[Message]:
        """The transport lost its connection to `endpoint` or was refused one: probe it at once, directly and
        through helpers. This alone never suspects anyone (a restarting node refuses connections for a moment);
        the probe must fail first, as any probe. Ignored for endpoints not live, gone or already being probed."""
        self._observe(now)
        if endpoint not in self.live or self._gone(endpoint):
            return []
        return self._count(self._prober.probe_now(now, endpoint, self._hello(), self._pick_helpers))

    def deadline(self) -> float | None:
        """When advance() next has work: a probe timer or a suspicion reaching conviction. O(suspicions)."""
        times: list[float] = []
        probe = self._prober.deadline()
        if probe is not None:
            times.append(probe)
        for e in self._suspected:
            since = self.detector.suspected_since(e)
            if since is not None and e in self.live:
                delay = self.detector.conviction_delay(e, self._scale(e)) * (1.0 if e in self._checked else 0.5)
                times.append(max(since + delay + 1e-6, self._grace_until))
        return min(times) if times else None

    def _timers(self, now: float) -> list[Message]:
        self._observe(now)
        out, failed = self._prober.expire(now, self._hello(), self._pick_helpers)
        for target in failed:
            out.extend(self._suspect(target, now))
        out.extend(self._check_suspects(now))
        self._convict_due(now)
        return out

    def _check_suspects(self, now: float) -> list[Message]:
        """Halfway to conviction, ping the suspect ourselves and tell it it is suspected: a refutation the flood
        lost reaches us by the PONG, or by its fresh refutation."""
        out: list[Message] = []
        for e in sorted(self._suspected - self._checked):
            if e in self.live and self.detector.phi(e, now) > self.detector.threshold * self._scale(e) / 2:
                self._checked.add(e)
                out.append((e, PING, [0, *self._hello()]))
                out.append((e, RUMOR, [self._record(e, now)]))
        return out

    def _observe(self, now: float) -> None:
        if self._last_now is not None and now - self._last_now > 1.5 * self.interval:
            self._prober.reset()  # we were stalled: silence during it proves nothing about others
            self._grace_until = now + self.interval
        if self._last_now is None or now > self._last_now:
            self._last_now = now

    def _hello(self) -> list:
        return [self.local.generation, self.local.version]

    def _probe_candidates(self) -> list[str]:
        return [e for e in self.endpoints if e != self.endpoint and not self._gone(e)]

    def _probe_valid(self, endpoint: str) -> bool:
        return endpoint in self.endpoints and not self._gone(endpoint)

    def _pick_helpers(self, k: int, target: str) -> list[str]:
        return self.live.sample(self.rng, k, (target,))

    # -- messages ----------------------------------------------------------------------------------------------------

    def handle(self, sender: str, verb: str, body: list, now: float) -> list[Message]:
        """Apply one gossip message from SENDER; returns the replies to send. Raises ProtocolError if malformed."""
        self._observe(now)
        self._received[0] += 1
        self._received[1] += len(msgpack.packb(body, default=str))
        try:
            out = self._dispatch(sender, verb, body, now)
        except (TypeError, ValueError, KeyError, IndexError) as e:
            raise ProtocolError(f"malformed {verb} from {sender}: {e!r}") from e
        self._convict_due(now)
        return self._count(out)

    def _dispatch(self, sender: str, verb: str, body: list, now: float) -> list[Message]:
        if verb == SYN:
            return self._on_syn(sender, int(body[0]), bytes(body[1]))
        if verb == ACK:
            return self._on_ack(sender, int(body[0]), body[1], body[2], now)
        if verb == ACK2:
            requests, deltas = body
            out = self._apply(deltas, sender, now)
            pushes = []
            for endpoint, generation, version in requests:
                mine = self.endpoints.get(endpoint)
                if mine is not None and mine.generation >= generation:
                    same = mine.generation == generation and version >= 0
                    pushes.append((mine.app_version - version if same else BEHIND_ALL, endpoint,
                                   version if same else -1))
            reply = self._deltas(pushes, self.max_message_bytes, now)
            if reply:
                out.append((sender, ACK3, [reply]))
            return out
        if verb == ACK3:
            return self._apply(body[0], sender, now)
        if verb == RUMOR:
            changed = []
            for record in body:
                endpoint, generation, heartbeat, suspect, age, alive = record[:6]
                mine = self.endpoints.get(endpoint)
                if mine is not None and mine.generation == generation and not self._quarantined(endpoint, generation):
                    new = self._merge_liveness(endpoint, mine, heartbeat, suspect, age, alive, now)
                    if self._confirm(endpoint, suspect, record[6] if len(record) > 6 else ()) or new:
                        changed.append(endpoint)
            return self._flood(changed, sender, now)
        if verb == PING:
            seq, generation, heartbeat = body
            out = self._evidence(sender, generation, heartbeat, now)
            return [(sender, PONG, [seq, self.endpoint, *self._hello()]), *out]
        if verb == PONG:
            seq, endpoint, generation, heartbeat = body
            out = self._evidence(endpoint, generation, heartbeat, now)
            return out + self._prober.answered(seq, endpoint, [generation, heartbeat])
        if verb == PING_REQ:
            seq, target = body
            return self._prober.relay(now, sender, seq, target, self._hello())
        raise ValueError(f"unknown gossip verb {verb}")

    def _on_syn(self, sender: str, buckets: int, summary: bytes) -> list[Message]:
        if buckets < 1 or buckets > FINE or buckets & (buckets - 1):
            raise ValueError(f"bucket count {buckets} is not a power of two up to {FINE}")
        differing = self._summary.differing(buckets, summary)
        if not differing:
            return []
        self.rng.shuffle(differing)
        chosen: list[int] = []
        digests: list[list] = []
        used = 0
        for bucket in differing:
            members = self._summary.members(buckets, bucket)
            cost = 8 + sum(len(e) + 20 for e in members)
            if chosen and used + cost > self.max_message_bytes:
                break
            chosen.append(bucket)
            used += cost
            for e in members:
                s = self.endpoints[e]
                digests.append([e, s.generation, s.app_version, s.suspect, s.alive])
        return [(sender, ACK, [buckets, chosen, digests])]

    def _on_ack(self, sender: str, buckets: int, chosen: list, digests: list, now: float) -> list[Message]:
        if buckets < 1 or buckets > FINE or buckets & (buckets - 1):
            raise ValueError(f"bucket count {buckets} is not a power of two up to {FINE}")
        requests, pushes, theirs = [], [], set()
        for endpoint, generation, version, suspect, alive in digests:
            theirs.add(endpoint)
            mine = self.endpoints.get(endpoint)
            if mine is None or generation > mine.generation:
                if not self._quarantined(endpoint, generation):
                    requests.append([endpoint, generation, -1])
            elif generation < mine.generation:
                pushes.append((BEHIND_ALL, endpoint, -1))
            else:
                if version > mine.app_version or suspect > mine.suspect or alive > mine.alive:
                    requests.append([endpoint, generation, mine.app_version])
                if version < mine.app_version or suspect < mine.suspect or alive < mine.alive:
                    pushes.append((mine.app_version - version, endpoint, version))
        for bucket in chosen:
            for endpoint in self._summary.members(buckets, int(bucket)):
                if endpoint not in theirs:
                    pushes.append((BEHIND_ALL, endpoint, -1))
        budget = self.max_message_bytes - sum(len(r[0]) + 12 for r in requests)
        deltas = self._deltas(pushes, budget, now)
        return [(sender, ACK2, [requests, deltas])] if requests or deltas else []

    def _deltas(self, pushes: list[tuple[int, str, int]], budget: int, now: float) -> dict[str, list]:
        """Deltas for (behind, endpoint, since version), furthest behind first, within `budget` bytes."""
        pushes.sort(key=lambda p: (-p[0], p[1]))
        out: dict[str, list] = {}
        used = 0
        for _behind, endpoint, since in pushes:
            s = self.endpoints[endpoint]
            newer = {k: [value, v] for k, (value, v) in s.states.items() if v > since}
            cost = 24 + len(endpoint) + sum(s.sizes.get(k, 16) for k in newer)
            if out and used + cost > budget:
                break
            used += cost
            out[endpoint] = [s.generation, s.version, newer, s.suspect, self._age(endpoint, now), s.alive,
                             *self._confirmers(endpoint)]
        return out

    def _age(self, endpoint: str, now: float) -> float:
        since = self.detector.suspected_since(endpoint)
        return 0.0 if since is None else max(0.0, now - since)

    def _apply(self, deltas: dict, sender: str, now: float) -> list[Message]:
        changed = []
        for endpoint, delta in deltas.items():
            generation, heartbeat, states, suspect, age, alive = delta[:6]
            if endpoint == self.endpoint:
                if generation == self.local.generation and self._merge_liveness(
                        endpoint, self.local, heartbeat, suspect, age, alive, now):
                    changed.append(endpoint)
                continue
            if self._quarantined(endpoint, generation):
                continue
            mine = self.endpoints.get(endpoint)
            if mine is None or generation > mine.generation:
                if mine is not None:
                    self._forget(endpoint)
                else:
                    self._summary.add(endpoint)
                    self._events.append(Event("joined", endpoint))
                folded = mine.hashed if mine is not None else 0
                mine = self.endpoints[endpoint] = EndpointState(generation, -1, owner=self._token, hashed=folded)
            elif generation < mine.generation:
                continue
            else:
                mine = self._own(endpoint)
            if heartbeat > mine.version:
                mine.version = heartbeat
                self.detector.report(endpoint, now)
            for key, (value, version) in states.items():
                old = mine.states.get(key)
                if old is None or version > old[1]:
                    mine.set(key, value, version)
                    if old is None or old[0] != value:
                        self._events.append(Event("changed", endpoint, key, value))
                    if key == STATUS and value in GONE:
                        self._leave(endpoint, generation, now)
            new = self._merge_liveness(endpoint, mine, heartbeat, suspect, age, alive, now)
            if self._confirm(endpoint, suspect, delta[6] if len(delta) > 6 else ()) or new:
                changed.append(endpoint)
            if not new:
                self._rehash(endpoint)
                self._reconsider(endpoint, now)
        return self._flood(changed, sender, now)

    # -- liveness ----------------------------------------------------------------------------------------------------

    def _merge_liveness(self, endpoint: str, mine: EndpointState, heartbeat: int, suspect: int, age: float,
                        alive: int, now: float) -> bool:
        """Merge a peer's suspicion and refutation fields; True if we learned something to pass on."""
        changed = False
        if alive > mine.alive or suspect > mine.suspect:
            mine = self._own(endpoint)
        if alive > mine.alive:
            mine.alive = alive
            changed = True
        if suspect > mine.suspect:
            mine.suspect = suspect
            changed = True
        if endpoint == self.endpoint:
            if mine.suspected():  # someone suspects us: refute with a fresh heartbeat
                self.refutations += 1
                mine.version += 1
                mine.alive = mine.version
                changed = True
            if changed:
                self._rehash(endpoint)
            return changed
        if mine.suspected() and suspect == mine.suspect and not self._gone(endpoint):
            self.detector.suspect(endpoint, now - max(0.0, float(age)))
        if changed:
            self._rehash(endpoint)
            self._reconsider(endpoint, now)
        return changed

    def _evidence(self, endpoint: str, generation: int, heartbeat: int, now: float) -> list[Message]:
        """Direct word from `endpoint` (or a relayed probe answer): it is alive at `heartbeat`."""
        mine = self.endpoints.get(endpoint)
        if mine is None or endpoint == self.endpoint or generation != mine.generation:
            return []
        self.detector.report(endpoint, now)
        if heartbeat > mine.version:
            mine = self._own(endpoint)
            mine.version = heartbeat
        if mine.suspected() and heartbeat > mine.suspect:
            mine = self._own(endpoint)
            mine.alive = heartbeat  # refute on its behalf
            self._rehash(endpoint)
            self._reconsider(endpoint, now)
            return self._flood([endpoint], endpoint, now)
        return []

    def _suspect(self, target: str, now: float) -> list[Message]:
        """Our probe of `target` failed: open a suspicion and flood it (to the suspect too, so it can refute)."""
        mine = self.endpoints.get(target)
        if mine is None or target == self.endpoint or self._gone(target):
            return []
        if mine.suspected():  # someone else suspected it first: confirm
            return self._flood([target], None, now) if self._confirm(target, mine.suspect, [self.endpoint]) else []
        mine = self._own(target)
        mine.suspect = max(mine.version, mine.alive, mine.suspect)
        self.suspicions += 1
        self.detector.suspect(target, now)
        self.detector.confirm(target, [self.endpoint])
        self._rehash(target)
        self._reconsider(target, now)
        out = self._flood([target], None, now)
        if all(peer != target for peer, _, _ in out):
            out.append((target, RUMOR, [self._record(target, now)]))
        return out

    def _reconsider(self, endpoint: str, now: float) -> None:
        """Bring `endpoint`'s live/down standing in line with its state; emits up and down events."""
        if endpoint == self.endpoint:
            return
        mine = self.endpoints[endpoint]
        if self._gone(endpoint):
            self._suspected.discard(endpoint)
            self._checked.discard(endpoint)
            return
        if mine.suspected():
            if self.detector.suspected_since(endpoint) is None:
                self.detector.suspect(endpoint, now)
            self._suspected.add(endpoint)
            if endpoint not in self.live and endpoint not in self._down:
                if self.detector.is_alive(endpoint, now, self._scale(endpoint)):
                    self._mark_up(endpoint)
                else:  # we first hear of it already convicted elsewhere: down, never up
                    self._down.add(endpoint)
                    self._events.append(Event("down", endpoint))
            return
        if endpoint in self._suspected:
            self._suspected.discard(endpoint)
            self._checked.discard(endpoint)
            self.detector.refute(endpoint, now, learn=endpoint in self.live)
        if endpoint not in self.live:
            self._mark_up(endpoint)

    def _convict_due(self, now: float) -> None:
        if now < self._grace_until:
            return
        for endpoint in sorted(self._suspected):
            if endpoint in self.live and not self.detector.is_alive(endpoint, now, self._scale(endpoint)):
                self.live.discard(endpoint)
                self._down.add(endpoint)
                self.convictions += 1
                self._events.append(Event("down", endpoint))

    def _mark_up(self, endpoint: str) -> None:
        self._down.discard(endpoint)
        self.live.add(endpoint)
        self._events.append(Event("up", endpoint))

    def _forget(self, endpoint: str) -> None:
        """An older generation of `endpoint` is superseded: drop its liveness standing."""
        self.detector.remove(endpoint)
        self._suspected.discard(endpoint)
        self._checked.discard(endpoint)
        self._down.discard(endpoint)
        self.live.discard(endpoint)

    def _own(self, endpoint: str) -> EndpointState:
        """`endpoint`'s state, made ours to modify (copied first if it is shared)."""
        s = self.endpoints[endpoint]
        if s.owner is not self._token:
            s = self.endpoints[endpoint] = s.copy(self._token)
        return s

    def _record(self, endpoint: str, now: float) -> list:
        s = self.endpoints[endpoint]
        return [endpoint, s.generation, s.version, s.suspect, self._age(endpoint, now), s.alive,
                *self._confirmers(endpoint)]

    def _confirmers(self, endpoint: str) -> list[list[str]]:
        """The optional last field of a delta or RUMOR record: [[who confirmed the open suspicion of `endpoint`,
        at most `confirmations` + 1 names]], or nothing (the 6-field form older nodes read) when nobody did."""
        confirmed = self.detector.confirmers(endpoint)
        return [sorted(confirmed)[:self.confirmations + 1]] if confirmed else []

    def _confirm(self, endpoint: str, suspect: int, by: Iterable[str]) -> bool:
        """Add `by` to the confirmers of the open suspicion of `endpoint` if `suspect` is that suspicion (not
        one already refuted); True if that told us something worth passing on (we had fewer than needed)."""
        mine = self.endpoints[endpoint]
        if not by or endpoint == self.endpoint or not mine.suspected() or suspect < mine.alive:
            return False
        if len(self.detector.confirmers(endpoint)) > self.confirmations:
            return False
        return self.detector.confirm(endpoint, by)

    def _scale(self, endpoint: str) -> float:
        """How much of the threshold convicts `endpoint` now, given its confirmations (failure_detector.py)."""
        confirmed = len(self.detector.confirmers(endpoint)) - 1
        possible = min(self.confirmations, len(self.live) - (endpoint in self.live))
        return self.detector.scale(confirmed, possible)

    def _flood(self, endpoints: list[str], sender: str | None, now: float) -> list[Message]:
        """Pass newly learned suspicions and refutations to `fanout` random live peers, at once."""
        if not endpoints:
            return []
        records = [self._record(e, now) for e in endpoints]
        exclude = {self.endpoint, *([sender] if sender else [])}
        return [(peer, RUMOR, records) for peer in self.live.sample(self.rng, self.fanout, exclude)]

    def _rehash(self, endpoint: str) -> None:
        """Fold `endpoint`'s changed digest into our summary (its state records what is folded now)."""
        s = self.endpoints[endpoint]
        new = digest_hash(endpoint, s.generation, s.app_version, s.suspect, s.alive)
        if new != s.hashed:  # only a state we own can have changed
            self._summary.change(endpoint, s.hashed, new)
            s.hashed = new

    def _quarantined(self, endpoint: str, generation: int) -> bool:
        q = self._quarantine.get(endpoint)
        return q is not None and generation <= q[0]

    def _gone(self, endpoint: str) -> bool:
        status = self.endpoints[endpoint].states.get(STATUS)
        return status is not None and status[0] in GONE

    def _leave(self, endpoint: str, generation: int, now: float) -> None:
        self._forget(endpoint)
        self._quarantine[endpoint] = (generation, now + self.quarantine_s)
        self._events.append(Event("left", endpoint))

    def _count(self, out: list[Message]) -> list[Message]:
        self._sent[0] += len(out)
        for _, _, body in out:
            self._sent[1] += len(msgpack.packb(body, default=str))
        return out

    # -- views -------------------------------------------------------------------------------------------------------

    def state(self, endpoint: str, key: str) -> Any:
        entry = self.endpoints.get(endpoint)
        if entry is None or key not in entry.states:
            return None
        return entry.states[key][0]

    def view(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """Every endpoint's generation and application states (what two converged nodes agree on)."""
        return {e: (s.generation, {k: v for k, (v, _) in s.states.items()}) for e, s in self.endpoints.items()}

    def view_hash(self) -> str:
        """16 hex digits over every endpoint's generation and application states (not heartbeats): two
        converged nodes show the same hash. O(N) in endpoints and states."""
        h = blake2b(digest_size=8)
        for endpoint in sorted(self.endpoints):
            s = self.endpoints[endpoint]
            states = sorted((k, v) for k, (v, _) in s.states.items())
            h.update(msgpack.packb([endpoint, s.generation, states], default=str))
        return h.hexdigest()

    def statistics(self, now: float) -> GossipStatistics:
        """Counters since start, and per known peer the seconds since its last heartbeat (None: never)."""
        ages: dict[str, float | None] = {}
        for endpoint in self.endpoints:
            if endpoint != self.endpoint:
                last = self.detector.last_heartbeat(endpoint)
                ages[endpoint] = None if last is None else max(0.0, now - last)
        return GossipStatistics(self.rounds, self._sent[0], self._received[0], self._sent[1], self._received[1],
                                self.convictions, self.suspicions, self.refutations, len(self.live),
                                len(self._down), ages)
