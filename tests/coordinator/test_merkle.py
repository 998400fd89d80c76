"""Merkle trees over token ranges: equal data gives equal trees, a change shows in exactly its leaf, and the
comparison finds the differing token ranges, including ranges that wrap or touch the ends of the ring."""

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.coordinator.merkle import (
    LEAF_TARGET,
    MAX_DEPTH,
    MerkleTree,
    depth_for,
    differences,
    differing_leaves,
    range_width,
)
from widecol.storage.token import MAX_TOKEN, MIN_TOKEN, token


def _digest(key: bytes, version: int = 0) -> bytes:
    return hashlib.md5(key + bytes([version])).digest()


def _partitions(keys, changed=(), start=MIN_TOKEN, end=MAX_TOKEN):
    """(token, digest) pairs in the order a scan of (start, end] yields them (wrapping ranges: the part after
    start first)."""
    def order(t):
        return (0, t) if t > start else (1, t)
    items = sorted(((token(k), k) for k in keys), key=lambda p: (order(p[0]), p[1]))
    return [(t, _digest(k, 1 if k in changed else 0)) for t, k in items]


def _in(t, start, end):
    return start < t <= end if start < end else (t > start or t <= end)


def _covered(ranges, t):
    return any(_in(t, s, e) for s, e in ranges)


KEYS = [f"key{i}".encode() for i in range(2000)]


def test_equal_data_gives_equal_trees_and_no_differences():
    a = MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 8, _partitions(KEYS))
    b = MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 8, iter(_partitions(KEYS)))
    assert a == b and a.root == b.root
    assert differences(a, b) == []


def test_one_changed_partition_differs_in_exactly_its_leaf():
    changed = KEYS[1234]
    a = MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 10, _partitions(KEYS))
    b = MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 10, _partitions(KEYS, changed={changed}))
    leaf = a.leaf_of(token(changed))
    assert differing_leaves(a, b) == [leaf]
    assert differences(a, b) == [a.leaf_range(leaf)]
    lo, hi = a.leaf_range(leaf)
    assert lo < token(changed) <= hi
    assert hi - lo in (range_width(MIN_TOKEN, MAX_TOKEN) >> 10, (range_width(MIN_TOKEN, MAX_TOKEN) >> 10) + 1)


def test_a_missing_partition_differs_too():
    a = MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 6, _partitions(KEYS))
    b = MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 6, _partitions(KEYS[:500] + KEYS[501:]))
    [(lo, hi)] = differences(a, b)
    assert lo < token(KEYS[500]) <= hi


def test_adjacent_differing_leaves_are_merged():
    tree_start, tree_end = 0, 1600  # 16 leaves of 100 tokens
    base = [(t, _digest(str(t).encode())) for t in range(50, 1600, 100)]
    other = list(base)
    for i in (3, 4, 5, 9):
        other[i] = (other[i][0], b"x" * 16)
    a = MerkleTree.build(tree_start, tree_end, 4, base)
    b = MerkleTree.build(tree_start, tree_end, 4, other)
    assert differences(a, b) == [(300, 600), (900, 1000)]


def test_leaves_cover_the_range_exactly_once_and_in_order():
    for start, end, depth in [(MIN_TOKEN, MAX_TOKEN, 5), (-10, 10, 3), (MAX_TOKEN - 5, MIN_TOKEN + 7, 2),
                              (5, 5, 4), (0, 3, 3)]:
        tree = MerkleTree.build(start, end, depth, [])
        ranges = [tree.leaf_range(i) for i in range(1 << depth)]
        assert ranges[0][0] == start and ranges[-1][1] == end
        assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:], strict=False))
        assert sum(range_width(s, e) for s, e in ranges if s != e) == range_width(start, end)


def test_a_wrapping_range_places_tokens_on_both_sides_of_the_wrap():
    start, end = MAX_TOKEN - 1000, MIN_TOKEN + 1000  # (start, MAX_TOKEN] then (MIN_TOKEN, end]
    tokens = [MAX_TOKEN - 999, MAX_TOKEN - 1, MAX_TOKEN, MIN_TOKEN + 1, MIN_TOKEN + 999, end]
    base = [(t, _digest(str(t).encode())) for t in tokens]
    a = MerkleTree.build(start, end, 3, base)
    for i, t in enumerate(tokens):
        changed = list(base)
        changed[i] = (t, b"y" * 16)
        diff = differences(a, MerkleTree.build(start, end, 3, changed))
        assert len(diff) == 1 and _covered(diff, t), (t, diff)
        assert sum(_covered(diff, u) for u in tokens) <= 3  # one leaf, not the whole range


def test_the_ends_of_the_ring_are_keys_and_min_token_is_not():
    tree = MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 4, [(MIN_TOKEN + 1, b"a" * 16), (MAX_TOKEN, b"b" * 16)])
    assert tree.leaf_of(MIN_TOKEN + 1) == 0 and tree.leaf_of(MAX_TOKEN) == 15
    with pytest.raises(ValueError):
        MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 4, [(MIN_TOKEN, b"a" * 16)])
    with pytest.raises(ValueError):
        MerkleTree.build(0, 100, 4, [(101, b"a" * 16)])
    with pytest.raises(ValueError):
        MerkleTree.build(0, 100, 4, [(50, b"a" * 16), (10, b"b" * 16)])


def test_the_whole_ring_as_one_range():
    t = 12345
    whole = MerkleTree.build(t, t, 0, [(t, b"a" * 16)])
    other = MerkleTree.build(t, t, 0, [(t, b"b" * 16)])
    assert differences(whole, other) == [(t, t)]


def test_wire_round_trip_and_rejects_malformed():
    tree = MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 7, _partitions(KEYS))
    back = MerkleTree.from_wire(tree.to_wire())
    assert back == tree and back.leaves == tree.leaves and back.levels == tree.levels
    assert len(tree.to_wire()[3]) == 16 * 128
    for bad in ([1, 2, 3], [0, 10, 2, b"x" * 10], [0, 10, MAX_DEPTH + 1, b""], "tree"):
        with pytest.raises(ValueError):
            MerkleTree.from_wire(bad)  # type: ignore[arg-type]


def test_trees_of_different_shapes_are_not_compared():
    a = MerkleTree.build(0, 100, 3, [])
    with pytest.raises(ValueError):
        differences(a, MerkleTree.build(0, 100, 4, []))
    with pytest.raises(ValueError):
        differences(a, MerkleTree.build(0, 101, 3, []))


def test_depth_for_keeps_leaves_small_and_is_capped():
    assert depth_for(0) == 0 and depth_for(LEAF_TARGET) == 0 and depth_for(LEAF_TARGET + 1) == 1
    for n in (10, 1000, 100_000):
        d = depth_for(n)
        assert (n >> d) <= LEAF_TARGET and (d == 0 or (n >> (d - 1)) > LEAF_TARGET)
    assert depth_for(10**12) == MAX_DEPTH
    assert depth_for(1_000_000) == MAX_DEPTH  # 31 partitions a leaf: the cap wins
    assert depth_for(1000, leaf_target=128) == 3


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(MIN_TOKEN + 1, MAX_TOKEN), min_size=0, max_size=300, unique=True),
    st.integers(0, 8),
    st.data(),
)
def test_differences_cover_exactly_the_changed_tokens_leaves(tokens, depth, data):
    """Random token sets over random (possibly wrapping) ranges: every changed, added or removed token lies
    in a reported range, and every reported range holds a change."""
    start = data.draw(st.integers(MIN_TOKEN, MAX_TOKEN))
    end = data.draw(st.integers(MIN_TOKEN, MAX_TOKEN))
    inside = [t for t in tokens if _in(t, start, end)]
    inside.sort(key=lambda t: (0, t) if t > start else (1, t))
    base = [(t, _digest(t.to_bytes(8, "big", signed=True))) for t in inside]
    rng = random.Random(data.draw(st.integers(0, 1 << 30)))
    changed = {t for t in inside if rng.random() < 0.1}
    removed = {t for t in inside if t not in changed and rng.random() < 0.05}
    other = [(t, b"z" * 16 if t in changed else d) for t, d in base if t not in removed]
    a = MerkleTree.build(start, end, depth, base)
    b = MerkleTree.build(start, end, depth, other)
    diff = differences(a, b)
    touched = changed | removed
    assert all(_covered(diff, t) for t in touched)
    if not touched:
        assert diff == [] and a == b
    leaves = differing_leaves(a, b)
    assert leaves == sorted({a.leaf_of(t) for t in touched})
    assert all(x[1] != y[0] for x, y in zip(diff, diff[1:], strict=False))  # merged: no two reported ranges touch
