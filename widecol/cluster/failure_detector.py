"""Phi accrual failure detection over suspicions and their refutations (sans-IO).

How this works. Gossip no longer carries every endpoint's heartbeat to every node each round (at N = 1,000 that
alone would cost more than the whole bandwidth budget), so a node cannot watch each peer's heartbeat stream. It
learns of trouble instead from a *suspicion*: some prober's direct and indirect probes of the endpoint went
unanswered (see probes.py). A live endpoint answers a suspicion by refuting it (a higher heartbeat version), which
gossip floods back. Phi accrual is applied to that stream: for each endpoint we keep a small window of how long
its past refutations took to arrive (seeded with `refute_interval`, by default a quarter of the gossip interval),
model them as exponential like Cassandra's detector models heartbeat gaps (the mean never drops below the
seed: quick refutations must not make us hasty), and

    phi(now) = (now - suspicion start) / mean refutation delay / ln(10)

i.e. -log10 of the probability that a live endpoint would still not have refuted after this long. The endpoint
is convicted when phi passes `threshold` (phi_convict_threshold, default 8: at the seed mean that is
8 * ln(10) / 4 = 4.6 gossip intervals). An endpoint that keeps refuting late (a node that stalls, a lossy link)
raises its own mean and so earns more patience, as a jittery heartbeat did before. Only refutations that came in
before conviction are recorded, and delays are capped at `max_interval` refute-means, so one partition does not
make an endpoint unconvictable for ever.

Confirmations (Lifeguard's dynamic suspicion timeout). A suspicion that other nodes confirm independently (their
own probes failed too) is likely true, so it needs less patience: with c of `expected` possible confirmations the
threshold is scaled by 1 - (1 - confirmed_fraction) * log(c + 1) / log(expected + 1), down to
`confirmed_fraction` (default 0.5: at threshold 8, 2.3 intervals instead of 4.6) once c reaches `expected`. A lone
suspicion (a lossy link, one slow prober) still stands the full time. The gossiper counts the confirmations.

Heartbeat arrivals (any direct or relayed evidence of life) are still recorded, for statistics. Time is always an
argument; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Set
from dataclasses import dataclass

PHI_FACTOR = 1.0 / math.log(10.0)
_NOBODY: frozenset[str] = frozenset()


@dataclass
class _Window:
    delays: deque[float]
    total: float


class FailureDetector:
    """Per endpoint: open suspicions, learned refutation delays, and the last heartbeat arrival."""

    def __init__(self, threshold: float = 8.0, expected_interval: float = 1.0, window_size: int = 16,
                 max_interval: float = 2.0, refute_interval: float | None = None,
                 confirmed_fraction: float = 0.5) -> None:
        self.threshold = threshold
        self.confirmed_fraction = confirmed_fraction
        self.expected_interval = expected_interval
        self.window_size = window_size
        self.max_interval = max_interval  # cap on a recorded refutation delay, in gossip intervals
        self.refute_interval = refute_interval if refute_interval is not None else expected_interval / 4
        self._windows: dict[str, _Window] = {}
        self._since: dict[str, float] = {}  # endpoint -> when its open suspicion started
        self._confirmed: dict[str, set[str]] = {}  # endpoint -> nodes whose own probes of it failed meanwhile
        self._arrivals: dict[str, float] = {}  # endpoint -> last evidence of life

    # -- evidence of life ----------------------------------------------------------------------------------------

    def report(self, endpoint: str, now: float) -> None:
        """Record evidence that `endpoint` was alive at `now` (a heartbeat rise, a probe answered). O(1)."""
        self._arrivals[endpoint] = now

    def last_heartbeat(self, endpoint: str) -> float | None:
        return self._arrivals.get(endpoint)

    # -- suspicions ------------------------------------------------------------------------------------------------

    def suspect(self, endpoint: str, since: float) -> None:
        """Open a suspicion of `endpoint` that started at `since`, or move an open one earlier."""
        current = self._since.get(endpoint)
        if current is None or since < current:
            self._since[endpoint] = since

    def suspected_since(self, endpoint: str) -> float | None:
        return self._since.get(endpoint)

    def confirm(self, endpoint: str, by: Iterable[str]) -> bool:
        """Record that the nodes `by` each failed to reach `endpoint` while its suspicion is open; True if any
        of them is new. Ignored (False) when no suspicion of `endpoint` is open. O(len(by))."""
        if endpoint not in self._since:
            return False
        confirmed = self._confirmed.setdefault(endpoint, set())
        before = len(confirmed)
        confirmed.update(by)
        return len(confirmed) > before

    def confirmers(self, endpoint: str) -> Set[str]:
        """Who independently suspects `endpoint` now (the first suspecter included); do not modify."""
        return self._confirmed.get(endpoint) or _NOBODY

    def refute(self, endpoint: str, now: float, learn: bool = True) -> None:
        """Close the open suspicion of `endpoint`, refuted at `now`; with `learn`, its delay joins the window."""
        self._confirmed.pop(endpoint, None)
        since = self._since.pop(endpoint, None)
        if since is None or not learn:
            return
        delay = min(max(0.0, now - since), self.max_interval * self.expected_interval)
        window = self._windows.get(endpoint)
        if window is None:
            window = _Window(deque([self.refute_interval], maxlen=self.window_size), self.refute_interval)
            self._windows[endpoint] = window
        if len(window.delays) == self.window_size:
            window.total -= window.delays[0]
        window.delays.append(delay)
        window.total += delay

    def mean_refutation(self, endpoint: str) -> float:
        window = self._windows.get(endpoint)
        if window is None:
            return self.refute_interval
        return max(window.total / len(window.delays), self.refute_interval)

    def phi(self, endpoint: str, now: float) -> float:
        """Suspicion level of `endpoint` at `now`: 0 unless a suspicion of it is open. O(1)."""
        since = self._since.get(endpoint)
        if since is None:
            return 0.0
        return PHI_FACTOR * max(0.0, now - since) / self.mean_refutation(endpoint)

    def scale(self, confirmations: int, expected: int) -> float:
        """The fraction of the threshold that convicts a suspicion confirmed by `confirmations` other nodes out
        of `expected` possible: 1 with none (or none possible), `confirmed_fraction` with all, log-shaped
        between (Lifeguard)."""
        if confirmations <= 0 or expected <= 0:
            return 1.0
        if confirmations >= expected:
            return self.confirmed_fraction
        return 1.0 - (1.0 - self.confirmed_fraction) * math.log(confirmations + 1) / math.log(expected + 1)

    def conviction_delay(self, endpoint: str, scale: float = 1.0) -> float:
        """How long an open suspicion of `endpoint` stands before conviction: threshold * scale * ln(10) * mean."""
        return self.threshold * scale * self.mean_refutation(endpoint) / PHI_FACTOR

    def is_alive(self, endpoint: str, now: float, scale: float = 1.0) -> bool:
        """True unless phi at `now` exceeds the conviction threshold (times `scale`, see scale())."""
        return self.phi(endpoint, now) <= self.threshold * scale

    def remove(self, endpoint: str) -> None:
        """Forget `endpoint` (it left, or restarted with a new generation)."""
        self._windows.pop(endpoint, None)
        self._since.pop(endpoint, None)
        self._confirmed.pop(endpoint, None)
        self._arrivals.pop(endpoint, None)
