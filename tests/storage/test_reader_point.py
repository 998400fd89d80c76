"""Point reads of flushed data: SSTableReader.get's int-token fast path, its checks, and Table.read's clean path."""

import os
import random
from array import array
from bisect import bisect_left

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.errors import Corruption
from widecol.storage.mutation import Mutation
from widecol.storage.sstable import reader as reader_module
from widecol.storage.sstable.cache import BlockCache
from widecol.storage.sstable.reader import SSTableReader
from widecol.storage.sstable.writer import SSTableWriter
from widecol.storage.token import partition_sort_key

T = "ks.t"


def write(directory, parts):
    """parts: [(sort key, key, value)] in sort-key order -> the SSTable's directory, generation 1."""
    writer = SSTableWriter(directory, 1, len(parts))
    for sk, key, value in parts:
        writer.add_partition(sk, key, None, [], [(b"", None, {b"v": (1, value, 0, 0)})])
    writer.finish()


def clustered_parts(seed):
    """Partitions whose tokens often repeat, so that equal tokens straddle block boundaries: each token is shared by
    1 to 40 keys (a block holds about 30 of these partitions)."""
    rng = random.Random(seed)
    parts = []
    token = 1 << 40
    while len(parts) < 2000:
        token += rng.choice([1, 2, 1000, 1 << 50])
        for j in range(rng.choice([1, 1, 1, 2, 5, 40])):
            key = b"key-%d-%d" % (token, j)
            parts.append((token.to_bytes(8, "big") + key, key, b"value-" + key + b"-" + b"x" * 100))
    parts.sort()
    return parts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_point_reads_find_every_partition_and_no_absent_one_across_shared_token_boundaries(tmp_path, seed):
    parts = clustered_parts(seed)
    write(tmp_path, parts)
    for cache in (None, BlockCache(1 << 16), BlockCache(1 << 22)):
        reader = SSTableReader(tmp_path, 1, cache)
        assert len(reader) > 30
        assert any(a[:8] == b[:8] for a, b in zip(reader.last_sks[:-1], reader.first_sks[1:], strict=True))
        for _ in range(2):  # from the file, then (some) from the cache
            for sk, key, value in parts:
                version = reader.get(sk, key)
                assert version is not None and version[2][0][2][b"v"][1] == value, key
        present = {sk for sk, _, _ in parts}
        for sk, key, _ in parts[::7]:
            for other in (sk[:8] + key + b"!", sk[:8] + b"a", sk[:8] + b"zz", (int.from_bytes(sk[:8], "big") + 1)
                          .to_bytes(8, "big") + key):
                if other not in present:
                    assert reader.get(other, other[8:]) is None
        assert reader.get(b"\x00" * 8 + b"k", b"k") is None  # before the first block
        assert reader.get(b"\xff" * 8 + b"k", b"k") is None  # after the last block


def test_point_reads_agree_with_partition_reads_on_real_tokens(tmp_path):
    keys = [b"k%d" % i for i in range(3000)]
    parts = sorted((partition_sort_key(k), k, b"v" * (i % 300)) for i, k in enumerate(keys))
    write(tmp_path, parts)
    reader = SSTableReader(tmp_path, 1, BlockCache(1 << 20))
    for sk, key, value in parts:
        assert reader.get(sk, key) == reader.partition(sk, key) == (None, [], [(b"", None, {b"v": (1, value, 0, 0)})])
    for i in range(3000, 3500):
        key = b"k%d" % i
        assert reader.get(partition_sort_key(key), key) is None


def test_a_read_of_a_corrupted_block_raises_corruption_and_a_cached_checked_block_is_served(tmp_path):
    """Block reads (partition(): slices, and point reads that take the block path) check the block's CRC."""
    parts = sorted((partition_sort_key(b"k%d" % i), b"k%d" % i, b"value%d" % i + b"x" * 100) for i in range(500))
    write(tmp_path, parts)
    cache = BlockCache(1 << 20)
    reader = SSTableReader(tmp_path, 1, cache)
    victim = reader.offsets[3]
    in_victim = [(sk, key) for sk, key, _ in parts if reader._blocks_of(sk)[0] == 3]
    in_other = [(sk, key) for sk, key, _ in parts if reader._blocks_of(sk)[0] == 4]
    assert reader.partition(*in_other[0]) is not None  # block 4 checked and cached before the damage
    path = tmp_path / "1-Data.db"
    data = bytearray(path.read_bytes())
    data[victim + 40] ^= 0x01
    data[reader.offsets[4] + 40] ^= 0x01
    path.write_bytes(bytes(data))  # the same inode: the open reader sees the damage
    for sk, key in in_victim[:3]:
        with pytest.raises(Corruption) as info:
            reader.partition(sk, key)
        assert info.value.path == str(path) and info.value.offset == victim and "checksum" in str(info.value)
    assert len(cache) == 1  # a damaged block is never cached
    assert reader.partition(*in_other[0]) is not None  # served from the cache: it was checked when it was loaded
    fresh = SSTableReader(tmp_path, 1, BlockCache(1 << 20))
    with pytest.raises(Corruption):
        fresh.partition(*in_other[1])


def test_a_point_read_of_a_corrupted_entry_raises_corruption_naming_the_entry(tmp_path):
    """From format 4 a point read fetches one entry and checks its own CRC: damage inside it is Corruption at the
    entry's offset; the block's other entries still read, and a block read of the damaged block fails too."""
    parts = sorted((partition_sort_key(b"k%d" % i), b"k%d" % i, b"value%d" % i + b"x" * 100) for i in range(500))
    write(tmp_path, parts)
    reader = SSTableReader(tmp_path, 1, BlockCache(1 << 20))
    tops, starts, lengths, _, _ = reader._places
    sk, key, _ = parts[200]
    i = list(tops).index(int.from_bytes(sk[:4]))
    offset, size = starts[i], lengths[i]
    path = tmp_path / "1-Data.db"
    data = bytearray(path.read_bytes())
    assert data[offset : offset + size].find(key) == size - 4 - len(key)  # [fragment][key][crc]
    data[offset + 5] ^= 0x01  # in the fragment
    path.write_bytes(bytes(data))
    with pytest.raises(Corruption) as info:
        reader.get(sk, key)
    assert info.value.path == str(path) and info.value.offset == offset and "checksum" in str(info.value)
    neighbours = [p for p in parts if reader._blocks_of(p[0])[0] == reader._blocks_of(sk)[0] and p[1] != key]
    assert neighbours and all(reader.get(nsk, nkey)[2][0][2][b"v"][1] == v for nsk, nkey, v in neighbours)
    with pytest.raises(Corruption):
        reader.partition(neighbours[0][0], neighbours[0][1])


def test_entries_over_65535_bytes_use_u32_ends_and_their_blocks_take_the_block_path(tmp_path):
    """A block whose entries pass 65,535 bytes has u32 directory ends (WIDE_ENDS); Partitions.db cannot give such an
    entry's length, so the point reads of its block read the block instead, and find the same rows."""
    keys = [b"k%d" % i for i in range(400)]
    parts = sorted((partition_sort_key(k), k, b"B" * 70_000 if i % 97 == 5 else b"v%d" % i) for i, k in enumerate(keys))
    write(tmp_path, parts)
    reader = SSTableReader(tmp_path, 1, BlockCache(1 << 20))
    _, _, lengths, _, _ = reader._places
    assert 0 < list(lengths).count(0) < len(parts) / 2  # the big entries' blocks, and no others
    for sk, key, value in parts:
        assert reader.get(sk, key) == reader.partition(sk, key) == (None, [], [(b"", None, {b"v": (1, value, 0, 0)})])
    big = [i for i, (_, _, v) in enumerate(parts) if len(v) > 1000]
    data = reader.read_block(reader._blocks_of(parts[big[0]][0])[0])
    assert int.from_bytes(data[8:12], "big") >> 31 == 1  # WIDE_ENDS
    assert reader.get(partition_sort_key(b"absent"), b"absent") is None


@pytest.mark.parametrize("damage", ["missing", "flipped", "truncated"])
def test_a_missing_or_damaged_partitions_component_is_corruption(tmp_path, damage):
    """Missing: at open, like any other component. Damaged: at the first point read, which loads it."""
    parts = sorted((partition_sort_key(b"k%d" % i), b"k%d" % i, b"value%d" % i) for i in range(300))
    write(tmp_path, parts)
    path = tmp_path / "1-Partitions.db"
    data = path.read_bytes()
    if damage == "missing":
        path.unlink()
        with pytest.raises(Corruption) as info:  # a component the TOC lists is missing: found at open
            SSTableReader(tmp_path, 1)
        assert info.value.path == str(path)
        return
    if damage == "flipped":
        path.write_bytes(data[:20] + bytes([data[20] ^ 4]) + data[21:])
    else:
        path.write_bytes(data[:-10])
    reader = SSTableReader(tmp_path, 1)  # opening does not read it
    reader.prepare_reads()  # a flush or compaction loading it early leaves the damage for reads to report
    with pytest.raises(Corruption) as info:
        reader.get(*parts[0][:2])
    assert info.value.path == str(path)
    assert reader.partition(*parts[0][:2]) is not None  # block reads do not need it


@pytest.mark.parametrize("size", [0, 1, 7, 300])
def test_partitions_db_loads_to_the_same_arrays_in_passes_of_any_size(tmp_path, monkeypatch, size):
    """The load runs its C-level passes over at most _PASS values at a time, so that a flush or compaction thread
    loading it lets reads run in between; passes of 1, 2, 3 and 64 values give what one pass does, for an empty
    SSTable too, and for one whose big entries leave unknown lengths."""
    parts = sorted((partition_sort_key(b"k%d" % i), b"k%d" % i, b"B" * 70_000 if i % 97 == 5 else b"v%d" % i)
                   for i in range(size))
    write(tmp_path, parts)
    whole = SSTableReader(tmp_path, 1)._places
    for passes in (1, 2, 3, 64):
        monkeypatch.setattr(reader_module, "_PASS", passes)
        reader = SSTableReader(tmp_path, 1)
        reader.prepare_reads()
        assert "_places" in reader.__dict__ and reader._places == whole
        for sk, key, value in parts:
            assert reader.get(sk, key)[2][0][2][b"v"][1] == value


def test_a_point_read_never_returns_another_keys_entry_that_ends_with_its_key(tmp_path):
    """Entries are [fragment][key][crc], and a point read compares the key at the end of the entry of its token top.
    A stored key that merely ends with the one asked for (same token top) must not match: the fragment then does
    not decode to exactly its bytes, and the read falls back to the block's directory, which answers None."""
    sk = (7 << 60).to_bytes(8, "big") + b"long-key"
    write(tmp_path, [(sk, b"long-key", b"value")])
    reader = SSTableReader(tmp_path, 1)
    assert reader.get(sk, b"long-key")[2][0][2][b"v"][1] == b"value"
    for shorter in (b"key", b"-key", b"y"):
        assert reader.get(sk[:8] + shorter, shorter) is None
    assert reader.get(sk[:8] + b"xlong-key", b"xlong-key") is None


def test_a_truncated_data_file_is_corruption_not_a_short_block(tmp_path):
    parts = sorted((partition_sort_key(b"k%d" % i), b"k%d" % i, b"value%d" % i + b"x" * 100) for i in range(500))
    write(tmp_path, parts)
    reader = SSTableReader(tmp_path, 1)
    last = len(reader) - 1
    os.truncate(tmp_path / "1-Data.db", reader.offsets[last] + 5)
    with pytest.raises(Corruption) as info:
        reader.read_block(last)
    assert info.value.offset == reader.offsets[last] and "truncated" in str(info.value)
    with pytest.raises(Corruption):
        reader.get(reader.last_sks[last], reader.last_sks[last][8:])
    assert reader.read_block(last - 1)  # the blocks before it are whole


UINT64 = st.integers(0, (1 << 64) - 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(UINT64, st.integers(0, 1000), st.integers((1 << 64) - 1000, (1 << 64) - 1)), max_size=300),
       st.lists(UINT64, max_size=50))
def test_the_radix_table_narrows_a_bisection_to_the_same_answer(values, probes):
    values.sort()  # sorted, with repeats: equal token prefixes across blocks happen
    radix, shift = reader_module.radix_table(values)
    assert len(radix) == (1 << (64 - shift)) + 1 >= len(values) + 1
    for passes in (1, 2, 5):  # counted a pass of _PASS values at a time, whose slots end anywhere: the same table
        default, reader_module._PASS = reader_module._PASS, passes
        try:
            assert reader_module.radix_table(values) == (radix, shift)
        finally:
            reader_module._PASS = default
    for t in [0, (1 << 64) - 1, *values, *(v + 1 for v in values if v < (1 << 64) - 1), *(v - 1 for v in values if v),
              *probes]:
        p = t >> shift
        assert bisect_left(values, t, radix[p], radix[p + 1]) == bisect_left(values, t)


UINT32 = st.integers(0, (1 << 32) - 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(UINT32, st.integers(0, 100), st.integers((1 << 32) - 100, (1 << 32) - 1)), max_size=400),
       st.lists(UINT32, max_size=50), st.sampled_from([1, 8]))
def test_the_radix_table_of_32_bit_token_tops_with_several_values_a_slot_narrows_to_the_same_answer(values, probes,
                                                                                                  spread):
    """Partitions.db's tops: 32-bit values, about SPREAD of them a slot."""
    values = array("I", sorted(values))
    radix, shift = reader_module.radix_table(values, 32, spread)
    assert len(radix) == (1 << (32 - shift)) + 1 and len(radix) - 1 <= max(2, 2 * len(values) // spread)
    for t in [0, (1 << 32) - 1, *values, *(v + 1 for v in values if v < (1 << 32) - 1), *(v - 1 for v in values if v),
              *probes]:
        p = t >> shift
        assert bisect_left(values, t, radix[p], radix[p + 1]) == bisect_left(values, t)


def test_the_block_crc_is_zlibs_whichever_implementation_is_used():
    data = random.Random(5).randbytes(5000)
    import zlib

    assert reader_module._crc32(data) == zlib.crc32(data)
    assert reader_module._crc32(memoryview(data)[8:]) == zlib.crc32(data[8:])


# -- Table.read over clean and unclean SSTables -----------------------------------------------------------------------


def test_reads_of_a_clean_sstable_and_of_one_with_ttls_and_tombstones(open_engine, clock):
    engine = open_engine()
    engine.create_table(T)
    now = int(clock())
    for i in range(50):
        engine.apply(Mutation(T, b"k%d" % i).put(b"c", {b"v": b"live%d" % i}, 10, now))
    engine.flush()
    table = engine.table(T)
    (first,) = table.sstables.values()
    assert first.clean
    assert table.read(b"k3") == [(b"c", {b"": (10, b"", 0, 0), b"v": (10, b"live3", 0, 0)})]
    assert table.read(b"absent") == []
    engine.apply(Mutation(T, b"t").put(b"c", {b"v": b"short"}, 10, now, ttl=5))
    engine.apply(Mutation(T, b"d").put(b"c", {b"v": b"gone"}, 10, now).delete_cell(b"c", b"w", 11, now))
    engine.flush()
    second = [s for s in table.sstables.values() if s is not first][0]
    assert not second.clean
    assert dict(table.read(b"t", now=now))[b"c"][b"v"][1] == b"short"
    assert table.read(b"t", now=now + 10) == []  # expired: the unclean path drops it
    clock.advance(10)
    assert table.read(b"t") == []  # `now` taken from the engine's clock when it is needed
    assert set(dict(table.read(b"d"))[b"c"]) == {b"", b"v"}  # the tombstone is not returned
    engine.apply(Mutation(T, b"k3").put(b"c", {b"v": b"newer"}, 20, now))
    engine.flush()  # a second clean source for k3: the merge path
    assert dict(table.read(b"k3"))[b"c"][b"v"][1] == b"newer"
    engine.apply(Mutation(T, b"k4").delete_row(b"c", 30, now))
    assert table.read(b"k4") == []  # the memtable's deletion shadows the clean SSTable's row


def test_limited_slices_of_one_source_clean_or_with_expired_rows(open_engine, clock):
    """A slice with a LIMIT from one SSTable: rows as read when it is clean; when its first rows have expired,
    the read goes on past the first batch it asked for (first_batch) until it has LIMIT live rows."""
    engine = open_engine()
    engine.create_table(T)
    now = int(clock())
    wide = Mutation(T, b"wide")
    for i in range(300):
        wide.put(b"c%03d" % i, {b"v": b"x" * 40}, 10, now)
    engine.apply(wide)
    engine.flush()
    table = engine.table(T)
    assert all(s.clean for s in table.sstables.values())
    cks = [b"c%03d" % i for i in range(300)]
    assert [ck for ck, _ in table.read(b"wide", b"c100", None, False, 5)] == cks[100:105]
    assert [ck for ck, _ in table.read(b"wide", None, b"c100", True, 4)] == cks[96:100][::-1]
    assert [ck for ck, _ in table.read(b"wide", b"c297", None, False, 10)] == cks[297:]
    short = Mutation(T, b"short")
    for i in range(40):  # the first 30 rows expire, the last 10 stay
        short.put(b"c%03d" % i, {b"v": b"y"}, 10, now, ttl=5 if i < 30 else 0)
    engine.apply(short)
    engine.flush()
    clock.advance(10)
    assert [ck for ck, _ in table.read(b"short", None, None, False, 3)] == cks[30:33]
    assert [ck for ck, _ in table.read(b"short", b"c035", None, False, 3)] == cks[35:38]
    assert [ck for ck, _ in table.read(b"short", None, None, True, 12)] == cks[30:40][::-1]
