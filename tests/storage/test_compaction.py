"""Compaction's chunked merge: every partition comes out once, whole, in order, whichever inputs and blocks hold it."""

import random
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.storage.compaction import _chunks
from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.mutation import Mutation

T = "ks.t"


def write(engine, key, rows, ts):
    m = Mutation(T, key)
    for ck in rows:
        m.put(ck, {b"v": b"%s@%d" % (ck, ts)}, ts)
    engine.apply(m)


# Each input: partitions as (key number, row count); wide partitions (many rows) span several 4 KiB blocks.
inputs_strategy = st.lists(
    st.dictionaries(st.integers(0, 60), st.sampled_from([1, 1, 1, 3, 40, 120]), min_size=1, max_size=25),
    min_size=1,
    max_size=5,
)


@settings(max_examples=25, deadline=None)
@given(inputs=inputs_strategy)
def test_chunks_hold_each_partition_whole_and_in_order(inputs):
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine.open(folder, EngineOptions(background_compaction=False))
        try:
            table = engine.create_table(T)
            for ts, partitions in enumerate(inputs, start=1):
                for k, rows in partitions.items():
                    write(engine, b"key%d" % k, [b"c%03d" % r for r in range(rows)], ts)
                engine.flush(T)
            sources = list(table.sstables.values())
            seen: list[bytes] = []
            fragments = 0
            for chunk in _chunks(sources):
                sks = [item[0] for item in chunk]
                assert sks == sorted(sks)
                assert not seen or seen[-1] < sks[0], "a partition straddles two chunks"
                seen.extend(dict.fromkeys(sks))
                fragments += len(chunk)
            assert seen == sorted({sk for s in sources for sk, *_ in s.fragments()})
            assert fragments == sum(1 for s in sources for _ in s.fragments())
        finally:
            engine.close()


def test_compaction_of_interleaved_wide_and_narrow_partitions_loses_nothing(open_engine):
    engine = open_engine(compaction_min_threshold=100)
    table = engine.create_table(T)
    rng = random.Random(7)
    model: dict[bytes, dict[bytes, bytes]] = {}
    for ts in range(1, 5):
        for k in rng.sample(range(300), 120):
            rows = [b"c%03d" % r for r in rng.sample(range(200), rng.choice([1, 2, 90]))]
            write(engine, b"key%d" % k, rows, ts)
            model.setdefault(b"key%d" % k, {}).update({ck: b"%s@%d" % (ck, ts) for ck in rows})
        if ts == 3:
            engine.apply(Mutation(T, b"key5").delete_partition(100, engine.now()))  # one input is not clean
            model.pop(b"key5", None)
        engine.flush(T)
    engine.compact(T)
    assert len(table.sstables) == 1
    for key, rows in model.items():
        assert {ck: cells[b"v"][1] for ck, cells in table.read(key)} == rows
    assert {k for k, _ in table.scan()} == set(model)
    table.check()
