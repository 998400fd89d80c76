"""The hint store: round trips, reopen after close and after a crash, corruption, acknowledgement persistence,
expiry, drop, many targets, and a Hypothesis state machine against a dict model."""

import os
import shutil
import threading

import hypothesis.strategies as st
import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from widecol.coordinator.hints import (
    HEADER_SIZE,
    OFFSET_BITS,
    RECORD_HEADER_SIZE,
    Hint,
    HintStore,
    should_hint,
)
from widecol.storage.mutation import Mutation

HOST = "5b6962dd-3f90-4c93-8f61-eabfa4a803e2"


def wire(i, table="ks.t"):
    return Mutation(table, b"key%d" % i).put(b"ck", {b"v": b"value %d" % i}, timestamp=1000 + i).to_wire()


def hints(store, target=HOST, **kwargs):
    return [h for batch in store.replay(target, **kwargs) for h in batch]


def keys(hint_list):
    return [Mutation.from_wire(h.mutation_wire).key for h in hint_list]


def segments(directory, target=HOST):
    return sorted(p for p in (directory / target).iterdir() if p.suffix == ".hints")


def filled(directory, n=10, **kwargs):
    store = HintStore(directory, **kwargs)
    for i in range(n):
        store.add(HOST, wire(i), 100.0 + i)
    return store


def test_add_then_replay_returns_every_hint_in_order_with_its_mutation(tmp_path):
    store = filled(tmp_path)
    got = hints(store)
    assert [h.created_at for h in got] == [100.0 + i for i in range(10)]
    assert [h.mutation_wire for h in got] == [wire(i) for i in range(10)]
    assert Mutation.from_wire(got[3].mutation_wire) == Mutation.from_wire(wire(3))
    assert [h.id for h in got] == sorted(h.id for h in got)
    assert store.targets() == [HOST] and store.pending(HOST) == 10
    assert hints(store) == got  # replay marks nothing delivered


def test_batches_respect_max_batch_bytes_and_an_oversized_hint_is_a_batch_of_its_own(tmp_path):
    store = HintStore(tmp_path, fsync=False)
    for i in range(20):
        store.add(HOST, wire(i), 1.0)
    store.add(HOST, ["ks.t", b"big", None, [], [[b"ck", None, [[b"v", 1, b"x" * 5000, 0, 0]]]]], 2.0)
    batches = list(store.replay(HOST, max_batch_bytes=200))
    assert all(1 <= len(b) for b in batches) and len(batches) > 5
    assert [len(b) for b in batches][-1] == 1 and batches[-1][0].mutation_wire[1] == b"big"
    assert sum(len(b) for b in batches[:-1]) == 20
    assert all(len(b) <= 4 for b in batches[:-1])  # each small payload is over 40 bytes


def test_acknowledged_hints_are_never_replayed_again_and_empty_files_are_deleted(tmp_path):
    store = filled(tmp_path, n=30, segment_bytes=600)
    files = segments(tmp_path)
    assert len(files) >= 3
    got = hints(store)
    store.acknowledge(HOST, [h.id for h in got[:12]])
    assert hints(store) == got[12:]
    assert store.pending(HOST) == 18
    first_left = got[12].id >> OFFSET_BITS
    assert [int(p.stem) for p in segments(tmp_path)] == [int(p.stem) for p in files if int(p.stem) >= first_left]
    store.acknowledge(HOST, [h.id for h in got[12:]])
    assert hints(store) == [] and store.targets() == [] and segments(tmp_path) == []
    store.add(HOST, wire(99), 5.0)  # a fresh file after the active one was deleted
    assert keys(hints(store)) == [b"key99"] and hints(store)[0].id > got[-1].id
    store.close()


def test_unknown_and_repeated_acknowledgements_are_ignored(tmp_path):
    store = filled(tmp_path, n=3)
    got = hints(store)
    store.acknowledge(HOST, [got[0].id, got[0].id, 12345, got[0].id + 1])
    store.acknowledge("nobody", [got[1].id])
    assert hints(store) == got[1:]
    assert store.statistics().acknowledged == 1


def test_reopen_after_close_finds_every_targets_pending_hints(tmp_path):
    store = HintStore(tmp_path)
    for i in range(5):
        store.add("a", wire(i), float(i))
        store.add("b:9042", wire(10 + i), float(i))
    got_a = hints(store, "a")
    store.acknowledge("a", [got_a[0].id, got_a[3].id])
    store.close()
    store = HintStore(tmp_path)
    assert store.targets() == ["a", "b:9042"]
    assert keys(hints(store, "a")) == [b"key1", b"key2", b"key4"]
    assert keys(hints(store, "b:9042")) == [b"key%d" % (10 + i) for i in range(5)]
    store.add("a", wire(7), 7.0)  # new hints after reopen come after the old ones
    assert keys(hints(store, "a")) == [b"key1", b"key2", b"key4", b"key7"]
    store.close()


def test_out_of_order_acknowledgements_survive_reopen(tmp_path):
    store = filled(tmp_path, n=40, segment_bytes=700, fsync=False)
    got = hints(store)
    acked = {i for i in range(40) if i % 3 == 0 or 10 <= i < 25 or i == 39}
    store.acknowledge(HOST, [got[i].id for i in sorted(acked, reverse=True)])
    store.close()
    store = HintStore(tmp_path)
    assert [h.id for h in hints(store)] == [got[i].id for i in range(40) if i not in acked]
    # the progress record holds runs, not every id: 40 hints, a handful of intervals
    assert (tmp_path / HOST / "progress").stat().st_size < 200


def test_acknowledgement_is_durable_before_the_files_go(tmp_path):
    """A crash after the progress record is replaced but before a delivered file is deleted: on reopen the file's
    hints are recognised as delivered and the file is deleted."""
    store = filled(tmp_path, n=5)
    (path,) = segments(tmp_path)
    saved = path.read_bytes()
    store.acknowledge(HOST, [h.id for h in hints(store)])
    assert not path.exists()
    store.close()
    path.write_bytes(saved)
    store = HintStore(tmp_path)
    assert hints(store) == [] and store.targets() == [] and not path.exists()
    store.add(HOST, wire(1), 1.0)  # a new file whose ids are above the old watermark
    assert keys(hints(store)) == [b"key1"]


def test_ids_of_a_deleted_file_are_not_reused_after_reopen(tmp_path):
    """Found by the state machine: the last file's hints acknowledged (file deleted) while an earlier file still
    has pending hints; after reopen a new file must not take the deleted file's id, or its new hints would be
    covered by the old acknowledgements and lost."""
    store = filled(tmp_path, n=4, segment_bytes=300, fsync=False)
    got = hints(store)
    assert got[-1].id >> OFFSET_BITS == 2 and got[-2].id >> OFFSET_BITS == 1
    store.acknowledge(HOST, [got[-1].id])
    store = HintStore(tmp_path, segment_bytes=300, fsync=False)
    store.add(HOST, wire(9), 9.0)
    store = HintStore(tmp_path, segment_bytes=300, fsync=False)
    assert keys(hints(store)) == [b"key0", b"key1", b"key2", b"key9"]


def test_reopen_without_close_keeps_every_added_hint(tmp_path):
    store = filled(tmp_path, n=8, fsync=False)
    got = hints(store)
    store.acknowledge(HOST, [got[2].id])
    # no close: the process "dies"; what os.write handed to the kernel is there
    reopened = HintStore(tmp_path)
    assert hints(reopened) == got[:2] + got[3:]


def test_torn_tail_loses_only_the_torn_hint_and_is_logged(tmp_path, caplog):
    filled(tmp_path, n=6).close()
    (path,) = segments(tmp_path)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 7)
    store = HintStore(tmp_path)
    assert keys(hints(store)) == [b"key%d" % i for i in range(5)]
    assert str(path) in caplog.text and "torn" in caplog.text
    store.add(HOST, wire(6), 6.0)  # goes to a new file, never after the torn tail
    assert len(segments(tmp_path)) == 2
    assert keys(hints(store)) == [b"key%d" % i for i in (0, 1, 2, 3, 4, 6)]


def test_truncation_inside_a_record_header_keeps_the_records_before_it(tmp_path, caplog):
    store = filled(tmp_path, n=4)
    offsets = [h.id & ((1 << OFFSET_BITS) - 1) for h in hints(store)]
    store.close()
    (path,) = segments(tmp_path)
    with open(path, "r+b") as f:
        f.truncate(offsets[3] + 5)
    assert keys(hints(HintStore(tmp_path))) == [b"key0", b"key1", b"key2"]
    assert f"offset {offsets[3]}" in caplog.text


@pytest.mark.parametrize("where", ["payload", "length", "marker", "header crc"])
def test_a_flipped_byte_costs_one_hint_and_later_ones_stay_readable(tmp_path, caplog, where):
    store = filled(tmp_path, n=10)
    offsets = [h.id & ((1 << OFFSET_BITS) - 1) for h in hints(store)]
    store.close()
    (path,) = segments(tmp_path)
    data = bytearray(path.read_bytes())
    at = {"payload": RECORD_HEADER_SIZE + 10, "length": 6, "marker": 1, "header crc": 9}[where]
    data[offsets[4] + at] ^= 0x21
    path.write_bytes(bytes(data))
    store = HintStore(tmp_path)
    assert keys(hints(store)) == [b"key%d" % i for i in range(10) if i != 4]
    assert str(path) in caplog.text and f"offset {offsets[4]}" in caplog.text


def test_a_damaged_segment_header_does_not_lose_its_records(tmp_path, caplog):
    filled(tmp_path, n=3).close()
    (path,) = segments(tmp_path)
    data = bytearray(path.read_bytes())
    data[2] ^= 0xFF
    path.write_bytes(bytes(data))
    assert keys(hints(HintStore(tmp_path))) == [b"key0", b"key1", b"key2"]
    assert "bad segment header" in caplog.text


def test_garbage_files_never_crash_the_store(tmp_path, caplog):
    filled(tmp_path, n=2).close()
    target = tmp_path / HOST
    (target / "0000000000000050.hints").write_bytes(b"WCHT")  # torn header
    (target / "0000000000000051.hints").write_bytes(os.urandom(3000))
    (target / "notes.txt").write_text("ignored")
    store = HintStore(tmp_path)
    assert keys(hints(store)) == [b"key0", b"key1"]
    store.add(HOST, wire(5), 5.0)
    assert keys(hints(store))[-1] == b"key5"
    assert "0000000000000050.hints" in caplog.text


def test_a_corrupt_progress_record_replays_rather_than_loses(tmp_path, caplog):
    store = filled(tmp_path, n=4)
    store.acknowledge(HOST, [hints(store)[0].id])
    store.close()
    progress = tmp_path / HOST / "progress"
    data = bytearray(progress.read_bytes())
    data[-1] ^= 1
    progress.write_bytes(bytes(data))
    assert keys(hints(HintStore(tmp_path))) == [b"key%d" % i for i in range(4)]
    assert "corrupt progress" in caplog.text


def test_a_record_damaged_after_open_is_skipped_at_replay(tmp_path, caplog):
    store = filled(tmp_path, n=3)
    offsets = [h.id & ((1 << OFFSET_BITS) - 1) for h in hints(store)]
    (path,) = segments(tmp_path)
    with open(path, "r+b") as f:
        f.seek(offsets[1] + RECORD_HEADER_SIZE + 3)
        f.write(b"\x00\x00")
    assert keys(hints(store)) == [b"key0", b"key2"]
    assert store.statistics().corrupt == 1 and store.pending(HOST) == 2
    assert "CRC mismatch" in caplog.text


def test_expired_hints_are_skipped_counted_and_never_replayed_again(tmp_path):
    store = HintStore(tmp_path)
    gc_grace = {"ks.short": 100.0, "ks.long": 10_000.0, "ks.none": 0.0}
    for i, table in enumerate(["ks.short", "ks.long", "ks.short", "ks.none", "ks.dropped", "ks.long"]):
        store.add(HOST, wire(i, table), 1000.0 + i)
    got = hints(store, now=1101.5, max_age=gc_grace.get)
    # key0: 1000 + 100 <= 1101.5 expired; key2: 1102 > 1101.5 live; gc_grace 0 and dropped tables: never hinted
    assert keys(got) == [b"key1", b"key2", b"key5"]
    stats = store.statistics()
    assert stats.expired == 3 and stats.replayed == 3 and store.pending(HOST) == 3
    store.close()
    store = HintStore(tmp_path)  # the skips are durable
    assert keys(hints(store)) == [b"key1", b"key2", b"key5"]
    with pytest.raises(ValueError):
        list(store.replay(HOST, now=1.0))


def test_a_file_of_expired_hints_is_deleted(tmp_path):
    store = filled(tmp_path, n=3)
    assert hints(store, now=10_000.0, max_age=lambda table: 60.0) == []
    assert store.targets() == [] and segments(tmp_path) == []


def test_drop_forgets_a_target_and_its_folder(tmp_path):
    store = HintStore(tmp_path)
    store.add("a", wire(1), 1.0)
    store.add("b", wire(2), 1.0)
    replay_a = store.replay("a")
    store.drop("a")
    assert list(replay_a) == [] and store.targets() == ["b"] and store.pending("a") == 0
    assert not (tmp_path / "a").exists()
    store.drop("never-seen")
    store.add("a", wire(3), 3.0)  # a dropped host that comes back starts afresh
    store.close()
    assert HintStore(tmp_path).targets() == ["a", "b"]


def test_many_targets_each_replay_only_their_own(tmp_path):
    store = HintStore(tmp_path, fsync=False, segment_bytes=1024)
    names = [f"10.0.{i // 10}.{i % 10}:7000" for i in range(40)]
    store.add_many((name, wire(i * 100 + j), float(j)) for j in range(12) for i, name in enumerate(names))
    store.close()
    store = HintStore(tmp_path)
    assert store.targets() == sorted(names)
    for i, name in enumerate(names):
        assert keys(hints(store, name)) == [b"key%d" % (i * 100 + j) for j in range(12)]
    stats = store.statistics()
    assert stats.total_pending == 480 and stats.pending[names[7]] == 12
    assert stats.bytes_on_disk == sum(p.stat().st_size for p in tmp_path.rglob("*.hints"))


def test_targets_are_folder_safe(tmp_path):
    store = HintStore(tmp_path)
    store.add("../escape/x", wire(1), 1.0)
    assert [p.parent for p in tmp_path.rglob("*.hints")] == [tmp_path / "..%2Fescape%2Fx"]
    store.close()
    assert HintStore(tmp_path).targets() == ["../escape/x"]
    with pytest.raises(ValueError):
        store.add("..", wire(1), 1.0)


def test_statistics_counts_what_happened(tmp_path):
    store = filled(tmp_path, n=4)
    got = hints(store)
    store.acknowledge(HOST, [got[0].id])
    stats = store.statistics()
    assert (stats.stored, stats.replayed, stats.acknowledged, stats.segments) == (4, 4, 1, 1)
    assert stats.pending == {HOST: 3}
    assert stats.bytes_on_disk == segments(tmp_path)[0].stat().st_size
    with pytest.raises(AttributeError):
        stats.stored = 0  # type: ignore[misc]


def test_concurrent_adders_share_fsyncs_and_lose_nothing(tmp_path):
    store = HintStore(tmp_path, segment_bytes=4096)

    def writer(n):
        for i in range(50):
            store.add(f"t{n}", wire(i), float(i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    store = HintStore(tmp_path)
    for n in range(4):
        assert keys(hints(store, f"t{n}")) == [b"key%d" % i for i in range(50)]


def test_add_many_without_sync_then_sync(tmp_path):
    store = HintStore(tmp_path)
    store.add_many([(HOST, wire(1), 1.0), ("other", wire(2), 2.0)], sync=False)
    store.sync()
    assert store.targets() == sorted([HOST, "other"])
    store.close()
    with pytest.raises(RuntimeError):
        store.add(HOST, wire(3), 3.0)


def test_should_hint_follows_the_max_hint_window():
    assert should_hint(None, now=1000.0, max_window_s=10.0)  # up but timed out
    assert should_hint(995.0, now=1000.0, max_window_s=10.0)
    assert should_hint(990.0, now=1000.0, max_window_s=10.0)
    assert not should_hint(989.0, now=1000.0, max_window_s=10.0)


def test_first_record_sits_after_the_segment_header(tmp_path):
    store = filled(tmp_path, n=1)
    (hint,) = hints(store)
    assert isinstance(hint, Hint) and hint.id == (1 << OFFSET_BITS) | HEADER_SIZE


class HintStoreMachine(RuleBasedStateMachine):
    """The store against a model: per target, the list of (created_at, mutation) not yet acknowledged."""

    def __init__(self):
        super().__init__()
        self.dir = __import__("tempfile").mkdtemp(prefix="hints-")
        self.store = HintStore(self.dir, fsync=False, segment_bytes=300)
        self.model: dict[str, list[tuple[float, list]]] = {}
        self.counter = 0

    def teardown(self):
        self.store.close()
        shutil.rmtree(self.dir)

    @rule(host=st.sampled_from(["a", "b", "c"]), n=st.integers(1, 4))
    def add(self, host, n):
        items = []
        for _ in range(n):
            self.counter += 1
            items.append((host, wire(self.counter), float(self.counter)))
        self.store.add_many(items)
        self.model.setdefault(host, []).extend((c, m) for _, m, c in items)

    @rule(host=st.sampled_from(["a", "b", "c"]), picks=st.lists(st.integers(0, 30), max_size=8))
    def acknowledge(self, host, picks):
        got = hints(self.store, host)
        chosen = {p for p in picks if p < len(got)}
        self.store.acknowledge(host, [got[p].id for p in chosen])
        self.model[host] = [x for i, x in enumerate(self.model.get(host, [])) if i not in chosen]

    @rule(host=st.sampled_from(["a", "b", "c"]), cutoff=st.integers(0, 40))
    def expire(self, host, cutoff):
        hints(self.store, host, now=float(cutoff), max_age=lambda table: 0.5)
        self.model[host] = [(c, m) for c, m in self.model.get(host, []) if c + 0.5 > cutoff]

    @rule(host=st.sampled_from(["a", "b", "c"]))
    def drop(self, host):
        self.store.drop(host)
        self.model.pop(host, None)

    @rule(clean=st.booleans())
    def reopen(self, clean):
        if clean:
            self.store.close()
        self.store = HintStore(self.dir, fsync=False, segment_bytes=300)

    @invariant()
    def matches_model(self):
        for target in ["a", "b", "c"]:
            expected = self.model.get(target, [])
            got = hints(self.store, target)
            assert [(h.created_at, h.mutation_wire) for h in got] == expected
            assert self.store.pending(target) == len(expected)
        assert self.store.targets() == sorted(t for t, v in self.model.items() if v)


HintStoreMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
test_hint_store_matches_model = HintStoreMachine.TestCase
