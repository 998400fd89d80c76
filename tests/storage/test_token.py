"""Murmur3Partitioner tokens agree with Cassandra's (the cassandra-driver package's murmur3 is the oracle)."""

import random

import pytest
from cassandra.murmur3 import murmur3 as driver_murmur3
from hypothesis import given
from hypothesis import strategies as st

from widecol.storage.token import MAX_TOKEN, partition_sort_key, token, token_of_sort_key


@given(st.binary(max_size=64))
def test_token_matches_cassandra(key):
    assert token(key) == driver_murmur3(key)


@pytest.mark.parametrize("length", range(1, 40))
def test_tail_bytes_of_0x80_and_above_are_sign_extended(length):
    rng = random.Random(length)
    key = bytes(rng.randrange(0x80, 0x100) for _ in range(length))
    assert token(key) == driver_murmur3(key)


def test_known_value():
    # Cassandra: SELECT token(k) FROM t WHERE k = 'key' (text key, UTF-8 bytes)
    assert token(b"key") == driver_murmur3(b"key")
    assert -(2**63) < token(b"key") <= MAX_TOKEN


@given(st.binary(min_size=1, max_size=20), st.binary(min_size=1, max_size=20))
def test_sort_keys_order_by_token_then_key(a, b):
    ka, kb = partition_sort_key(a), partition_sort_key(b)
    assert (ka < kb) == ((token(a), a) < (token(b), b))
    assert token_of_sort_key(ka) == token(a)


def test_sort_key_and_hashes_match_their_separate_computations():
    import random

    from widecol.storage.sstable.bloom import hashes
    from widecol.storage.token import partition_sort_key, sort_key_and_hashes

    rng = random.Random(7)
    keys = [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 40))) for _ in range(2000)]
    keys += [b"\x80" * n for n in range(1, 20)]  # Cassandra's sign-extended tails
    for key in keys:
        assert sort_key_and_hashes(key) == (partition_sort_key(key), hashes(key))
