"""The memtable: merge on arrival, order by (token, key) and by clustering, memory accounting."""

from widecol.storage.memtable import Memtable, rows_of
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
    assert m.cells == 2 and m.min_timestamp == 3


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
    apply(m, b"k", [[b"", None, [[b"v", 1, b"x" * 100, 0, 0]]]])
    first = m.size
    assert first > 100
    apply(m, b"k", [[b"", None, [[b"v", 2, b"y" * 100, 0, 0]]]])
    assert m.size == first
    apply(m, b"j", [[b"", None, [[b"v", 1, b"x" * 100, 0, 0]]]])
    assert m.size > first
