"""Pool: a set with O(1) add and uniform random choice, and O(N) discard (sans-IO).

How this works. Items live in a list for choosing and in a set for membership; discard finds the item in the list
and moves the last item into the hole, so it costs O(N): gossip discards only when an endpoint goes down or
leaves, while it picks at random every round. Choosing at random is indexing the list with an injected
random.Random, so a seeded run replays exactly (iterating a Python set of strings would not: string hashes change
between processes). Gossip keeps its live and convicted peers in pools because it picks among them every round,
and at N = 1,000 sorting a set each time would make a simulated round O(N^2 log N). A Pool is a read-only Set to
its readers (`in`, len, iteration in list order, comparison with sets); about 50 bytes an item.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Set


class Pool(Set[str]):
    def __init__(self, items: Iterable[str] = ()) -> None:
        self.items: list[str] = []
        self._members: set[str] = set()
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self.items)

    def __contains__(self, item: object) -> bool:
        return item in self._members

    def __iter__(self) -> Iterator[str]:
        return iter(self.items)

    def __repr__(self) -> str:
        return f"Pool({self.items!r})"

    def add(self, item: str) -> None:
        if item not in self._members:
            self._members.add(item)
            self.items.append(item)

    def discard(self, item: str) -> None:
        """Remove ITEM if present. O(N)."""
        if item not in self._members:
            return
        self._members.discard(item)
        i = self.items.index(item)
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last

    def choice(self, rng: random.Random) -> str:
        """A uniformly random item. The pool must not be empty."""
        return self.items[rng.randrange(len(self.items))]

    def sample(self, rng: random.Random, k: int, exclude: Iterable[str] = ()) -> list[str]:
        """Up to K distinct random items, none in EXCLUDE. O(k) expected."""
        skip = {e for e in exclude if e in self._members}
        k = min(k, len(self.items) - len(skip))
        out: list[str] = []
        taken = set(skip)
        while len(out) < k:
            item = self.items[rng.randrange(len(self.items))]
            if item not in taken:
                taken.add(item)
                out.append(item)
        return out
