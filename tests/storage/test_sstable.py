"""SSTables: wide partitions across blocks, slices, scans, bloom filters and corruption."""

import shutil
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.errors import Corruption
from widecol.storage.sstable.bloom import BlockedBloom, BloomFilter, hashes, read_filter
from widecol.storage.sstable.cache import BlockCache
from widecol.storage.sstable.reader import SSTableReader
from widecol.storage.sstable.writer import SSTableWriter
from widecol.storage.token import partition_sort_key


def build(directory, partitions):
    """partitions: {key: [(ck, value), ...]} -> a reader."""
    ordered = sorted(partitions, key=partition_sort_key)
    writer = SSTableWriter(directory, 1, len(ordered))
    for key in ordered:
        rows = [(ck, None, {b"v": (1, value, 0, 0)}) for ck, value in sorted(partitions[key])]
        writer.add_partition(partition_sort_key(key), key, None, [], rows)
    writer.finish()
    return SSTableReader(directory, 1)


def cks(version):
    return [row[0] for row in version[2]]


@pytest.fixture
def wide(tmp_path):
    partitions = {b"wide": [(b"%05d" % i, b"v" * 50) for i in range(2000)]}
    partitions.update({b"k%d" % i: [(b"", b"small")] for i in range(300)})
    return build(tmp_path, partitions)


def test_wide_partition_spans_many_blocks_and_reads_whole(wide):
    assert len(wide) > 20
    version = wide.partition(partition_sort_key(b"wide"), b"wide")
    assert cks(version) == [b"%05d" % i for i in range(2000)]


def test_slices_forward_reverse_and_limited(wide):
    sk = partition_sort_key(b"wide")
    assert cks(wide.partition(sk, b"wide", b"01000", b"01005")) == [b"%05d" % i for i in range(1000, 1005)]
    assert cks(wide.partition(sk, b"wide", b"01000", b"01005", reverse=True)) == [
        b"%05d" % i for i in range(1004, 999, -1)
    ]
    assert cks(wide.partition(sk, b"wide", b"01500", None, limit=3)) == [b"01500", b"01501", b"01502"]
    assert cks(wide.partition(sk, b"wide", None, b"00003", reverse=True, limit=2)) == [b"00002", b"00001"]
    assert cks(wide.partition(sk, b"wide", None, None, reverse=True, limit=1)) == [b"01999"]


def test_absent_partition_is_none(wide):
    assert wide.partition(partition_sort_key(b"nope"), b"nope") is None


def test_scan_returns_every_partition_once_in_token_order(wide):
    scanned = list(wide.scan())
    assert [s[0] for s in scanned] == sorted(partition_sort_key(k) for k in [b"wide"] + [b"k%d" % i for i in range(300)])
    (w,) = [s for s in scanned if s[1] == b"wide"]
    assert len(w[4]) == 2000  # fragments joined


def test_scan_bounds_are_exclusive_then_inclusive(wide):
    keys = [s[0] for s in wide.scan()]
    assert [s[0] for s in wide.scan(keys[10], keys[20])] == keys[11:21]


@pytest.mark.parametrize("kind", [BloomFilter, BlockedBloom])
def test_bloom_filter_has_no_false_negatives_and_few_false_positives(kind):
    bloom = kind.for_keys(10_000)
    for i in range(10_000):
        bloom.add(hashes(b"in%d" % i))
    assert all(bloom.may_contain(hashes(b"in%d" % i)) for i in range(10_000))
    false_positives = sum(bloom.may_contain(hashes(b"out%d" % i)) for i in range(10_000))
    assert false_positives < 150  # ~0.9% expected of either kind
    again = read_filter(bloom.to_bytes())
    assert type(again) is kind
    assert all(again.may_contain(hashes(b"in%d" % i)) for i in range(10_000))


def test_bloom_hashes_are_signed_whatever_mmh3_does_with_positional_flags():
    # The filters on disk were written with signed halves; an unsigned h1 would pick other bits and other words.
    assert hashes(b"ab") == (-7815133031266706642, -1846855171832621907)


def test_sstables_are_written_with_blocked_filters_that_answer_through_the_reader(tmp_path):
    reader = build(tmp_path, {b"k%d" % i: [(b"", b"value%d" % i)] for i in range(2000)})
    assert isinstance(reader.bloom, BlockedBloom)
    present = [partition_sort_key(b"k%d" % i) for i in range(2000)]
    assert all(reader.may_contain(hashes(b"k%d" % i), sk) for i, sk in enumerate(present))
    absent = sum(reader.may_contain(hashes(b"x%d" % i), partition_sort_key(b"x%d" % i)) for i in range(2000))
    assert absent < 60


def test_corrupted_block_raises_corruption_naming_file_and_offset(tmp_path):
    reader = build(tmp_path, {b"k%d" % i: [(b"", b"value%d" % i)] for i in range(500)})
    victim = reader.offsets[3]
    path = tmp_path / "1-Data.db"
    data = bytearray(path.read_bytes())
    data[victim + 20] ^= 0x01
    path.write_bytes(bytes(data))
    reader = SSTableReader(tmp_path, 1)
    with pytest.raises(Corruption) as info:
        for _ in reader.scan():
            pass
    assert info.value.path == str(path) and info.value.offset == victim
    assert "checksum" in str(info.value)


def test_corrupted_index_is_detected_at_open(tmp_path):
    build(tmp_path, {b"k": [(b"", b"v")]})
    path = tmp_path / "1-Index.db"
    data = bytearray(path.read_bytes())
    data[2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(Corruption) as info:
        SSTableReader(tmp_path, 1)
    assert "1-Index.db" in info.value.path


@given(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=6), st.lists(st.integers(0, 3000), max_size=40), st.booleans()),
        max_size=12,
        unique_by=lambda p: p[0],
    )
)
@settings(max_examples=60, deadline=None)
def test_any_partitions_read_back_whole_sliced_and_scanned(tmp_path_factory, partitions):
    """Random row counts and value sizes put partition ends at every position relative to block boundaries."""
    directory = tmp_path_factory.mktemp("sst")
    ordered = sorted(partitions, key=lambda p: partition_sort_key(p[0]))
    writer = SSTableWriter(directory, 1, len(ordered))
    expected = {}
    for key, sizes, deleted in ordered:
        rows = [(b"%04d" % i, None, {b"v": (1, b"x" * size, 0, 0)}) for i, size in enumerate(sizes)]
        ranges = [(b"0001", b"0002", 8, 8)] if deleted else []
        writer.add_partition(partition_sort_key(key), key, (9, 9) if deleted else None, ranges, rows)
        expected[key] = ((9, 9) if deleted else None, ranges, [r[0] for r in rows])
    writer.finish()
    reader = SSTableReader(directory, 1)
    for key, (deletion, ranges, row_keys) in expected.items():
        sk = partition_sort_key(key)
        version = reader.partition(sk, key)
        assert version[0] == deletion and version[1] == ranges and cks(version) == row_keys
        assert cks(reader.partition(sk, key, b"0003", b"0010")) == [c for c in row_keys if b"0003" <= c < b"0010"]
        assert cks(reader.partition(sk, key, reverse=True, limit=2)) == row_keys[::-1][:2]
        for start in row_keys[len(row_keys) // 2 :: 7]:  # slices from blocks past the first keep its deletions
            version = reader.partition(sk, key, start, None, limit=3)
            assert version[:2] == (deletion, ranges)
            assert cks(version) == [c for c in row_keys if c >= start][:3]
    scanned = {s[1]: (s[2], s[3], [r[0] for r in s[4]]) for s in reader.scan()}
    assert scanned == expected


def test_point_reads_tell_apart_keys_whose_tokens_are_equal_or_overlap_across_prefixes(tmp_path):
    """A version-3 block is searched as bytes for the 8-byte token prefix: equal tokens must be told apart by key,
    and a match straddling two prefixes (the tail of one and the head of the next) must be skipped."""
    t1 = b"\x01" + b"\x09" * 7
    t2 = b"\x02" + b"\x00" * 7
    straddle = b"\x09" * 7 + b"\x02"  # t1[1:] + t2[:1]: found at a misaligned offset first
    same = b"\x03" * 8
    parts = [(t1, b"a"), (t2, b"b"), (same, b"c1"), (same, b"c2"), (same, b"c3"), (straddle, b"d")]
    writer = SSTableWriter(tmp_path, 1, len(parts))
    for token, key in parts:
        writer.add_partition(token + key, key, None, [], [(b"", None, {b"v": (1, b"value-" + key, 0, 0)})])
    writer.finish()
    for cache in (None, BlockCache(1 << 20)):
        reader = SSTableReader(tmp_path, 1, cache)
        assert len(reader) == 1
        for token, key in parts:
            for _ in range(2):  # from the file, then from the cache
                version = reader.get(token + key, key)
                assert version is not None and version[2][0][2][b"v"][1] == b"value-" + key
                assert reader.partition(token + key, key)[2][0][2][b"v"][1] == b"value-" + key
        assert reader.get(same + b"c0", b"c0") is None and reader.get(same + b"c9", b"c9") is None
        assert reader.get(straddle + b"a", b"a") is None  # same key as t1's partition, other token
        assert [s[0] for s in reader.scan()] == [t + k for t, k in parts]


def test_format_version_2_sstables_are_still_read(tmp_path):
    """tests/storage/data/sstable_v2 was written by the version-2 writer (msgpack block directories): 120 single-row
    partitions and one of 300 rows spanning blocks."""
    shutil.copytree(Path(__file__).parent / "data" / "sstable_v2", tmp_path / "v2")
    for cache in (None, BlockCache(1 << 20)):
        reader = SSTableReader(tmp_path / "v2", 1, cache)
        assert reader.version == 2 and len(reader) > 3
        for i in range(120):
            key = b"k%03d" % i
            for _ in range(2):
                version = reader.get(partition_sort_key(key), key)
                assert version[2] == [(b"", None, {b"v": (7, b"value-%03d" % i, 0, 0)})]
        assert reader.get(partition_sort_key(b"absent"), b"absent") is None
        sk = partition_sort_key(b"wide")
        assert cks(reader.partition(sk, b"wide")) == [b"%04d" % i for i in range(300)]
        assert cks(reader.partition(sk, b"wide", b"0100", b"0105", reverse=True)) == [
            b"%04d" % i for i in range(104, 99, -1)]
        scanned = list(reader.scan())
        assert len(scanned) == 121 and [s[0] for s in scanned] == sorted(s[0] for s in scanned)
        assert {f[1] for f in reader.fragments()} == {s[1] for s in scanned}
        reader.close()


def test_a_block_whose_directory_does_not_match_its_length_is_corruption(tmp_path):
    """The CRC covers the payload; a writer bug (or a CRC collision) that leaves the version-3 directory's offsets
    disagreeing with the block's length is still refused, naming file and offset, never read past."""
    reader = build(tmp_path, {b"k%d" % i: [(b"", b"value%d" % i)] for i in range(500)})
    victim = reader.offsets[1]
    path = tmp_path / "1-Data.db"
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[victim : victim + 4], "big")
    data[victim + 11] ^= 0x02  # the fragment count, 2 off
    payload = bytes(data[victim + 8 : victim + 8 + length])
    data[victim + 4 : victim + 8] = zlib.crc32(payload).to_bytes(4, "big")
    path.write_bytes(bytes(data))
    reader = SSTableReader(tmp_path, 1)
    with pytest.raises(Corruption) as info:
        list(reader.scan())
    assert info.value.path == str(path) and info.value.offset == victim
