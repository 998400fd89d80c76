"""Phi accrual failure detector over heartbeat arrivals (sans-IO).

How this works: for each endpoint we keep a bounded window of the intervals between heartbeat arrivals (the
moments gossip saw that endpoint's heartbeat version rise). Like Cassandra's detector we model arrivals as
exponential, so phi(now) = (now - last_arrival) / mean_interval / ln(10), i.e. -log10 of the probability that a
heartbeat this late is still coming. An endpoint whose phi exceeds the conviction threshold (default 8) is
convicted (down). The window is seeded with the expected interval so a fresh endpoint is judged sensibly, and
intervals longer than `max_interval` (e.g. a pause of ours) are not recorded, so one long gap does not inflate the
mean for ever. Time is always an argument; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

PHI_FACTOR = 1.0 / math.log(10.0)


@dataclass
class _Window:
    intervals: deque[float]
    total: float
    last: float


class FailureDetector:
    """Tracks heartbeat arrivals per endpoint and answers phi and up/down questions."""

    def __init__(self, threshold: float = 8.0, expected_interval: float = 1.0,
                 window_size: int = 1000, max_interval: float = 2.0) -> None:
        self.threshold = threshold
        self.expected_interval = expected_interval
        self.window_size = window_size
        self.max_interval = max_interval
        self._windows: dict[str, _Window] = {}

    def report(self, endpoint: str, now: float) -> None:
        """Record a heartbeat arrival from `endpoint` at `now`. O(1)."""
        window = self._windows.get(endpoint)
        if window is None:
            seed = deque([self.expected_interval], maxlen=self.window_size)
            self._windows[endpoint] = _Window(seed, self.expected_interval, now)
            return
        interval = now - window.last
        window.last = now
        if 0 < interval <= self.max_interval:
            if len(window.intervals) == self.window_size:
                window.total -= window.intervals[0]
            window.intervals.append(interval)
            window.total += interval

    def phi(self, endpoint: str, now: float) -> float:
        """Suspicion level of `endpoint` at `now`; 0 for an endpoint never heard from."""
        window = self._windows.get(endpoint)
        if window is None:
            return 0.0
        mean = window.total / len(window.intervals)
        return PHI_FACTOR * max(0.0, now - window.last) / mean

    def is_alive(self, endpoint: str, now: float) -> bool:
        """True unless phi at `now` exceeds the conviction threshold."""
        return self.phi(endpoint, now) <= self.threshold

    def remove(self, endpoint: str) -> None:
        """Forget `endpoint` (it left, or restarted with a new generation)."""
        self._windows.pop(endpoint, None)
