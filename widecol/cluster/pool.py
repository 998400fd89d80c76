"""Pool: a set with O(1) add, discard and uniform random choice (sans-IO).

How this works. Items live in a list, with a dict from item to its index; discard moves the last item into the
hole. Choosing at random is indexing the list with an injected random.Random, so a seeded run replays exactly
(iterating a Python set of strings would not: string hashes change between processes). Gossip keeps its live and
convicted peers in pools because it picks among them every round, and at N = 1,000 sorting a set each time would
make a simulated round O(N^2 log N).
"""

from __future__ import annotations

import random
from collections.abc import Iterable


class Pool:
    def __init__(self) -> None:
        self.items: list[str] = []
        self._index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: str) -> bool:
        return item in self._index

    def add(self, item: str) -> None:
        if item not in self._index:
            self._index[item] = len(self.items)
            self.items.append(item)

    def discard(self, item: str) -> None:
        i = self._index.pop(item, None)
        if i is None:
            return
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self._index[last] = i

    def choice(self, rng: random.Random) -> str:
        """A uniformly random item. The pool must not be empty."""
        return self.items[rng.randrange(len(self.items))]

    def sample(self, rng: random.Random, k: int, exclude: Iterable[str] = ()) -> list[str]:
        """Up to K distinct random items, none in EXCLUDE. O(k) expected."""
        skip = {e for e in exclude if e in self._index}
        k = min(k, len(self.items) - len(skip))
        out: list[str] = []
        taken = set(skip)
        while len(out) < k:
            item = self.items[rng.randrange(len(self.items))]
            if item not in taken:
                taken.add(item)
                out.append(item)
        return out
