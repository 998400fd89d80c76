"""SWIM-style probes: is this endpoint answering, directly or through k helpers? (sans-IO)

How this works. Each round the prober picks `per_round` targets, round-robin over a freshly shuffled list of
candidates (so every endpoint is probed by every node once per pass, as in SWIM), and sends each a PING. If no
PONG has come back `direct_timeout` intervals later, it asks `helpers` other live nodes to ping the target for it
(PING_REQ) and pings it once more itself; a helper relays the target's PONG back. If nothing has come back by
`fail_timeout` intervals after the probe started (or, when the driver only calls tick once per interval, by the
round after the escalation), the target has failed this probe and the gossiper opens a suspicion of it. When the
transport reports a target unreachable, `probe_now` starts the direct and indirect stages together.

Timers are plain deadlines: `deadline()` says when `expire(now)` next has work; nothing here reads a clock.
Message bodies: PING [seq, generation, heartbeat] -> PONG [seq, endpoint, generation, heartbeat] (a helper relays
a PONG with the requester's seq); PING_REQ [seq, target].
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

PING, PONG, PING_REQ = "GOSSIP_PING", "GOSSIP_PONG", "GOSSIP_PING_REQ"

Message = tuple[str, str, list]


@dataclass
class _Probe:
    target: str
    escalate_at: float
    fail_at: float
    indirect: bool = False


@dataclass
class _Relay:
    requester: str
    seq: int  # the requester's
    target: str
    expires: float


class Prober:
    """Outstanding probes of one node, and the pings it relays for others."""

    def __init__(self, rng: random.Random, interval: float, helpers: int = 5, per_round: int = 2,
                 direct_timeout: float = 0.3, fail_timeout: float = 0.9) -> None:
        self.rng = rng
        self.interval = interval
        self.helpers = helpers
        self.per_round = per_round
        self.direct_timeout = direct_timeout * interval
        self.fail_timeout = fail_timeout * interval
        self._seq = 0
        self._order: list[str] = []
        self._probes: dict[int, _Probe] = {}
        self._relays: dict[int, _Relay] = {}

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def _next_target(self, candidates: Callable[[], list[str]], valid: Callable[[str], bool]) -> str | None:
        busy = {p.target for p in self._probes.values()}
        for _ in range(2):
            while self._order:
                target = self._order.pop()
                if target not in busy and valid(target):
                    return target
            self._order = candidates()
            self.rng.shuffle(self._order)
        return None

    def start(self, now: float, hello: list, candidates: Callable[[], list[str]],
              valid: Callable[[str], bool]) -> list[Message]:
        """Begin this round's probes. `hello` is our [generation, heartbeat]; `candidates()` lists whom we may
        probe (called once per pass, O(N) then, O(1) amortised); `valid(endpoint)` rechecks one."""
        out: list[Message] = []
        for _ in range(self.per_round):
            target = self._next_target(candidates, valid)
            if target is None:
                break
            seq = self._next_seq()
            self._probes[seq] = _Probe(target, now + self.direct_timeout, now + self.fail_timeout)
            out.append((target, PING, [seq, *hello]))
        return out

    def probe_now(self, now: float, target: str, hello: list,
                  pick_helpers: Callable[[int, str], list[str]]) -> list[Message]:
        """The transport says `target` is unreachable: probe it at once, directly and through helpers together
        (escalating a direct probe already under way); it fails `fail_timeout - direct_timeout` from now unless
        a PONG comes back. Nothing is sent if an indirect probe of `target` is already under way."""
        fail_at = now + self.fail_timeout - self.direct_timeout
        seq = next((s for s, p in self._probes.items() if p.target == target), None)
        if seq is None:
            seq = self._next_seq()
            self._probes[seq] = _Probe(target, now, fail_at, indirect=True)
        elif self._probes[seq].indirect:
            return []
        else:
            probe = self._probes[seq]
            probe.indirect = True
            probe.fail_at = max(probe.fail_at, fail_at)
        return [(target, PING, [seq, *hello])] + [
            (helper, PING_REQ, [seq, target]) for helper in pick_helpers(self.helpers, target)]

    def expire(self, now: float, hello: list,
               pick_helpers: Callable[[int, str], list[str]]) -> tuple[list[Message], list[str]]:
        """Escalate probes past their direct timeout, fail those past their last. Returns (messages, failed)."""
        out: list[Message] = []
        failed: list[str] = []
        for seq, probe in list(self._probes.items()):
            if not probe.indirect and probe.escalate_at <= now:
                probe.indirect = True
                probe.fail_at = max(probe.fail_at, now + self.fail_timeout - self.direct_timeout)
                out.append((probe.target, PING, [seq, *hello]))
                out.extend((helper, PING_REQ, [seq, probe.target])
                           for helper in pick_helpers(self.helpers, probe.target))
            elif probe.indirect and probe.fail_at <= now:
                del self._probes[seq]
                failed.append(probe.target)
        for seq, relay in list(self._relays.items()):
            if relay.expires <= now:
                del self._relays[seq]
        return out, failed

    def deadline(self) -> float | None:
        """When expire() next has something to do; None if no probe is outstanding."""
        times = [p.fail_at if p.indirect else p.escalate_at for p in self._probes.values()]
        return min(times) if times else None

    def reset(self) -> None:
        """Drop outstanding probes without failing them: we were stalled, so their silence proves nothing."""
        self._probes.clear()

    def relay(self, now: float, requester: str, seq: int, target: str, hello: list) -> list[Message]:
        """A PING_REQ from `requester`: ping `target` for it."""
        mine = self._next_seq()
        self._relays[mine] = _Relay(requester, seq, target, now + self.fail_timeout)
        return [(target, PING, [mine, *hello])]

    def answered(self, seq: int, endpoint: str, rest: list) -> list[Message]:
        """A PONG [seq, endpoint, *rest] arrived: settle our probe, or relay it to whoever asked us to ping."""
        probe = self._probes.get(seq)
        if probe is not None and probe.target == endpoint:
            del self._probes[seq]
            return []
        relay = self._relays.pop(seq, None)
        if relay is not None and relay.target == endpoint:
            return [(relay.requester, PONG, [relay.seq, endpoint, *rest])]
        return []
