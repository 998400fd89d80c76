"""Merkle trees over token ranges: what anti-entropy repair compares between replicas (sans-IO).

How this works. A tree covers one token range (start, end] (start exclusive, end inclusive; start >= end wraps
past MAX_TOKEN to MIN_TOKEN, and start == end is the whole ring). The range is cut into 2**depth leaves of equal
token width: with W the number of tokens in the range and a token's offset o in 1..W (its distance from start
along the ring), leaf i holds the offsets (W*i >> depth, W*(i+1) >> depth]. A leaf's hash is a 16-byte BLAKE2b of
the digests of its partitions, fed in token order (`build` takes them in that order, as a table scan yields
them); a leaf without partitions hashes the empty string. Inner nodes hash their two children's hashes, so equal
roots mean equal ranges and the walk down from the root finds the differing leaves without looking at the rest.

The wire form is [start, end, depth, leaf hashes concatenated]: the inner nodes are rebuilt on arrival, so a
tree of depth 15 costs 512 KiB on the wire. `differences(a, b)` lists the leaf ranges whose hashes differ, with
adjacent ones merged, in token order. `depth_for(n)` picks the depth that leaves at most LEAF_TARGET partitions
per leaf for an estimated n, capped at MAX_DEPTH.

Nothing here does I/O or reads a clock. MIN_TOKEN is never a key's token (the partitioner maps it to MAX_TOKEN),
so it is not accepted as one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from widecol.storage.token import MAX_TOKEN, MIN_TOKEN

MAX_DEPTH = 15
# Partitions per leaf that depth_for aims at. Small leaves keep a scattered divergence cheap: with 1% of the
# partitions differing at random, about 8% of 8-partition leaves differ (1 - 0.99**8), but 72% of 128-partition
# ones. The price is the tree: 16 bytes a leaf on the wire, 512 KiB at most (depth 15).
LEAF_TARGET = 8
HASH_SIZE = 16
_EMPTY = hashlib.blake2b(b"", digest_size=HASH_SIZE).digest()
_ABOVE = MAX_TOKEN - MIN_TOKEN  # tokens in (MIN_TOKEN, MAX_TOKEN]: the whole ring


def _hash(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=HASH_SIZE).digest()


def range_width(start: int, end: int) -> int:
    """The number of tokens in (START, END] (wrapping when START >= END; the whole ring when equal)."""
    if start < end:
        return end - start
    return _ABOVE - (start - end)  # (start, MAX_TOKEN] and (MIN_TOKEN, end]


def depth_for(partitions: int, leaf_target: int = LEAF_TARGET, max_depth: int = MAX_DEPTH) -> int:
    """The smallest depth whose leaves hold at most LEAF_TARGET of PARTITIONS spread evenly, at most MAX_DEPTH."""
    depth = 0
    while depth < max_depth and (partitions >> depth) > leaf_target:
        depth += 1
    return depth


class MerkleTree:
    """A hash tree over the token range (start, end]. `levels[0]` is [root], `levels[depth]` the leaves."""

    __slots__ = ("start", "end", "depth", "width", "levels")

    def __init__(self, start: int, end: int, depth: int, leaves: list[bytes]) -> None:
        if not 0 <= depth <= MAX_DEPTH:
            raise ValueError(f"depth must be in 0..{MAX_DEPTH}, got {depth}")
        if len(leaves) != 1 << depth:
            raise ValueError(f"a tree of depth {depth} has {1 << depth} leaves, got {len(leaves)}")
        for t in (start, end):
            if not MIN_TOKEN <= t <= MAX_TOKEN:
                raise ValueError(f"token {t} is outside the Murmur3 range")
        self.start, self.end, self.depth = start, end, depth
        self.width = range_width(start, end)
        levels = [leaves]
        while len(levels[-1]) > 1:
            below = levels[-1]
            levels.append([_hash(below[i] + below[i + 1]) for i in range(0, len(below), 2)])
        levels.reverse()
        self.levels: list[list[bytes]] = levels

    # -- building -------------------------------------------------------------------------------------------------

    @classmethod
    def build(cls, start: int, end: int, depth: int, partitions: Iterable[tuple[int, bytes]]) -> MerkleTree:
        """The tree of PARTITIONS, (token, digest) pairs in token order over (START, END]. ValueError for a
        token outside the range or out of order. Cost: one hash per leaf and inner node, plus the digests."""
        width = range_width(start, end)
        n = 1 << depth
        leaves = [_EMPTY] * n
        current = -1
        hasher = None
        last_offset = 0
        for t, digest in partitions:
            offset = _offset(start, end, width, t)
            if offset < last_offset:
                raise ValueError(f"token {t} out of order")
            last_offset = offset
            leaf = ((offset << depth) - 1) // width
            if leaf != current:
                if hasher is not None:
                    leaves[current] = hasher.digest()
                current = leaf
                hasher = hashlib.blake2b(digest_size=HASH_SIZE)
            assert hasher is not None
            hasher.update(digest)
        if hasher is not None:
            leaves[current] = hasher.digest()
        return cls(start, end, depth, leaves)

    # -- accessors ------------------------------------------------------------------------------------------------

    @property
    def root(self) -> bytes:
        return self.levels[0][0]

    @property
    def leaves(self) -> list[bytes]:
        return self.levels[-1]

    def leaf_range(self, i: int) -> tuple[int, int]:
        """The token range (start, end] of leaf I; empty (start == end) when the range is narrower than the
        number of leaves."""
        lo = (self.width * i) >> self.depth
        hi = (self.width * (i + 1)) >> self.depth
        return self._token_at(lo), self._token_at(hi)

    def _token_at(self, offset: int) -> int:
        if self.start < self.end or offset <= MAX_TOKEN - self.start:
            return self.start + offset
        return MIN_TOKEN + (offset - (MAX_TOKEN - self.start))

    def leaf_of(self, t: int) -> int:
        """The index of the leaf that holds token T."""
        return ((_offset(self.start, self.end, self.width, t) << self.depth) - 1) // self.width

    # -- wire -----------------------------------------------------------------------------------------------------

    def to_wire(self) -> list:
        """[start, end, depth, leaves concatenated]: msgpack-friendly (ints and bytes)."""
        return [self.start, self.end, self.depth, b"".join(self.leaves)]

    @classmethod
    def from_wire(cls, wire: list) -> MerkleTree:
        """The tree of a to_wire list; ValueError when it is malformed."""
        if not isinstance(wire, (list, tuple)) or len(wire) != 4:
            raise ValueError("a Merkle tree's wire form is [start, end, depth, leaves]")
        start, end, depth, blob = wire
        if not all(isinstance(v, int) for v in (start, end, depth)) or not isinstance(blob, bytes):
            raise ValueError("malformed Merkle tree")
        if not 0 <= depth <= MAX_DEPTH or len(blob) != HASH_SIZE << depth:
            raise ValueError(f"a tree of depth {depth} needs {HASH_SIZE << max(0, depth)} bytes of leaves")
        leaves = [blob[i:i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE)]
        return cls(start, end, depth, leaves)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, MerkleTree):
            return NotImplemented
        return (self.start, self.end, self.depth, self.root) == (other.start, other.end, other.depth, other.root)

    def __hash__(self) -> int:
        return hash((self.start, self.end, self.depth, self.root))

    def __repr__(self) -> str:
        return f"MerkleTree(({self.start}, {self.end}], depth={self.depth}, root={self.root.hex()[:12]})"


def _offset(start: int, end: int, width: int, t: int) -> int:
    """T's distance from START along the ring, in 1..WIDTH; ValueError when T is not in (START, END]."""
    if t == MIN_TOKEN:
        raise ValueError("MIN_TOKEN is never a partition's token")
    if start < end:
        offset = t - start
    else:
        offset = t - start if t > start else (MAX_TOKEN - start) + (t - MIN_TOKEN)
    if not 1 <= offset <= width:
        raise ValueError(f"token {t} is outside the range ({start}, {end}]")
    return offset


def differing_leaves(a: MerkleTree, b: MerkleTree) -> list[int]:
    """The indexes of the leaves whose hashes differ, in order, visiting only the subtrees whose hashes differ.
    ValueError when the trees cover different ranges or have different depths."""
    if (a.start, a.end, a.depth) != (b.start, b.end, b.depth):
        raise ValueError(f"cannot compare {a!r} with {b!r}: different ranges or depths")
    frontier = [0] if a.root != b.root else []
    for level in range(1, a.depth + 1):
        la, lb = a.levels[level], b.levels[level]
        frontier = [c for i in frontier for c in (2 * i, 2 * i + 1) if la[c] != lb[c]]
    return frontier


def differences(a: MerkleTree, b: MerkleTree) -> list[tuple[int, int]]:
    """The token ranges (start, end] where A and B differ: their differing leaves, adjacent ones merged, in
    order from the tree's start. ValueError when the trees are not comparable."""
    return merge_leaves(a, differing_leaves(a, b))


def merge_leaves(tree: MerkleTree, indexes: Iterable[int]) -> list[tuple[int, int]]:
    """TREE's leaves INDEXES (in order) as token ranges, those that touch merged. (Empty leaves, in a range
    narrower than the leaf count, hash alike in every tree, so they never differ.)"""
    out: list[tuple[int, int]] = []
    for i in indexes:
        lo, hi = tree.leaf_range(i)
        if out and out[-1][1] == lo:
            out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return out
