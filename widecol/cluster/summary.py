"""Digest summaries: what a node knows, folded into one hash per bucket of endpoints (sans-IO).

How this works. Each endpoint has a 32-bit hash of its digest (endpoint, generation, application-state version,
suspicion, refutation; heartbeats are left out, they change every round). An endpoint falls in one of FINE = 1024
fine buckets by a hash of its name, and each fine bucket holds the XOR of its endpoints' hashes, updated in O(1)
whenever a digest changes. The caller keeps each endpoint's current hash (gossip keeps it on the endpoint's state,
which many simulated nodes may share), so a Summary costs only its bucket lists per endpoint. A summary for B buckets (B a power of two up to FINE) folds the fine buckets by
index modulo B, so two nodes that disagree on the cluster size still compare the same B. Folds are cached until
the next change, so in a quiet cluster a summary costs nothing to produce and a byte comparison to check.
"""

from __future__ import annotations

import struct
import zlib
from hashlib import blake2b

FINE = 1024
_MASK = 0xFFFFFFFF
_buckets: dict[str, int] = {}  # endpoint -> fine bucket; a pure function, so one cache serves every node


def _mix(h: int) -> int:
    """MurmurHash3's 32-bit finaliser: a bijection that breaks CRC-32's linearity before hashes are XORed."""
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _MASK
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _MASK
    return h ^ (h >> 16)


_hashes: dict[tuple[str, int, int, int, int], int] = {}  # a pure function's cache, shared, bounded


def digest_hash(endpoint: str, generation: int, version: int, suspect: int, alive: int) -> int:
    key = (endpoint, generation, version, suspect, alive)
    h = _hashes.get(key)
    if h is None:
        if len(_hashes) >= 100_000:
            _hashes.clear()
        text = f"{endpoint}\x00{generation}\x00{version}\x00{suspect}\x00{alive}"
        h = _hashes[key] = _mix(zlib.crc32(text.encode()))
    return h


def fine_bucket(endpoint: str) -> int:
    bucket = _buckets.get(endpoint)
    if bucket is None:
        digest = blake2b(endpoint.encode(), digest_size=4, person=b"bucket").digest()
        bucket = _buckets[endpoint] = int.from_bytes(digest, "little") % FINE
    return bucket


def bucket_count(endpoints: int) -> int:
    """Buckets to summarise `endpoints` endpoints with: a power of two near endpoints / 8, at most FINE."""
    b = 1
    while b * 8 < endpoints and b < FINE:
        b *= 2
    return b


class Summary:
    """The XOR-folded digest hashes of a set of endpoints, kept up to date incrementally."""

    def __init__(self) -> None:
        self._fine = [0] * FINE
        self._members: list[list[str]] = [[] for _ in range(FINE)]
        self._folds: dict[int, bytes] = {}

    def add(self, endpoint: str, digest: int = 0) -> None:
        """Count `endpoint` in (once: the caller knows it is new) with hash `digest`. O(1)."""
        bucket = fine_bucket(endpoint)
        self._members[bucket].append(endpoint)
        if digest:
            self._fine[bucket] ^= digest
            self._folds.clear()

    def change(self, endpoint: str, old: int, new: int) -> None:
        """`endpoint`'s hash was `old` and is now `new` (digest_hash values). O(1)."""
        if old != new:
            self._fine[fine_bucket(endpoint)] ^= old ^ new
            self._folds.clear()

    def fold(self, buckets: int) -> bytes:
        """The summary for `buckets` buckets (a power of two <= FINE): 4 little-endian bytes per bucket."""
        cached = self._folds.get(buckets)
        if cached is None:
            folded = [0] * buckets
            for i, h in enumerate(self._fine):
                folded[i & (buckets - 1)] ^= h
            cached = self._folds[buckets] = struct.pack(f"<{buckets}I", *folded)
        return cached

    def differing(self, buckets: int, theirs: bytes) -> list[int]:
        """Indexes of the buckets where `theirs` (a summary for `buckets` buckets) differs from ours."""
        mine = self.fold(buckets)
        if mine == theirs:
            return []
        if len(theirs) != len(mine):
            return list(range(buckets))
        return [i for i in range(buckets) if mine[4 * i:4 * i + 4] != theirs[4 * i:4 * i + 4]]

    def members(self, buckets: int, bucket: int) -> list[str]:
        """The endpoints in folded bucket `bucket` of `buckets`."""
        out: list[str] = []
        for fine in range(bucket, FINE, buckets):
            out.extend(self._members[fine])
        return out
