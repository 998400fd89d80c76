"""Murmur3Partitioner tokens, exactly as Cassandra computes them.

How this works: Cassandra's token is the first 64-bit half of MurmurHash3 x64_128 (seed 0) of the partition key,
as a signed long, with Long.MIN_VALUE mapped to Long.MAX_VALUE. Cassandra's Java code reads the tail bytes (the
last len % 16) as signed bytes and sign-extends them before shifting, so for a tail byte of 0x80 or above its hash
differs from the reference MurmurHash3 that mmh3 implements. Keys without such a tail byte take mmh3's C code;
the others take the pure-Python port below, which reproduces the sign extension.
"""

from __future__ import annotations

import struct

import mmh3

MIN_TOKEN = -(2**63)
MAX_TOKEN = 2**63 - 1
_M = 0xFFFFFFFFFFFFFFFF
_C1 = 0x87C37B91114253D5
_C2 = 0x4CF5AD432745937F
_BLOCKS = struct.Struct("<QQ")
_SORT_PREFIX = struct.Struct(">Q")


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _M


def _fmix(k: int) -> int:
    k ^= k >> 33
    k = (k * 0xFF51AFD7ED558CCD) & _M
    k ^= k >> 33
    k = (k * 0xC4CEB9FE1A85EC53) & _M
    k ^= k >> 33
    return k


def _cassandra_murmur3_h1(data: bytes) -> int:
    """h1 of Cassandra's MurmurHash.hash3_x64_128(data, seed=0), unsigned."""
    n = len(data)
    h1 = h2 = 0
    nblocks = n // 16
    for i in range(nblocks):
        k1, k2 = _BLOCKS.unpack_from(data, i * 16)
        k1 = (_rotl((k1 * _C1) & _M, 31) * _C2) & _M
        h1 ^= k1
        h1 = (((_rotl(h1, 27) + h2) & _M) * 5 + 0x52DCE729) & _M
        k2 = (_rotl((k2 * _C2) & _M, 33) * _C1) & _M
        h2 ^= k2
        h2 = (((_rotl(h2, 31) + h1) & _M) * 5 + 0x38495AB5) & _M
    tail = data[nblocks * 16 :]
    k1 = k2 = 0
    for i, b in enumerate(tail):
        v = b if b < 0x80 else (b - 256) & _M  # Java's (long) of a signed byte
        if i >= 8:
            k2 ^= (v << (8 * (i - 8))) & _M
        else:
            k1 ^= (v << (8 * i)) & _M
    if len(tail) > 8:
        h2 ^= (_rotl((k2 * _C2) & _M, 33) * _C1) & _M
    if tail:
        h1 ^= (_rotl((k1 * _C1) & _M, 31) * _C2) & _M
    h1 ^= n
    h2 ^= n
    h1 = (h1 + h2) & _M
    h2 = (h2 + h1) & _M
    h1 = _fmix(h1)
    h2 = _fmix(h2)
    return (h1 + h2) & _M


def token(key: bytes) -> int:
    """The Murmur3Partitioner token of partition key KEY (its serialized bytes): a signed 64-bit int."""
    tail = len(key) & 15
    if tail and max(key[-tail:]) >= 0x80:
        h = _cassandra_murmur3_h1(key)
        t = h - (1 << 64) if h >= (1 << 63) else h
    else:
        t = mmh3.hash64(key, 0, True, True)[0]
    return MAX_TOKEN if t == MIN_TOKEN else t


def sort_key(t: int, key: bytes) -> bytes:
    """Bytes that order partitions by (token, key): the order of memtables and SSTables."""
    return _SORT_PREFIX.pack(t + (1 << 63)) + key


def partition_sort_key(key: bytes) -> bytes:
    return _SORT_PREFIX.pack(token(key) + (1 << 63)) + key


def token_of_sort_key(sk: bytes) -> int:
    return _SORT_PREFIX.unpack_from(sk)[0] - (1 << 63)


def token_bound(t: int) -> bytes:
    """The sort-key prefix of token T: every sort key of a partition with token T starts with it."""
    return _SORT_PREFIX.pack(t + (1 << 63))


def sort_key_and_hashes(key: bytes) -> tuple[bytes, tuple[int, int]]:
    """(partition_sort_key(KEY), bloom.hashes(KEY)) with one murmur3 call where Cassandra's token agrees with
    the reference hash (both are the 128-bit MurmurHash3 of the key, seed 0: the token is its first half)."""
    h1, h2 = mmh3.hash64(key, 0, True, True)
    tail = len(key) & 15
    if tail and max(key[-tail:]) >= 0x80:
        return partition_sort_key(key), (h1, h2 | 1)
    t = h1
    if t == MIN_TOKEN:
        t = MAX_TOKEN
    return _SORT_PREFIX.pack(t + (1 << 63)) + key, (h1, h2 | 1)
