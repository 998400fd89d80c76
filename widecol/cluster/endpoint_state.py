"""EndpointState: what gossip knows of one endpoint (sans-IO).

How this works. A generation (the endpoint's start time) and a heartbeat version it bumps every round; application
states, each stamped with the version current when it was set (so `app_version`, the highest stamp, orders
everything the endpoint said within a generation); and two liveness fields merged by maximum, `suspect` (the
heartbeat version a prober knew when its probe failed) and `alive` (the version of the endpoint's last
refutation). A suspicion is open while suspect >= alive. `sizes` caches each state's packed size for message
budgets; `hashed` is the digest hash (summary.py) the gossipers holding this object have folded into their
summaries.

Sharing. A state object is modified in place only by its `owner` (a token of one Gossiper); an object with any
other owner, or none, is read-only for everyone, so many gossipers may hold the same one (a simulator's warm start
shares one object per endpoint among all N nodes instead of N copies). A gossiper about to change a state it does
not own takes a copy() first. The `states` and `sizes` dicts are never modified in place either: set() replaces
them, so copies share them until they diverge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack


@dataclass(slots=True)
class EndpointState:
    generation: int
    version: int = 0  # heartbeat version
    states: dict[str, tuple[Any, int]] = field(default_factory=dict)  # key -> (value, version); never mutated
    suspect: int = -1
    alive: int = -1
    app_version: int = 0  # highest state version
    sizes: dict[str, int] = field(default_factory=dict, repr=False, compare=False)  # key -> packed bytes
    owner: object = field(default=None, repr=False, compare=False)  # who may modify it in place (None: nobody)
    hashed: int = field(default=0, repr=False, compare=False)  # digest hash as folded into its holders' summaries

    def max_version(self) -> int:
        return max(self.version, self.app_version)

    def suspected(self) -> bool:
        return self.suspect >= 0 and self.suspect >= self.alive

    def copy(self, owner: object = None) -> EndpointState:
        """A copy that `owner` may modify; O(1): the state dicts are shared (set() replaces, never mutates)."""
        return EndpointState(self.generation, self.version, self.states, self.suspect, self.alive, self.app_version,
                             self.sizes, owner, self.hashed)

    def set(self, key: str, value: Any, version: int) -> None:
        """Set KEY = VALUE at VERSION. O(number of states): the dicts are replaced, not modified."""
        self.states = {**self.states, key: (value, version)}
        self.sizes = {**self.sizes, key: len(key) + len(msgpack.packb(value, default=str)) + 6}
        self.app_version = max(self.app_version, version)
