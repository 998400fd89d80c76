"""The token ring: which endpoint owns which token range, and who replicates it (sans-IO).

How this works. Every endpoint holds one or more Murmur3 tokens (signed 64-bit ints). Sorted, the tokens cut the
ring into ranges; the endpoint holding token t owns the range (previous token, t], and the first token's range
wraps around from the last token through MAX_TOKEN/MIN_TOKEN. A key with token k lives in the range of the first
ring token >= k (or of the first token of all, past the last one).

A Ring is immutable: membership changes (`with_endpoint`, `without`) build a new Ring, so a reader holding one
sees a consistent snapshot and caches never go stale. Replica placement belongs to the replication strategies
(widecol/cluster/replication.py); the Ring caches their answer per (strategy, range), because every key of a
range has the same replicas.

Ranges are written (start, end]: start exclusive, end inclusive. `ranges()` lists the ring's ranges in token
order from MIN_TOKEN with the wrapping range split in two, (MIN_TOKEN, first] and (last, MAX_TOKEN], so that
every listed range has start < end and range scans can walk them in order. MIN_TOKEN itself is never a key's
token (the partitioner maps it to MAX_TOKEN), so (MIN_TOKEN, ...] loses nothing.

Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping
from typing import Protocol

from widecol.storage.token import MAX_TOKEN, MIN_TOKEN

DEFAULT_DC = "datacenter1"
DEFAULT_RACK = "rack1"
# The width of the whole ring (MIN_TOKEN, MAX_TOKEN]: the denominator of ownership.
RING_WIDTH = MAX_TOKEN - MIN_TOKEN

TokenRange = tuple[int, int]


class PlacementStrategy(Protocol):
    """What a Ring needs of a replication strategy: a hashable value that places one range's replicas."""

    def __hash__(self) -> int: ...

    def calculate_replicas(self, ring: Ring, index: int) -> tuple[str, ...]:
        """The replicas of the range ending at ring token number INDEX (-1 when the ring is empty), uncached."""
        ...


class Ring:
    """An immutable snapshot of the ring: endpoints, their tokens, datacenters and racks.

    `tokens` maps endpoint -> its tokens; an endpoint with no tokens is not part of the ring. `dc` and `rack`
    default to Cassandra's "datacenter1" / "rack1". `local` names this node (it need not be in the ring yet: a
    joining node still writes its LocalStrategy keyspaces). Raises ValueError if two endpoints claim one token or
    a token is outside [MIN_TOKEN, MAX_TOKEN]. Building costs O(T log T) for T tokens.
    """

    __slots__ = ("_tokens", "_dc", "_rack", "local", "sorted_tokens", "_owners", "endpoints", "_cache",
                 "_ranges", "_topology")

    def __init__(
        self,
        tokens: Mapping[str, Iterable[int]] | None = None,
        dc: Mapping[str, str] | None = None,
        rack: Mapping[str, str] | None = None,
        local: str | None = None,
    ) -> None:
        self._tokens: dict[str, tuple[int, ...]] = {}
        owner_of: dict[int, str] = {}
        for endpoint, its_tokens in (tokens or {}).items():
            mine = tuple(sorted(set(its_tokens)))
            if not mine:
                continue
            for t in mine:
                if not MIN_TOKEN <= t <= MAX_TOKEN:
                    raise ValueError(f"token {t} of {endpoint} is outside the Murmur3 range")
                other = owner_of.setdefault(t, endpoint)
                if other != endpoint:
                    raise ValueError(f"token {t} claimed by both {other} and {endpoint}")
            self._tokens[endpoint] = mine
        dc, rack = dc or {}, rack or {}
        self._dc = {e: dc.get(e, DEFAULT_DC) for e in self._tokens}
        self._rack = {e: rack.get(e, DEFAULT_RACK) for e in self._tokens}
        if local is not None:
            self._dc.setdefault(local, dc.get(local, DEFAULT_DC))
            self._rack.setdefault(local, rack.get(local, DEFAULT_RACK))
        self.local = local
        self.sorted_tokens: tuple[int, ...] = tuple(sorted(owner_of))
        self._owners: tuple[str, ...] = tuple(owner_of[t] for t in self.sorted_tokens)
        self.endpoints: tuple[str, ...] = tuple(sorted(self._tokens))
        self._cache: dict[tuple[PlacementStrategy, int], tuple[str, ...]] = {}
        self._ranges: list[TokenRange] | None = None
        self._topology: dict[str, dict[str, tuple[str, ...]]] | None = None

    # ------------------------------------------------------------------------------------------------------
    # Lookups

    @property
    def is_empty(self) -> bool:
        return not self.sorted_tokens

    def __len__(self) -> int:
        """The number of endpoints in the ring."""
        return len(self.endpoints)

    def __repr__(self) -> str:
        return f"Ring({len(self.endpoints)} endpoints, {len(self.sorted_tokens)} tokens, local={self.local!r})"

    def tokens_of(self, endpoint: str) -> tuple[int, ...]:
        """ENDPOINT's tokens, sorted; () if it is not in the ring."""
        return self._tokens.get(endpoint, ())

    def dc_of(self, endpoint: str) -> str:
        return self._dc.get(endpoint, DEFAULT_DC)

    def rack_of(self, endpoint: str) -> str:
        return self._rack.get(endpoint, DEFAULT_RACK)

    @property
    def local_dc(self) -> str | None:
        return None if self.local is None else self.dc_of(self.local)

    def topology(self) -> dict[str, dict[str, tuple[str, ...]]]:
        """dc -> rack -> the ring's endpoints there (sorted). Computed once per Ring; do not mutate it."""
        if self._topology is None:
            topo: dict[str, dict[str, list[str]]] = {}
            for e in self.endpoints:
                topo.setdefault(self._dc[e], {}).setdefault(self._rack[e], []).append(e)
            self._topology = {d: {r: tuple(es) for r, es in racks.items()} for d, racks in topo.items()}
        return self._topology

    def datacenters(self) -> list[str]:
        """The datacenters that have endpoints in the ring, sorted."""
        return sorted(self.topology())

    def endpoints_in(self, dc: str) -> list[str]:
        return sorted(e for es in self.topology().get(dc, {}).values() for e in es)

    def token_index(self, token: int) -> int:
        """The position in sorted_tokens of the ring token whose range holds TOKEN. ValueError if empty."""
        if not self.sorted_tokens:
            raise ValueError("the ring is empty")
        i = bisect_left(self.sorted_tokens, token)
        return 0 if i == len(self.sorted_tokens) else i

    def token_owner(self, token: int) -> str:
        """The endpoint whose primary range holds TOKEN. ValueError if the ring is empty."""
        return self._owners[self.token_index(token)]

    def owner_at(self, index: int) -> str:
        """The endpoint holding sorted_tokens[INDEX] (any int: it wraps around the ring)."""
        return self._owners[index % len(self._owners)]

    # ------------------------------------------------------------------------------------------------------
    # Replicas

    def replicas(self, strategy: PlacementStrategy, token: int) -> list[str]:
        """STRATEGY's natural endpoints for TOKEN, the owner of its range first (when the strategy places
        replicas in the owner's DC). Cached per (strategy, range); the list returned is the caller's."""
        index = bisect_left(self.sorted_tokens, token) % len(self.sorted_tokens) if self.sorted_tokens else -1
        key = (strategy, index)
        found = self._cache.get(key)
        if found is None:
            found = self._cache[key] = tuple(strategy.calculate_replicas(self, index))
        return list(found)

    # ------------------------------------------------------------------------------------------------------
    # Ranges and ownership

    def ranges(self) -> list[TokenRange]:
        """The ring's ranges (start exclusive, end inclusive), in token order from MIN_TOKEN, covering
        (MIN_TOKEN, MAX_TOKEN] exactly once; the wrapping range comes split in two. [] for an empty ring.
        A range's owner and replicas are those of its end token. Computed once per Ring; the list is shared."""
        if self._ranges is None:
            ts = self.sorted_tokens
            out: list[TokenRange] = []
            if ts:
                if ts[0] > MIN_TOKEN:
                    out.append((MIN_TOKEN, ts[0]))
                out.extend(zip(ts, ts[1:], strict=False))
                if ts[-1] < MAX_TOKEN:
                    out.append((ts[-1], MAX_TOKEN))
            self._ranges = out
        return self._ranges

    def range_of(self, token: int) -> TokenRange:
        """The range of ranges() that holds TOKEN (TOKEN > MIN_TOKEN). ValueError if the ring is empty."""
        rs = self.ranges()
        if not rs:
            raise ValueError("the ring is empty")
        return rs[min(bisect_left(rs, token, key=lambda r: r[1]), len(rs) - 1)]

    def primary_ranges(self, endpoint: str) -> list[TokenRange]:
        """The ranges ENDPOINT owns (those ending at one of its tokens, plus the top split piece), in order."""
        return [r for r in self.ranges() if self.token_owner(r[1]) == endpoint]

    def ranges_for(self, strategy: PlacementStrategy, endpoint: str) -> list[TokenRange]:
        """The ranges ENDPOINT replicates under STRATEGY, in token order. O(ranges) cached lookups."""
        return [r for r in self.ranges() if endpoint in self.replicas(strategy, r[1])]

    def ownership(self, strategy: PlacementStrategy | None = None) -> dict[str, float]:
        """Each endpoint's share of the ring. Without STRATEGY the primary ownership (the shares sum to 1.0);
        with one the effective ownership, the share of the data each endpoint stores (sums to the number of
        replicas a range gets, e.g. RF). Every endpoint of the ring appears, possibly with 0.0."""
        owned = dict.fromkeys(self.endpoints, 0)
        for start, end in self.ranges():
            holders = [self.token_owner(end)] if strategy is None else self.replicas(strategy, end)
            for e in holders:
                owned[e] = owned.get(e, 0) + (end - start)
        return {e: width / RING_WIDTH for e, width in owned.items()}

    # ------------------------------------------------------------------------------------------------------
    # Changes

    def with_endpoint(self, endpoint: str, tokens: Iterable[int], dc: str = DEFAULT_DC,
                      rack: str = DEFAULT_RACK) -> Ring:
        """A new Ring where ENDPOINT holds exactly TOKENS (added, or moved if already present) in DC and RACK."""
        all_tokens: dict[str, Iterable[int]] = dict(self._tokens)
        all_tokens[endpoint] = tuple(tokens)
        return Ring(all_tokens, {**self._dc, endpoint: dc}, {**self._rack, endpoint: rack}, self.local)

    def without(self, endpoint: str) -> Ring:
        """A new Ring without ENDPOINT's tokens (the local endpoint stays named as local)."""
        all_tokens = {e: ts for e, ts in self._tokens.items() if e != endpoint}
        return Ring(all_tokens, self._dc, self._rack, self.local)

    def with_local(self, local: str | None) -> Ring:
        return Ring(self._tokens, self._dc, self._rack, local)

    def check(self) -> None:
        """Assert the invariants: tokens sorted and unique, in range, each owned by exactly one endpoint that
        lists it, and every endpoint's tokens present in the ring."""
        ts = self.sorted_tokens
        assert all(a < b for a, b in zip(ts, ts[1:], strict=False)), "tokens not strictly sorted"
        assert all(MIN_TOKEN <= t <= MAX_TOKEN for t in ts), "token out of range"
        assert len(self._owners) == len(ts), "owners and tokens differ in length"
        listed = sorted(t for mine in self._tokens.values() for t in mine)
        assert listed == list(ts), "endpoint token lists do not partition the ring"
        for t, e in zip(ts, self._owners, strict=True):
            assert t in self._tokens[e], f"token {t} owned by {e}, which does not list it"
        assert set(self.endpoints) == set(self._tokens), "endpoint list out of date"
        assert all(e in self._dc and e in self._rack for e in self.endpoints), "endpoint without dc/rack"
        rs = self.ranges()
        assert sum(end - start for start, end in rs) == (RING_WIDTH if ts else 0), "ranges do not cover the ring"
        assert all(start < end for start, end in rs), "empty or wrapping range listed"


def split_range(start: int | None, end: int | None, ring: Ring) -> list[TokenRange]:
    """The token range (START, END] cut at ring tokens: the non-empty pieces, in token order, each inside one
    ring range, so its replicas are `ring.replicas(strategy, piece_end)`. None bounds are unbounded (MIN_TOKEN,
    MAX_TOKEN). START >= END gives [] (CQL's token restrictions never wrap), as does an empty ring."""
    lo = MIN_TOKEN if start is None else start
    hi = MAX_TOKEN if end is None else end
    if lo >= hi:
        return []
    rs = ring.ranges()
    out: list[TokenRange] = []
    i = bisect_right(rs, lo, key=lambda r: r[1])  # the first range ending after lo
    while i < len(rs) and rs[i][0] < hi:
        s, e = max(rs[i][0], lo), min(rs[i][1], hi)
        if s < e:
            out.append((s, e))
        i += 1
    return out
