"""The INSERT fast path: put() leaves a summary (Mutation.plain) that lets apply_batch skip the per-cell walk and
add a batch's partitions to the memtable in one step; it must log the same bytes, hold the same partitions with
the same statistics, and refuse the same malformed mutations as the general path."""

import msgpack
import pytest

from widecol.errors import InvalidRequest
from widecol.storage.memtable import EMPTY_STATS, Memtable, fragment_stats, pack_fragment, packed_size
from widecol.storage.mutation import Mutation
from widecol.storage.prepare import prepare, prepare_plain
from widecol.storage.token import partition_sort_key

T = "ks.t"


def test_put_leaves_a_summary_only_for_what_the_memtable_can_hold_packed():
    assert Mutation(T, b"k").put(b"c", {b"a": b"1", b"b": None}, 7, now=10, ttl=60).plain == (7, 70, 60, 3, 1)
    assert Mutation(T, b"k").put(b"", {b"v": b"x"}, 5).plain == (5, 0, 0, 2, 0)
    not_plain = [
        Mutation(T, b"k").put(b"", {b"v": b"x", b"a": b"y"}, 5),  # columns out of order
        Mutation(T, b"k").put(b"", {b"": b"x"}, 5),  # the row marker's key twice
        Mutation(T, b"k").put(b"", {b"v": 3}, 5),  # type: ignore[dict-item]  # not bytes: refused later
        Mutation(T, b"k").put(b"", {"v": b"x"}, 5),  # type: ignore[dict-item]
        Mutation(T, b"k").put(b"", {b"v": b"x"}, 5.0),  # type: ignore[arg-type]
        Mutation(T, b"k").put(b"", {b"v": b"x"}, 5, now=1, ttl=-1),
        Mutation(T, b"k").put(b"", {b"v": b"x"}, 5, now=1.5, ttl=2),  # type: ignore[arg-type]
        Mutation(T, b"k").put("c", {b"v": b"x"}, 5),  # type: ignore[arg-type]
        Mutation(T, b"k").delete_partition(1, 2).put(b"", {b"v": b"x"}, 5),
        Mutation(T, b"k").put(b"", {b"v": b"x"}, 5).delete_partition(1, 2),
        Mutation(T, b"k").put(b"", {b"v": b"x"}, 5).delete_range(b"a", b"b", 1, 2),
        Mutation(T, b"k").put(b"", {b"v": b"x"}, 5).delete_row(b"", 1, 2),
        Mutation(T, b"k").put(b"", {b"v": b"x"}, 5).delete_cell(b"", b"w", 1, 2),
        Mutation(T, b"k").put(b"", {b"v": b"x"}, 5).set(b"", b"w", b"y", 1),
        Mutation(T, b"k").put(b"a", {b"v": b"x"}, 5).put(b"b", {b"v": b"x"}, 5),
        Mutation.from_wire(Mutation(T, b"k").put(b"", {b"v": b"x"}, 5).to_wire()),
    ]
    assert [m.plain for m in not_plain] == [None] * len(not_plain)
    m = Mutation(T, b"k").put(b"a", {b"v": b"x"}, 5).put(b"a", {b"w": b"y"}, 6)  # a second put: general form
    assert m.rows == [[b"a", None, [[b"", 5, b"", 0, 0], [b"v", 5, b"x", 0, 0], [b"", 6, b"", 0, 0],
                                    [b"w", 6, b"y", 0, 0]]]]


def batch():
    return [
        Mutation(T, b"k%d" % i).put(b"c%d" % i, {b"a": b"x" * i, b"b": None if i % 3 else b"y"}, 100 - i,
                                    now=1000 + i, ttl=60 * (i % 2))
        for i in range(20)
    ] + [Mutation(T, b"k" * 255).put(b"", {b"v": b"z"}, 1)]


def test_prepare_plain_logs_the_general_bytes_and_sums_what_prepare_gives_each():
    ms = batch()
    table_id, payload, sks, parts, size, stats = prepare_plain(ms)
    assert table_id == T
    assert payload == msgpack.packb([m.to_wire() for m in ms])
    assert sks == [partition_sort_key(m.key) for m in ms]
    assert parts == [(m.key, pack_fragment(m.rows)) for m in ms]
    each = [prepare(m) for m in ms]
    assert size == sum(e[1] for e in each) == sum(packed_size(k, f) for k, f in parts)
    assert [e[2] for e in each] == [f for _, f in parts]
    per = [fragment_stats(m.rows) for m in ms]
    assert stats == (len(ms), sum(s[1] for s in per), sum(s[2] for s in per), sum(s[3] for s in per),
                     min(s[4] for s in per), max(s[5] for s in per), max(s[6] for s in per))
    assert stats[3] > 0 and stats[2] > 0  # TTL cells and tombstones both counted


@pytest.mark.parametrize("odd", [
    Mutation("other", b"k").put(b"", {b"v": b"x"}, 1),  # a second table
    Mutation(T, b"k" * 256).put(b"", {b"v": b"x"}, 1),  # a key with a 3-byte header
    Mutation(T, b"").put(b"", {b"v": b"x"}, 1),  # an empty key (refused by the general path)
    Mutation(T, "k").put(b"", {b"v": b"x"}, 1),  # type: ignore[arg-type]
    Mutation(T, b"k").set(b"", b"v", b"x", 1),  # no summary
])
def test_prepare_plain_declines_a_batch_it_cannot_take_whole(odd):
    assert prepare_plain([*batch(), odd]) is None
    assert prepare_plain([]) is None


def test_repeated_and_rewritten_keys_merge_by_the_one_rule(open_engine):
    engine = open_engine()
    table = engine.create_table(T)
    engine.apply_batch([Mutation(T, b"a").put(b"", {b"v": b"1"}, 1), Mutation(T, b"b").put(b"", {b"v": b"1"}, 1)])
    memtable = table.memtable
    size = memtable.size
    engine.apply_batch([  # b again, and c twice in one batch: applied one by one
        Mutation(T, b"b").put(b"", {b"v": b"2"}, 2), Mutation(T, b"c").put(b"", {b"v": b"3"}, 3),
        Mutation(T, b"c").put(b"", {b"v": b"old"}, 2), Mutation(T, b"d").put(b"", {b"v": b"4"}, 4),
    ])
    assert memtable.size > size
    held = [memtable.partitions[partition_sort_key(k)] for k in (b"a", b"b", b"c", b"d")]
    assert [isinstance(p, tuple) for p in held] == [True, False, False, True]  # b and c merged, a and d packed
    expect = {b"a": b"1", b"b": b"2", b"c": b"3", b"d": b"4"}
    assert {k: table.read(k)[0][1][b"v"][1] for k in expect} == expect
    assert memtable.wire_stats[:2] == (2, 4)  # a and d stay packed: 2 rows of 2 cells
    engine.flush()
    assert {k: table.read(k)[0][1][b"v"][1] for k in expect} == expect


def test_a_malformed_insert_in_a_batch_changes_nothing(open_engine):
    engine = open_engine()
    table = engine.create_table(T)
    good = Mutation(T, b"a").put(b"", {b"v": b"1"}, 1)
    for bad in (Mutation(T, b"b").put(b"", {b"v": 5}, 1),  # type: ignore[dict-item]
                Mutation(T, b"b").put(b"", {b"v": b"1"}, 1, now=1, ttl=-5),
                Mutation(T, b"").put(b"", {b"v": b"1"}, 1)):
        with pytest.raises(InvalidRequest):
            engine.apply_batch([good, bad])
    with pytest.raises(InvalidRequest, match="unknown table"):
        engine.apply_batch([Mutation("nope", b"a").put(b"", {b"v": b"1"}, 1)])
    assert engine.commitlog.records == 0 and len(table.memtable) == 0 and table.memtable.size == 0


def test_fast_path_batches_survive_a_crash_and_replay_to_the_same_memtable(open_engine):
    engine = open_engine()
    table = engine.create_table(T)
    for i in range(0, 300, 100):
        engine.apply_batch([Mutation(T, b"k%d" % j).put(b"", {b"v": b"v%d" % j}, 1, now=5, ttl=100 * (j % 2))
                            for j in range(i, i + 100)])
    before = (len(table.memtable), table.memtable.size, table.memtable.wire_stats)
    assert before[2] != EMPTY_STATS
    engine.commitlog.close()  # a crash: no flush
    engine.closing = True
    again = open_engine()
    for j in range(300):
        assert again.table(T).read(b"k%d" % j, now=0)[0][1][b"v"][1] == b"v%d" % j
    replayed = Memtable()  # what the general path holds for the same writes
    for i in range(300):
        k = b"k%d" % i
        replayed.apply(partition_sort_key(k), k, None, [],
                       [[b"", None, [[b"", 1, b"", 105 if i % 2 else 0, 100 * (i % 2)],
                                     [b"v", 1, b"v%d" % i, 105 if i % 2 else 0, 100 * (i % 2)]]]])
    assert (len(replayed), replayed.size, replayed.wire_stats) == before


def test_random_insert_batches_hold_what_single_applies_hold(tmp_path, clock):
    """Seeded: batches through the fast path and the same mutations one by one through the general path give the
    same memtable (partitions, size, cells, statistics) and, after a flush, the same rows."""
    import random

    from widecol.storage.engine import Engine, EngineOptions

    rng = random.Random(7)
    engines = [Engine.open(tmp_path / name, EngineOptions(background_compaction=False), clock=clock)
               for name in ("batched", "single")]
    try:
        tables = [e.create_table(T) for e in engines]
        fast = 0
        written = set()
        for i in range(30):
            ms = []
            for _ in range(rng.randrange(8, 40)):
                columns = {b"c%d" % c: (None if rng.random() < 0.2 else rng.randbytes(rng.randrange(30)))
                           for c in sorted(rng.sample(range(5), rng.randrange(4)))}
                ms.append(Mutation(T, b"k%d" % rng.randrange(100_000)).put(
                    b"%d" % rng.randrange(3), columns, rng.randrange(1, 50), now=100, ttl=rng.choice((0, 0, 60))))
            if i % 4 == 0:  # a key twice in one batch
                ms.append(Mutation(T, ms[0].key).put(b"0", {b"c1": b"again"}, rng.randrange(1, 50)))
            if i % 7 == 3:  # a key of an earlier batch
                ms.append(Mutation(T, min(written)).put(b"0", {b"c1": b"later"}, rng.randrange(1, 50)))
            written |= {m.key for m in ms}
            sks = {partition_sort_key(m.key) for m in ms}
            fast += prepare_plain(ms) is not None and len(sks) == len(ms) and sks.isdisjoint(
                tables[0].memtable.partitions)
            engines[0].apply_batch(ms)
            for m in ms:
                engines[1].apply(m)
        assert 15 <= fast < 30  # most batches took the fast path whole; the others, one by one
        a, b = (t.memtable for t in tables)
        assert a.partitions == b.partitions or {sk: a.version(sk) for sk in a.partitions} == {
            sk: b.version(sk) for sk in b.partitions}
        assert (a.size, a.cells, a.wire_stats) == (b.size, b.cells, b.wire_stats)
        for e in engines:
            e.flush()
        keys = sorted(written)
        assert [tables[0].read(k, now=0) for k in keys] == [tables[1].read(k, now=0) for k in keys]
        assert [s.stats for s in tables[0].sstables.values()] == [s.stats for s in tables[1].sstables.values()]
    finally:
        for e in engines:
            e.close()
