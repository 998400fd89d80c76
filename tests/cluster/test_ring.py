"""The token ring: ownership of ranges, the range list, ownership shares and split_range."""

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.cluster.replication import SimpleStrategy
from widecol.cluster.ring import RING_WIDTH, Ring, split_range
from widecol.storage.token import MAX_TOKEN, MIN_TOKEN, token

ABC = Ring({"a": [-100], "b": [0], "c": [100]})


def test_a_token_belongs_to_the_first_ring_token_at_or_after_it():
    assert ABC.token_owner(-100) == "a"
    assert ABC.token_owner(-99) == "b"
    assert ABC.token_owner(0) == "b"
    assert ABC.token_owner(1) == "c"
    assert ABC.token_owner(100) == "c"


def test_tokens_past_the_last_ring_token_wrap_to_the_first():
    assert ABC.token_owner(101) == "a"
    assert ABC.token_owner(MAX_TOKEN) == "a"
    assert ABC.token_owner(MIN_TOKEN + 1) == "a"


def test_ranges_start_at_min_token_and_split_the_wrapping_range():
    assert ABC.ranges() == [(MIN_TOKEN, -100), (-100, 0), (0, 100), (100, MAX_TOKEN)]
    assert [ABC.token_owner(end) for _, end in ABC.ranges()] == ["a", "b", "c", "a"]
    assert ABC.primary_ranges("a") == [(MIN_TOKEN, -100), (100, MAX_TOKEN)]


def test_ring_tokens_at_the_extremes_give_no_empty_ranges():
    ring = Ring({"a": [MIN_TOKEN], "b": [MAX_TOKEN]})
    assert ring.ranges() == [(MIN_TOKEN, MAX_TOKEN)]
    assert ring.token_owner(MAX_TOKEN) == "b"
    ring.check()


def test_a_single_token_ring_owns_everything_in_two_pieces():
    ring = Ring({"a": [5]})
    assert ring.ranges() == [(MIN_TOKEN, 5), (5, MAX_TOKEN)]
    assert ring.ownership() == {"a": 1.0}


def test_an_empty_ring_has_no_ranges_and_no_owner():
    ring = Ring(local="me")
    assert ring.is_empty and ring.ranges() == [] and ring.endpoints == ()
    assert split_range(None, None, ring) == []
    with pytest.raises(ValueError):
        ring.token_owner(0)
    ring.check()


def test_two_endpoints_cannot_share_a_token():
    with pytest.raises(ValueError, match="claimed by both"):
        Ring({"a": [1, 2], "b": [2]})
    with pytest.raises(ValueError, match="outside"):
        Ring({"a": [MAX_TOKEN + 1]})
    with pytest.raises(ValueError):
        ABC.with_endpoint("d", [0])


def test_changes_build_new_rings_and_leave_the_old_one_alone():
    bigger = ABC.with_endpoint("d", [50], dc="dc2", rack="r9")
    assert bigger.token_owner(30) == "d" and ABC.token_owner(30) == "c"
    assert bigger.dc_of("d") == "dc2" and bigger.rack_of("d") == "r9"
    moved = bigger.with_endpoint("d", [200])
    assert moved.tokens_of("d") == (200,) and moved.token_owner(30) == "c"
    smaller = bigger.without("b")
    assert smaller.endpoints == ("a", "c", "d") and smaller.token_owner(-50) == "d"
    assert ABC.endpoints == ("a", "b", "c")
    for ring in (bigger, moved, smaller):
        ring.check()


def test_endpoints_without_tokens_are_not_in_the_ring():
    ring = Ring({"a": [1], "b": []}, local="b")
    assert ring.endpoints == ("a",) and ring.local == "b"


def test_primary_ownership_is_the_width_of_owned_ranges():
    ring = Ring({"a": [0], "b": [MIN_TOKEN + RING_WIDTH // 4]})
    shares = ring.ownership()
    # a owns (b, 0]: a quarter of the ring; b owns the rest, wrapping through MAX_TOKEN.
    assert shares["a"] == pytest.approx(0.25, abs=1e-12)
    assert shares["b"] == pytest.approx(0.75, abs=1e-12)
    assert sum(shares.values()) == pytest.approx(1.0)


def test_primary_ownership_matches_a_brute_force_sample_of_keys():
    ring = Ring({"a": [-(2**62), 2**61], "b": [-(2**60), 3 * 2**61], "c": [0], "d": [2**62 + 2**60]})
    samples = 40_000
    counts = Counter(ring.token_owner(token(f"key-{i}".encode())) for i in range(samples))
    shares = ring.ownership()
    for endpoint, share in shares.items():
        # The standard error of each share is below 0.0025 at this sample size: 0.015 is 6 of them.
        assert counts[endpoint] / samples == pytest.approx(share, abs=0.015)


def test_effective_ownership_matches_a_brute_force_sample_of_keys():
    ring = Ring({"a": [-(2**62)], "b": [0], "c": [2**61], "d": [2**62]})
    strategy = SimpleStrategy(2)
    samples = 20_000
    counts: Counter[str] = Counter()
    for i in range(samples):
        counts.update(ring.replicas(strategy, token(f"k{i}".encode())))
    for endpoint, share in ring.ownership(strategy).items():
        assert counts[endpoint] / samples == pytest.approx(share, abs=0.02)


def test_replicas_are_cached_per_range_but_returned_as_fresh_lists():
    strategy = SimpleStrategy(2)
    first = ABC.replicas(strategy, 50)
    first.append("junk")
    assert ABC.replicas(strategy, 60) == ["c", "a"]
    assert ABC.replicas(strategy, MAX_TOKEN) == ABC.replicas(strategy, MIN_TOKEN + 1) == ["a", "b"]


def test_ranges_for_lists_every_range_an_endpoint_replicates():
    strategy = SimpleStrategy(2)
    assert ABC.ranges_for(strategy, "b") == [(MIN_TOKEN, -100), (-100, 0), (100, MAX_TOKEN)]
    assert ABC.ranges_for(strategy, "c") == [(-100, 0), (0, 100)]


def test_range_of_finds_the_listed_range_holding_a_token():
    assert ABC.range_of(-100) == (MIN_TOKEN, -100)
    assert ABC.range_of(-99) == (-100, 0)
    assert ABC.range_of(101) == (100, MAX_TOKEN)
    assert ABC.range_of(MAX_TOKEN) == (100, MAX_TOKEN)


def test_split_range_cuts_a_scan_at_ring_tokens():
    assert split_range(None, None, ABC) == ABC.ranges()
    assert split_range(-150, 50, ABC) == [(-150, -100), (-100, 0), (0, 50)]
    assert split_range(0, 100, ABC) == [(0, 100)]
    assert split_range(-100, 0, ABC) == [(-100, 0)]
    assert split_range(99, None, ABC) == [(99, 100), (100, MAX_TOKEN)]
    assert split_range(None, -200, ABC) == [(MIN_TOKEN, -200)]


def test_split_range_of_an_empty_or_inverted_interval_is_empty():
    assert split_range(5, 5, ABC) == []
    assert split_range(50, -50, ABC) == []


# ---------------------------------------------------------------------------------------------------------------
# Properties

tokens_st = st.integers(MIN_TOKEN, MAX_TOKEN)


@st.composite
def rings(draw, min_endpoints=1, max_endpoints=8):
    n = draw(st.integers(min_endpoints, max_endpoints))
    all_tokens = draw(st.lists(tokens_st, min_size=n, max_size=n * 6, unique=True))
    names = [f"e{i}" for i in range(n)]
    owners = [names[i % n] for i in range(len(all_tokens))]
    owners[n:] = draw(st.lists(st.sampled_from(names), min_size=len(owners) - n, max_size=len(owners) - n))
    tokens: dict[str, list[int]] = {}
    for t, owner in zip(all_tokens, owners, strict=True):
        tokens.setdefault(owner, []).append(t)
    return Ring(tokens)


@settings(max_examples=100, deadline=None)
@given(rings())
def test_ranges_cover_the_ring_exactly_once(ring):
    ring.check()
    rs = ring.ranges()
    assert rs[0][0] == MIN_TOKEN and rs[-1][1] == MAX_TOKEN
    assert all(a[1] == b[0] for a, b in zip(rs, rs[1:], strict=False))
    assert sum(e - s for s, e in rs) == RING_WIDTH
    assert set(ring.sorted_tokens) - {MIN_TOKEN, MAX_TOKEN} <= {e for _, e in rs}


@settings(max_examples=100, deadline=None)
@given(rings(), tokens_st)
def test_a_token_is_owned_by_the_end_of_the_range_holding_it(ring, t):
    if t == MIN_TOKEN:
        return
    start, end = ring.range_of(t)
    assert start < t <= end
    assert ring.token_owner(t) == ring.token_owner(end)
    at_or_after = [x for x in ring.sorted_tokens if x >= t]
    owner_token = min(at_or_after) if at_or_after else min(ring.sorted_tokens)
    assert owner_token in ring.tokens_of(ring.token_owner(t))


@settings(max_examples=100, deadline=None)
@given(rings(), st.one_of(st.none(), tokens_st), st.one_of(st.none(), tokens_st))
def test_split_range_pieces_tile_the_interval_within_single_ranges(ring, start, end):
    pieces = split_range(start, end, ring)
    lo = MIN_TOKEN if start is None else start
    hi = MAX_TOKEN if end is None else end
    if lo >= hi:
        assert pieces == []
        return
    assert pieces[0][0] == lo and pieces[-1][1] == hi
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    for s, e in pieces:
        rs, re_ = ring.range_of(e)
        assert rs <= s < e <= re_


@settings(max_examples=100, deadline=None)
@given(rings())
def test_primary_ownership_sums_to_one(ring):
    shares = ring.ownership()
    assert set(shares) == set(ring.endpoints)
    assert sum(shares.values()) == pytest.approx(1.0)


@settings(max_examples=50, deadline=None)
@given(rings(), st.lists(st.tuples(st.booleans(), st.integers(0, 9), st.lists(tokens_st, max_size=3)),
                         max_size=12))
def test_a_ring_changed_step_by_step_agrees_with_a_plain_model(ring, steps):
    model = {e: set(ring.tokens_of(e)) for e in ring.endpoints}
    for add, n, new_tokens in steps:
        name = f"e{n}"
        if add:
            others = {t for e, ts in model.items() if e != name for t in ts}
            if others & set(new_tokens):
                continue
            ring = ring.with_endpoint(name, new_tokens)
            model[name] = set(new_tokens)
        else:
            ring = ring.without(name)
            model.pop(name, None)
        ring.check()
        model = {e: ts for e, ts in model.items() if ts}
        assert {e: set(ring.tokens_of(e)) for e in ring.endpoints} == model
        for t in ring.sorted_tokens:
            assert t in model[ring.token_owner(t)]
