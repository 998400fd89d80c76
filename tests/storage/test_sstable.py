"""SSTables: wide partitions across blocks, slices, scans, bloom filters and corruption."""

import pytest

from widecol.errors import Corruption
from widecol.storage.sstable.bloom import BloomFilter, hashes
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
    assert len(wide) > 50
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


def test_bloom_filter_has_no_false_negatives_and_few_false_positives():
    bloom = BloomFilter.for_keys(10_000)
    for i in range(10_000):
        bloom.add(hashes(b"in%d" % i))
    assert all(bloom.may_contain(hashes(b"in%d" % i)) for i in range(10_000))
    false_positives = sum(bloom.may_contain(hashes(b"out%d" % i)) for i in range(10_000))
    assert false_positives < 200  # ~0.9% expected
    assert BloomFilter.from_bytes(bloom.to_bytes()).bits == bloom.bits


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
