"""Bloom filters on partition keys (mmh3), as SSTables keep one to skip files that cannot hold a key.

How this works. The 128-bit murmur3 of the key gives two 64-bit halves h1, h2 (`hashes(key)`, computed once per
read and shared by every SSTable's filter). SSTables are written with a blocked filter (BlockedBloom): h1 picks
one 64-bit word and the top 12 bits of h2 pick one of 4,096 fixed masks of PROBES bits, so adding a key is one
word OR-ed with a mask and testing it one AND, where a classic filter costs a Python loop of PROBES steps. Keeping
each key's bits in one word raises the false positive rate a little for the same size; 13 bits a key gives about
0.9%, Cassandra's default target being 1%. BloomFilter, the classic kind (probe i at (h1 + i * h2) mod m, Kirsch
and Mitzenmacher's double hashing, 10 bits a key, 5 probes: about 0.9%), is what SSTables written before the
blocked kind hold; it is still read. `read_filter` tells them apart by their first byte.
"""

from __future__ import annotations

import struct
import sys
from array import array

import mmh3

BITS_PER_KEY = 10
PROBES = 5
_HEADER = struct.Struct(">QB")  # bit count, probe count


def hashes(key: bytes) -> tuple[int, int]:
    """The key's two murmur3 halves, signed, as every filter on disk was written: mmh3 5.3 returns signed halves
    when its `signed` flag is passed by position, even as False. Asking for signed makes any version agree."""
    h1, h2 = mmh3.hash64(key, 0, True, True)
    return h1, h2 | 1


class BloomFilter:
    __slots__ = ("m", "k", "bits")

    def __init__(self, m: int, k: int, bits: bytearray) -> None:
        self.m = m
        self.k = k
        self.bits = bits

    @classmethod
    def for_keys(cls, count: int) -> BloomFilter:
        m = max(64, count * BITS_PER_KEY)
        k = PROBES
        return cls(m, k, bytearray((m + 7) // 8))

    def add(self, h: tuple[int, int]) -> None:
        m = self.m
        b = h[0] % m  # reduce once: the probes then stay small ints, which Python adds and compares fast
        step = h[1] % m
        bits = self.bits
        bits[b >> 3] |= 1 << (b & 7)
        for _ in range(self.k - 1):
            b += step
            if b >= m:
                b -= m
            bits[b >> 3] |= 1 << (b & 7)

    def may_contain(self, h: tuple[int, int]) -> bool:
        m = self.m
        b = h[0] % m
        bits = self.bits
        if not bits[b >> 3] >> (b & 7) & 1:  # most absent keys stop here or at the next probe
            return False
        step = h[1] % m
        for _ in range(self.k - 1):
            b += step
            if b >= m:
                b -= m
            if not bits[b >> 3] >> (b & 7) & 1:
                return False
        return True

    def to_bytes(self) -> bytes:
        return _HEADER.pack(self.m, self.k) + bytes(self.bits)

    @classmethod
    def from_bytes(cls, data: bytes) -> BloomFilter:
        m, k = _HEADER.unpack_from(data)
        bits = bytearray(data[_HEADER.size :])
        if len(bits) != (m + 7) // 8 or k < 1:
            raise ValueError("bloom filter size does not match its header")
        return cls(m, k, bits)


BLOCKED_BITS_PER_KEY = 13
BLOCKED_PROBES = 7
MASK_SHIFT = 52  # a key's mask is MASKS[h2 >> MASK_SHIFT]: the top 12 bits of h2 choose one of 4,096
_BLOCKED_MAGIC = b"\xb1"  # a classic filter starts with its bit count's top byte, 0 for any real size
_BLOCKED_HEADER = struct.Struct(">QB")  # word count, probes per mask
_U64 = (1 << 64) - 1


def _make_masks(count: int, probes: int) -> list[int]:
    """COUNT masks of PROBES distinct bits of 64: mask j takes bits from the 6-bit fields, low first, of the
    first half of the murmur3 of j (two bytes, big-endian), skipping repeats, then of the murmur3 of that half's
    8 bytes (big-endian, unsigned), and so on."""
    masks = []
    for j in range(count):
        h = mmh3.hash64(j.to_bytes(2, "big"), 0, True, True)[0] & _U64
        mask = 0
        fields = 0
        while mask.bit_count() < probes:
            if fields == 10:
                h = mmh3.hash64(h.to_bytes(8, "big"), 0, True, True)[0] & _U64
                fields = 0
            mask |= 1 << (h >> 6 * fields & 63)
            fields += 1
        masks.append(mask)
    return masks


MASKS = _make_masks(1 << (64 - MASK_SHIFT), BLOCKED_PROBES)


class BlockedBloom:
    """A bloom filter whose probes for a key all fall in one 64-bit word (see the module's docstring)."""

    __slots__ = ("words", "n", "k")

    def __init__(self, words: array, k: int = BLOCKED_PROBES) -> None:
        self.words = words
        self.n = len(words)
        self.k = k

    @classmethod
    def for_keys(cls, count: int) -> BlockedBloom:
        return cls(array("Q", bytes(8 * max(1, (count * BLOCKED_BITS_PER_KEY + 63) // 64))))

    def add(self, h: tuple[int, int]) -> None:
        # h2 is signed: a negative index counts from the end, which is the unsigned top 12 bits' mask.
        self.words[h[0] % self.n] |= MASKS[h[1] >> MASK_SHIFT]

    def may_contain(self, h: tuple[int, int]) -> bool:
        mask = MASKS[h[1] >> MASK_SHIFT]
        return self.words[h[0] % self.n] & mask == mask

    def to_bytes(self) -> bytes:
        words = array("Q", self.words)
        if sys.byteorder == "big":
            words.byteswap()
        return _BLOCKED_MAGIC + _BLOCKED_HEADER.pack(self.n, self.k) + words.tobytes()

    @classmethod
    def from_bytes(cls, data: bytes) -> BlockedBloom:
        n, k = _BLOCKED_HEADER.unpack_from(data, 1)
        words = array("Q")
        words.frombytes(data[1 + _BLOCKED_HEADER.size :])
        if sys.byteorder == "big":
            words.byteswap()
        if len(words) != n or n < 1 or k != BLOCKED_PROBES:
            raise ValueError("blocked bloom filter size does not match its header")
        return cls(words, k)


def read_filter(data: bytes) -> BloomFilter | BlockedBloom:
    """A filter from its bytes (Filter.db's payload), of either kind."""
    if data[:1] == _BLOCKED_MAGIC:
        return BlockedBloom.from_bytes(data)
    return BloomFilter.from_bytes(data)
