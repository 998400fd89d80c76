"""The write path's packed form: one msgpack call per mutation serves the commit log and the memtable, and a
flush copies packed partitions with statistics summed at apply time."""

import msgpack
import pytest

from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.memtable import EMPTY_STATS, Memtable, fragment_stats, pack_fragment
from widecol.storage.mutation import Mutation
from widecol.storage.prepare import array_header, prepare
from widecol.storage.sstable.reader import SSTableReader
from widecol.storage.sstable.writer import SSTableWriter
from widecol.storage.token import partition_sort_key


def mutations():
    yield Mutation("t", b"k").put(b"", {b"v": b"x" * 100}, 5)
    yield Mutation("t" * 40, b"k" * 300).put(b"c", {b"a": b"1", b"b": None}, 7, now=10, ttl=60)  # str8, bin16
    yield Mutation("t" * 300, b"k" * 255).delete_cell(b"c", b"v", 9, 100).delete_row(b"d", 4, 100)
    yield Mutation("t", b"k").put(b"", {b"v": b"x", b"a": b"y"}, 5)  # columns out of order: not packed
    yield Mutation("t", b"k").delete_partition(3, 100)
    yield Mutation("t", b"k").delete_range(b"a", b"b", 3, 100).put(b"a", {b"v": b"x"}, 4)
    wide = Mutation("t", b"w")
    for c in range(200):
        wide.put(b"%04d" % c, {b"v": b"x" * 100}, 1)
    yield wide  # too big for one fragment: not packed


def test_prepare_packs_the_commit_log_bytes_and_the_fragment_in_one_call():
    ms = list(mutations())
    packed = []
    for m in ms:
        wire, size, fragment, stats = prepare(m)
        assert wire == msgpack.packb(m.to_wire())
        packed.append(wire)
        if size < 0:
            assert fragment is None and stats == EMPTY_STATS
        else:
            assert fragment == msgpack.packb([None, [], m.rows]) == pack_fragment(m.rows)
            assert stats == fragment_stats(m.rows)
    assert [prepare(m)[1] >= 0 for m in ms] == [True, True, True, False, False, False, False]
    assert array_header(len(packed)) + b"".join(packed) == msgpack.packb([m.to_wire() for m in ms])
    for n in (0, 1, 15, 16, 65535, 65536, 70000):
        assert array_header(n) == msgpack.packb([0] * n)[: -n or None]  # 0 packs as one byte


def _flush_stats(tmp_path, name, fill):
    (tmp_path / name).mkdir()
    with Engine.open(tmp_path / name, EngineOptions(background_compaction=False)) as e:
        table = e.create_table("t")
        fill(e)
        e.flush("t")
        (s,) = table.sstables.values()
        return s.stats, {k: table.read(k, now=0) for k in (b"a", b"b", b"c", b"d")}


ROWS = {
    b"a": [[b"", None, [[b"", 5, b"", 0, 0], [b"v", 5, b"x", 0, 0]]]],
    b"b": [[b"1", [3, 40], []], [b"2", None, [[b"v", 9, None, 50, 0]]]],
    b"c": [[b"", None, [[b"v", 2, b"y", 1000, 60]]]],
    b"d": [[b"", None, [[b"v", 7, b"z", 0, 0]]]],
}


@pytest.mark.parametrize("second_write", [False, True])
def test_a_flush_of_packed_partitions_has_the_statistics_of_the_general_path(tmp_path, second_write):
    def packed(e):
        for key, rows in ROWS.items():
            e.apply(Mutation("t", key, rows=[[ck, d, [list(c) for c in cells]] for ck, d, cells in rows]))
        if second_write:  # d leaves the packed form: its counts must leave wire_stats
            e.apply(Mutation("t", b"d").put(b"", {b"v": b"zz"}, 8))

    def general(tmp_dir):
        writer = SSTableWriter(tmp_dir, 1, 4)
        m = Memtable()
        for key, rows in ROWS.items():
            m.apply(partition_sort_key(key), key, None, [], rows)
        if second_write:
            m.apply(partition_sort_key(b"d"), b"d", None, [], [[b"", None, [[b"", 8, b"", 0, 0],
                                                                         [b"v", 8, b"zz", 0, 0]]]])
        for sk, p in m.items():
            writer.add_partition(sk, p.key, p.deletion, p.ranges,
                                 [(ck, p.rows[ck][0], p.rows[ck][1]) for ck in sorted(p.rows)])
        writer.finish()
        return SSTableReader(tmp_dir, 1, None).stats

    stats, reads = _flush_stats(tmp_path, "packed", packed)
    (tmp_path / "general").mkdir()
    expected = general(tmp_path / "general")
    for field in ("partitions", "rows", "cells", "tombstones", "ttl_cells", "max_ldt", "min_token", "max_token",
                  "max_timestamp"):
        assert stats[field] == expected[field], field
    assert stats["min_timestamp"] <= expected["min_timestamp"]  # a merged-away cell may widen the bound
    assert reads[b"a"] == [(b"", {b"": (5, b"", 0, 0), b"v": (5, b"x", 0, 0)})]
    assert reads[b"b"] == []
    assert reads[b"d"][0][1][b"v"][1] == (b"zz" if second_write else b"z")


def test_memtable_packs_canonical_rows_and_unpacks_them_to_merge(tmp_path):
    m = Memtable()
    sk = partition_sort_key(b"k")
    m.apply(sk, b"k", None, [], [[b"a", None, [[b"v", 1, b"x", 0, 0]]]])
    assert m.partitions[sk] == (b"k", msgpack.packb([None, [], [[b"a", None, [[b"v", 1, b"x", 0, 0]]]]]))
    assert m.wire_stats == (1, 1, 0, 0, 1, 1, 0)
    m.apply(sk, b"k", None, [], [[b"b", None, [[b"v", 2, None, 7, 0]]]])
    assert m.wire_stats[:4] == (0, 0, 0, 0)
    assert [r[0] for r in m.version(sk)[2]] == [b"a", b"b"]
