"""The memtable: merge on arrival, order by (token, key) and by clustering, memory accounting."""

from widecol.storage.memtable import Memtable, fragment_stats, pack_fragment, packed_size, rows_of, wire_size
from widecol.storage.token import partition_sort_key


def apply(memtable, key, rows, deletion=None, ranges=()):
    memtable.apply(partition_sort_key(key), key, deletion, list(ranges), rows)


def test_cells_merge_by_the_one_rule_on_arrival():
    m = Memtable()
    apply(m, b"k", [[b"", None, [[b"a", 5, b"new", 0, 0]]]])
    apply(m, b"k", [[b"", None, [[b"a", 3, b"old", 0, 0], [b"b", 3, b"b", 0, 0]]]])
    apply(m, b"k", [[b"", None, [[b"b", 3, None, 9, 0]]]])  # tombstone ties and wins
    (row,) = rows_of(m.get(partition_sort_key(b"k")), None, None, False)
    assert row[2] == {b"a": (5, b"new", 0, 0), b"b": (3, None, 9, 0)}
    assert m.cells == 2


def test_partitions_walk_in_token_order_and_rows_in_clustering_order():
    m = Memtable()
    keys = [b"k%d" % i for i in range(50)]
    for k in keys:
        apply(m, k, [[b"%02d" % c, None, [[b"v", 1, b"x", 0, 0]]] for c in (7, 3, 5)])
    assert [p.key for _, p in m.items()] == sorted(keys, key=partition_sort_key)
    assert m.sort_keys(None, None) == sorted(partition_sort_key(k) for k in keys)
    p = m.get(partition_sort_key(b"k1"))
    assert [r[0] for r in rows_of(p, None, None, False)] == [b"03", b"05", b"07"]
    assert [r[0] for r in rows_of(p, b"04", None, True)] == [b"07", b"05"]
    assert [r[0] for r in rows_of(p, None, None, False, limit=1)] == [b"03"]


def test_size_grows_with_data_and_not_with_overwrites():
    m = Memtable()
    rows = [[b"", None, [[b"v", 1, b"x" * 100, 0, 0]]]]
    apply(m, b"k", rows)
    (key, fragment) = m.partitions[partition_sort_key(b"k")]
    assert m.size == packed_size(b"k", fragment) > 100  # packed form: charged by its bytes
    apply(m, b"k", [[b"", None, [[b"v", 2, b"y" * 100, 0, 0]]]])
    first = m.size
    assert first == wire_size(b"k", rows)  # promoted: charged as the merged form, the packed charge returned
    apply(m, b"k", [[b"", None, [[b"v", 3, b"z" * 100, 0, 0]]]])
    assert m.size == first
    apply(m, b"j", [[b"", None, [[b"v", 1, b"x" * 100, 0, 0]]]])
    assert m.size > first


def test_packed_partitions_added_in_one_step_match_one_by_one():
    rows = {b"k%d" % i: [[b"", None, [[b"", 5 + i, b"", 0, 0], [b"v", 5 + i, b"x" * i, 90, 60]]]]
            for i in range(20)}
    one = Memtable()
    for key, r in rows.items():
        apply(one, key, r)
    sks = [partition_sort_key(k) for k in rows]
    parts = [(k, pack_fragment(r)) for k, r in rows.items()]
    stats = [fragment_stats(r) for r in rows.values()]
    total = (len(stats), *(sum(s[i] for s in stats) for i in (1, 2, 3)), min(s[4] for s in stats),
             max(s[5] for s in stats), max(s[6] for s in stats))
    size = sum(packed_size(k, f) for k, f in parts)
    batch = Memtable()
    assert batch.apply_packed(sks, parts, size, total)
    assert (batch.partitions, batch.size, batch.cells, batch.wire_stats) == (
        one.partitions, one.size, one.cells, one.wire_stats)
    assert batch.sort_keys(None, None) == one.sort_keys(None, None)
    # A sort key already present, or repeated: nothing changes, the caller applies them one by one.
    assert not batch.apply_packed(sks[:1], parts[:1], 1, total)
    assert not Memtable().apply_packed(sks[:1] * 2, parts[:1] * 2, 1, total)
    assert (batch.size, len(batch), batch.wire_stats) == (one.size, len(one), one.wire_stats)


def test_a_partition_written_once_is_held_in_wire_form_until_a_second_write():
    from widecol.storage.memtable import MemPartition

    m = Memtable()
    sk = partition_sort_key(b"k")
    rows = [[b"a", None, [[b"", 1, b"", 0, 0], [b"v", 1, b"x", 0, 0]]], [b"b", [2, 9], []]]
    apply(m, b"k", rows)
    assert type(m.partitions[sk]) is tuple  # canonical: clusterings and column keys strictly increasing
    assert m.version(sk) == (None, [], [(b"a", None, {b"": (1, b"", 0, 0), b"v": (1, b"x", 0, 0)}),
                                        (b"b", (2, 9), {})])
    assert m.version(sk, start=b"b", reverse=True) == (None, [], [(b"b", (2, 9), {})])
    size = m.size
    apply(m, b"k", [[b"a", None, [[b"v", 0, b"older", 0, 0]]]])  # loses to the held cell: no new data
    assert isinstance(m.partitions[sk], MemPartition)
    assert m.size == wire_size(b"k", rows) and m.cells == 2  # the merged form's charge replaces the packed one
    assert size == packed_size(b"k", pack_fragment(rows))
    assert m.version(sk)[2][0] == (b"a", None, {b"": (1, b"", 0, 0), b"v": (1, b"x", 0, 0)})
    assert rows == [[b"a", None, [[b"", 1, b"", 0, 0], [b"v", 1, b"x", 0, 0]]], [b"b", [2, 9], []]]  # not changed
    apply(m, b"j", [[b"", None, [[b"v", 1, b"x", 0, 0], [b"a", 1, b"y", 0, 0]]]])  # columns out of order
    assert isinstance(m.partitions[partition_sort_key(b"j")], MemPartition)
    assert m.version(partition_sort_key(b"j"))[2] == [(b"", None, {b"a": (1, b"y", 0, 0), b"v": (1, b"x", 0, 0)})]
