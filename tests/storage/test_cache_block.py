"""BlockCache: weights, least-recently-used eviction, admission once full, forgetting a retired reader."""

from widecol.storage.sstable.cache import ADMIT_WHEN_FULL, ENTRY_OVERHEAD, BlockCache

BLOCK = 1000
WEIGHT = BLOCK + ENTRY_OVERHEAD


def block(n: int) -> bytes:
    return n.to_bytes(4, "big") * (BLOCK // 4)


def test_blocks_are_weighed_and_the_least_recently_used_go_first():
    cache = BlockCache(5 * WEIGHT)
    for n in range(5):
        cache.put(n, block(n))
    assert len(cache) == 5 and cache.size == 5 * WEIGHT
    assert cache.get(0) == block(0)  # 0 is now the most recently used; 1 is the least
    for n in range(5, 5 + ADMIT_WHEN_FULL):
        cache.put(n, block(n))  # the cache is full: only the last of these is admitted, evicting 1
    assert cache.get(1) is None
    assert cache.get(5 + ADMIT_WHEN_FULL - 1) == block(5 + ADMIT_WHEN_FULL - 1)
    assert [cache.get(n) is not None for n in (0, 2, 3, 4)] == [True] * 4
    assert cache.size == 5 * WEIGHT


def test_a_full_cache_admits_one_missed_block_in_admit_when_full():
    cache = BlockCache(10 * WEIGHT)
    for n in range(10):
        cache.put(n, block(n))
    admitted = 0
    for n in range(10, 10 + 40 * ADMIT_WHEN_FULL):
        cache.put(n, block(n))
        admitted += cache.get(n) is not None
    assert admitted == 40
    assert len(cache) == 10 and cache.size <= cache.capacity


def test_a_block_read_again_and_again_gets_in_and_stays():
    cache = BlockCache(10 * WEIGHT)
    for n in range(10):
        cache.put(n, block(n))
    hot = 999
    for n in range(10, 2000):
        if cache.get(hot) is None:
            cache.put(hot, block(hot))
        cache.put(n, block(n))
    assert cache.get(hot) == block(hot)


def test_heavier_blocks_evict_several_and_a_block_heavier_than_the_cache_is_never_kept():
    cache = BlockCache(4 * WEIGHT)
    for n in range(3):
        cache.put(n, block(n))
    heavy = bytes(3 * BLOCK + 2 * ENTRY_OVERHEAD)  # weighs 3 blocks
    for _ in range(ADMIT_WHEN_FULL):
        cache.put(7, heavy)
    assert cache.get(7) == heavy
    assert [cache.get(n) is None for n in range(3)] == [True, True, False]  # the two least recently used went
    assert cache.size == 4 * WEIGHT
    for _ in range(2 * ADMIT_WHEN_FULL):
        cache.put(8, bytes(8 * BLOCK))
    assert cache.get(8) is None and cache.size == 4 * WEIGHT
    cache.put(2, block(2))  # a block already there is replaced, not counted twice
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
