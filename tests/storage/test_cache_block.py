"""BlockCache: weights, least-recently-used eviction, admission once full, forgetting a retired reader."""

from widecol.storage.sstable.cache import ADMIT_WHEN_FULL, ENTRY_OVERHEAD, BlockCache

BLOCK = 1000
WEIGHT = BLOCK + ENTRY_OVERHEAD


def block(n: int) -> bytes:
    return n.to_bytes(4, "big") * (BLOCK // 4)


def offer_until_kept(cache: BlockCache, key: int, data: bytes) -> int:
    """Offer DATA under KEY until the cache keeps it; how many offers that took."""
    for offers in range(1, 100 * ADMIT_WHEN_FULL):
        cache.put(key, data)
        if key in cache._entries:
            return offers
    raise AssertionError("never admitted")


def test_blocks_are_weighed_and_the_least_recently_used_go_first():
    cache = BlockCache(5 * WEIGHT)
    for n in range(5):
        cache.put(n, block(n))
    assert len(cache) == 5 and cache.size == 5 * WEIGHT
    assert cache.get(0) == block(0)  # 0 is now the most recently used; 1 is the least
    offer_until_kept(cache, 5, block(5))  # the cache is full: admitting 5 evicts 1
    assert cache.get(1) is None
    assert cache.get(5) == block(5)
    assert [cache.get(n) is not None for n in (0, 2, 3, 4)] == [True] * 4
    assert cache.size == 5 * WEIGHT


def test_a_full_cache_admits_a_missed_block_with_probability_one_in_admit_when_full():
    cache = BlockCache(10 * WEIGHT)
    for n in range(10):
        cache.put(n, block(n))
    offers = 400 * ADMIT_WHEN_FULL
    admitted = 0
    for n in range(10, 10 + offers):
        cache.put(n, block(n))
        admitted += cache.get(n) is not None
    assert 300 <= admitted <= 500  # 400 expected; the standard deviation is about 19
    assert len(cache) == 10 and cache.size <= cache.capacity


def test_a_block_read_again_and_again_gets_in_and_stays():
    """Even when its misses alternate with another block's in a fixed rhythm (a counter of misses that admits every
    n-th would admit only the other one)."""
    cache = BlockCache(10 * WEIGHT)
    for n in range(10):
        cache.put(n, block(n))
    hot = 999
    for n in range(10, 2000):
        for key in (hot, n):  # what a reader does: get, and on a miss put what it read
            if cache.get(key) is None:
                cache.put(key, block(key))
    assert hot in cache._entries
    assert cache.hits > 1900


def test_heavier_blocks_evict_several_and_a_block_heavier_than_the_cache_is_never_kept():
    cache = BlockCache(4 * WEIGHT)
    for n in range(3):
        cache.put(n, block(n))
    heavy = bytes(3 * BLOCK + 2 * ENTRY_OVERHEAD)  # weighs 3 blocks
    offer_until_kept(cache, 7, heavy)
    assert cache.get(7) == heavy
    assert [cache.get(n) is None for n in range(3)] == [True, True, False]  # the two least recently used went
    assert cache.size == 4 * WEIGHT
    for _ in range(20 * ADMIT_WHEN_FULL):
        cache.put(8, bytes(8 * BLOCK))
    assert cache.get(8) is None and cache.size == 4 * WEIGHT
    offer_until_kept(cache, 2, block(2))  # a block already there is replaced, not counted twice
    assert cache.size == 4 * WEIGHT == sum(len(cache._entries[k]) + ENTRY_OVERHEAD for k in cache._entries)


def test_forget_drops_one_readers_blocks_and_their_weight():
    cache = BlockCache(100 * WEIGHT)
    for uid in (1, 2):
        for n in range(5):
            cache.put(uid << 32 | n, block(n))
    cache.forget(1)
    assert len(cache) == 5 and cache.size == 5 * WEIGHT
    assert all(cache.get(1 << 32 | n) is None and cache.get(2 << 32 | n) == block(n) for n in range(5))
    cache.clear()
    assert len(cache) == 0 and cache.size == 0


def test_a_zero_capacity_cache_keeps_nothing():
    cache = BlockCache(0)
    for n in range(10):
        cache.put(n, block(n))
    assert len(cache) == 0 and cache.size == 0
