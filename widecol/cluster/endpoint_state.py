"""EndpointState: what gossip knows of one endpoint (sans-IO).

How this works. A generation (the endpoint's start time) and a heartbeat version it bumps every round; application
states, each stamped with the version current when it was set (so `app_version`, the highest stamp, orders
everything the endpoint said within a generation); and two liveness fields merged by maximum, `suspect` (the
heartbeat version a prober knew when its probe failed) and `alive` (the version of the endpoint's last
refutation). A suspicion is open while suspect >= alive. `sizes` caches each state's packed size for message
budgets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack


@dataclass
class EndpointState:
    generation: int
    version: int = 0  # heartbeat version
    states: dict[str, tuple[Any, int]] = field(default_factory=dict)  # key -> (value, version)
    suspect: int = -1
    alive: int = -1
    app_version: int = 0  # highest state version
    sizes: dict[str, int] = field(default_factory=dict, repr=False, compare=False)  # key -> packed bytes

    def max_version(self) -> int:
        return max(self.version, self.app_version)

    def suspected(self) -> bool:
        return self.suspect >= 0 and self.suspect >= self.alive

    def set(self, key: str, value: Any, version: int) -> None:
        self.states[key] = (value, version)
        self.sizes[key] = len(key) + len(msgpack.packb(value, default=str)) + 6
        self.app_version = max(self.app_version, version)
