"""Choosing a joining node's tokens so that ownership stays even (sans-IO).

How this works. Balance is judged inside the new node's datacenter, on the sub-ring of that DC's tokens: that is
what NetworkTopologyStrategy places a DC's replicas by, and with a single DC it is the whole ring.

- First node of a DC: num_tokens evenly spaced tokens, rotated by an offset drawn from `seed`, so two DCs (or
  two clusters) do not share token positions.
- Otherwise the new node takes its share from the most loaded endpoints, by water-filling (`_plan`): the m
  most loaded endpoints and the new node are to end level at L = (their ownership summed) / (m + 1), each
  giver handing over (its ownership - L). When num_tokens >= the DC's endpoints, m covers every endpoint above
  the even share 1/(n+1) and the result is exactly even; with fewer tokens than endpoints only num_tokens of
  them can give, and the m leaving the smallest max/min is chosen.
- A giver gives through one or more tokens: at least as many as it takes for equal slices to fit its widest
  ranges (a slice is at most MAX_TAKE of a range), spare tokens going to the giver with the biggest slices.
  A new token s inside range (p, t] owned by E leaves E with (s, t] and gives the new node (p, s]: the slice
  decides where s goes. Slices are cut from E's widest ranges first.
- Each slice is scaled by a seed-drawn factor in [1 - JITTER, 1 + JITTER], so two nodes allocating against the
  same ring with different seeds pick different tokens; a token already in the ring (or already picked) is
  nudged forward to the next free value.

Only primary ownership is balanced; effective ownership under RF > 1 (which also depends on which endpoints
neighbour each other) is measured, not optimised. docs/ring.md has the measured balance.
"""

from __future__ import annotations

import heapq
import random

from widecol.cluster.ring import DEFAULT_DC, DEFAULT_RACK, Ring
from widecol.storage.token import MIN_TOKEN

SPACE = 2**64  # the number of token positions; tokens are handled as offsets u = t - MIN_TOKEN in [0, SPACE)
JITTER = 0.02
MAX_TAKE = 0.9


def allocate_tokens(
    ring: Ring,
    num_tokens: int,
    endpoint: str,
    dc: str = DEFAULT_DC,
    rack: str = DEFAULT_RACK,
    seed: int | str | bytes = 0,
) -> list[int]:
    """NUM_TOKENS new tokens for ENDPOINT joining RING in DC (sorted, distinct, none already in the ring, none
    MIN_TOKEN). If ENDPOINT is already in the ring its old tokens are ignored (a replacement). Deterministic in
    (ring, num_tokens, dc, seed). RACK is accepted for the interface; placement does not use it yet.
    Cost: O(num_tokens * (endpoints + log tokens)) after an O(T log T) setup for the DC's T tokens."""
    if num_tokens < 1:
        raise ValueError(f"num_tokens must be at least 1, got {num_tokens}")
    rng = random.Random(seed if isinstance(seed, int | str | bytes) else str(seed))
    base = ring.without(endpoint)
    taken = {t - MIN_TOKEN for t in base.sorted_tokens}
    members = [e for e in base.endpoints if base.dc_of(e) == dc]
    if not members:
        chosen = _evenly_spaced(num_tokens, rng)
    else:
        chosen = _take_from_most_loaded(base, members, num_tokens, rng)
    out: set[int] = set()
    for u in chosen:
        u %= SPACE
        while u in taken or u in out or u == 0:  # u == 0 is MIN_TOKEN, which no key ever hashes to
            u = (u + 1) % SPACE
        out.add(u)
    return sorted(u + MIN_TOKEN for u in out)


def _evenly_spaced(num_tokens: int, rng: random.Random) -> list[int]:
    step = SPACE // num_tokens
    offset = rng.randrange(step)
    return [offset + i * step for i in range(num_tokens)]


def _take_from_most_loaded(ring: Ring, members: list[str], num_tokens: int, rng: random.Random) -> list[int]:
    """The plan described in the module docstring, on the sub-ring of MEMBERS' tokens."""
    points = sorted((t - MIN_TOKEN, e) for e in members for t in ring.tokens_of(e))
    # Per endpoint, a max-heap of its ranges as (-width, start, end) in offsets (end may be < start: wrapping).
    heaps: dict[str, list[tuple[int, int, int]]] = {e: [] for e in members}
    owned = dict.fromkeys(members, 0)
    for i, (end, e) in enumerate(points):
        start = points[i - 1][0]
        width = (end - start) % SPACE or SPACE  # a single token owns the whole ring
        heaps[e].append((-width, start, end))
        owned[e] += width
    for h in heaps.values():
        heapq.heapify(h)
    chosen: list[int] = []
    widths = {e: sorted((-w for w, _, _ in h), reverse=True) for e, h in heaps.items()}
    for giver, amount, count in _plan(owned, widths, num_tokens):
        for left in range(count, 0, -1):
            neg_width, start, end = heapq.heappop(heaps[giver])
            width = -neg_width
            # What this giver still owes, spread over its remaining tokens; a shortfall carries forward.
            slice_ = int(min(amount / left, width * MAX_TAKE) * rng.uniform(1 - JITTER, 1 + JITTER))
            slice_ = min(max(1, slice_), width - 1)
            if slice_ < 1:  # a range one token wide cannot be split: place the token at its end (nudged later)
                heapq.heappush(heaps[giver], (neg_width, start, end))
                chosen.append(end)
                continue
            chosen.append(start + slice_)
            heapq.heappush(heaps[giver], (-(width - slice_), (start + slice_) % SPACE, end))
            amount -= slice_
    return chosen


def _plan(owned: dict[str, int], widths: dict[str, list[int]], num_tokens: int) -> list[tuple[str, float, int]]:
    """Who gives how much, in how many tokens: [(endpoint, amount, tokens)], tokens summing to NUM_TOKENS.

    Water-filling: the m most loaded endpoints (m <= num_tokens) and the new node end level at
    L = (sum of their ownership) / (m + 1), each giver giving (its ownership - L); of the counts m whose m-th
    endpoint still gives (owns > L), the one leaving the smallest max/min ownership wins, the larger on a tie.
    With num_tokens >= endpoints that is every endpoint above the even share 1/(n+1), and balance is exact.
    Each giver first gets the fewest tokens whose equal slices fit its largest ranges (WIDTHS, widest first);
    spare tokens go to whoever's per-token slice is largest (D'Hondt), so the new ranges come out similar."""
    ranked = sorted(owned, key=lambda e: (-owned[e], e))
    n = len(ranked)
    best: tuple[float, int, float] | None = None
    total = 0
    for m in range(1, min(num_tokens, n) + 1):
        total += owned[ranked[m - 1]]
        level = total / (m + 1)
        if owned[ranked[m - 1]] <= level:  # the m-th would not give: no larger m is valid either
            break
        highest = max(level, owned[ranked[m]]) if m < n else level
        spread = highest / min(level, owned[ranked[-1]])
        if best is None or spread <= best[0]:
            best = (spread, m, level)
    assert best is not None  # m = 1 is always valid: the most loaded endpoint owns more than half of itself
    _, m, level = best
    givers = ranked[:m]
    amounts = {e: owned[e] - level for e in givers}
    counts = dict.fromkeys(givers, 1)

    def overflow(g: str) -> float:  # > 1: equal slices would not fit the giver's counts[g] widest ranges
        c = counts[g]
        return 0.0 if c >= len(widths[g]) else amounts[g] / c / (MAX_TAKE * widths[g][c - 1])

    for _ in range(num_tokens - m):
        e = max(givers, key=overflow)
        if overflow(e) <= 1.0:
            e = max(givers, key=lambda g: amounts[g] / counts[g])
        counts[e] += 1
    return [(e, amounts[e], counts[e]) for e in givers]
