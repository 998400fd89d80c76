"""The worker process: the same SSTables as an in-process compaction or flush; stopped by close; an orphan stops;
a flush goes on in the engine when the worker is busy or dies; writes go on while a flush is under way."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from widecol.storage.compactor import Compactor, Interrupted
from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.mutation import Mutation
from widecol.storage.sstable.format import COMPONENTS, component_name

T = "ks.t"
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))  # the repository, for child processes


def fill(engine, flushes, per_flush, wide=False):
    for f in range(flushes):
        for i in range(per_flush):
            m = Mutation(T, b"k%d" % (i * 7 + f * 3))  # keys shared between inputs, merged by the one rule
            m.put(b"", {b"v": b"f%d-%d" % (f, i)}, f + 1)
            if wide and i % 50 == 0:
                for c in range(60):
                    m.put(b"c%03d" % c, {b"v": b"w" * 90}, f + 1)
            engine.apply(m)
        engine.flush(T)


def contents(engine):
    return list(engine.table(T).scan())


def test_the_worker_writes_what_an_in_process_compaction_writes(tmp_path):
    results = {}
    for process in (True, False):
        engine = Engine.open(tmp_path / str(process), EngineOptions(background_compaction=False,
                                                                    compaction_process=process))
        engine.create_table(T)
        fill(engine, 4, 600, wide=True)
        engine.compact(T)
        table = engine.table(T)
        assert len(table.sstables) == 1
        (sstable,) = table.sstables.values()
        results[process] = (contents(engine), {k: v for k, v in sstable.stats.items()})
        assert (engine.compactor is not None and engine.compactor.pid is not None) == process
        engine.close()
    assert results[True] == results[False]


def test_a_dead_worker_is_replaced_by_a_new_one(tmp_path):
    engine = Engine.open(tmp_path, EngineOptions(background_compaction=False))
    engine.create_table(T)
    fill(engine, 2, 100)
    engine.compact(T)  # starts the worker
    pid = engine.compactor.pid
    os.kill(pid, signal.SIGKILL)
    fill(engine, 3, 2000)
    before = contents(engine)
    engine.compact(T)  # the dead worker is noticed and replaced
    assert engine.compactor.pid != pid
    assert contents(engine) == before
    assert len(engine.table(T).sstables) == 1
    engine.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_orphaned_worker_stops_without_finishing_its_output(tmp_path):
    # A node killed mid-compaction must not leave a worker that goes on writing into its data folder.
    script = textwrap.dedent(f"""
        import threading
        import time
        from widecol.storage.engine import Engine, EngineOptions
        from widecol.storage.mutation import Mutation
        engine = Engine.open({str(tmp_path)!r}, EngineOptions(background_compaction=False))
        engine.create_table("ks.t")
        for f in range(4):
            for i in range(30000):
                engine.apply(Mutation("ks.t", b"k%d-%d" % (f, i)).put(b"", {{b"v": b"x" * 100}}, 1))
            engine.flush("ks.t")
        merge = threading.Thread(target=engine.compact, args=("ks.t",))
        merge.start()
        while not engine.table("ks.t").compacting:
            time.sleep(0.01)
        time.sleep(0.2)  # into the merge
        print(engine.compactor.pid, flush=True)
        merge.join()
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=ROOT)
    worker = int(child.stdout.readline())
    child.kill()
    child.wait()
    _wait_until_gone(worker)
    # Orphaned, the worker stopped before finishing the output (generation 5, after four flushes).
    assert not list((tmp_path / "tables").glob("*/5-TOC.txt"))


def _wait_until_gone(pid):
    deadline = time.monotonic() + 30
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_close_during_a_worker_merge_interrupts_it_and_keeps_the_inputs(tmp_path):
    engine = Engine.open(tmp_path, EngineOptions(memtable_bytes=1 << 20))
    engine.create_table(T)
    fill(engine, 8, 3000)
    engine.close()  # compactions in flight (in the worker) are interrupted, never half-installed
    engine = Engine.open(tmp_path, EngineOptions(background_compaction=False))
    expected = {b"k%d" % (i * 7 + f * 3) for f in range(8) for i in range(3000)}
    assert {k for k, _ in engine.table(T).scan()} == expected
    engine.table(T).check()
    engine.close()


def put_batch(engine, start, count, value=b"x" * 100):
    engine.apply_batch([Mutation(T, b"p%07d" % i).put(b"", {b"v": value}, 1) for i in range(start, start + count)])


def sstable_files(engine):
    table = engine.table(T)
    return {c: (table.directory / component_name(g, c)).read_bytes()
            for g in table.manifest.generations for c in COMPONENTS}


def test_the_worker_flushes_what_an_in_process_flush_writes(tmp_path):
    files = {}
    for process in (True, False):
        engine = Engine.open(tmp_path / str(process), EngineOptions(background_compaction=False,
                                                                    compaction_process=process))
        engine.create_table(T)
        for start in range(0, 30_000, 1000):
            put_batch(engine, start, 1000)
        engine.flush(T)  # all packed: the worker writes it (if there is one)
        assert (engine.compactor is not None and engine.compactor.pid is not None) == process
        files[process] = sstable_files(engine)
        assert len(engine.table(T).read(b"p0012345")) == 1
        engine.close()
    assert files[True] == files[False]


def test_a_memtable_with_merged_partitions_is_flushed_in_the_engine(tmp_path):
    engine = Engine.open(tmp_path, EngineOptions(background_compaction=False))
    engine.create_table(T)
    put_batch(engine, 0, 100)
    engine.apply(Mutation(T, b"p0000007").delete_row(b"", 5, int(time.time())))
    engine.flush(T)
    assert engine.compactor.pid is None  # never started
    assert engine.table(T).read(b"p0000007") == []
    assert len(engine.table(T).read(b"p0000008")) == 1
    engine.close()


def test_a_busy_worker_leaves_the_flush_to_the_engine(tmp_path):
    engine = Engine.open(tmp_path, EngineOptions(background_compaction=False))
    engine.create_table(T)
    put_batch(engine, 0, 1000)
    with engine.compactor._lock:  # as while the worker merges
        engine.flush(T)
    assert engine.compactor.pid is None
    assert len(engine.table(T).read(b"p0000999")) == 1
    engine.table(T).check()
    engine.close()


def start_stuck_flush(engine):
    """Start the worker and stop it (SIGSTOP), then flush more than a pipe holds in a thread of its own: the flush
    stays stuck mid-way until the worker goes on or dies. Returns (the worker's pid, the flushing thread)."""
    put_batch(engine, 0, 1000)
    engine.flush(T)  # starts the worker
    worker = engine.compactor.pid
    os.kill(worker, signal.SIGSTOP)
    for start in range(1000, 50_000, 1000):
        put_batch(engine, start, 1000)
    flush = threading.Thread(target=engine.flush, args=(T,))
    flush.start()
    time.sleep(0.3)
    assert flush.is_alive()
    return worker, flush


def test_a_worker_killed_during_a_flush_leaves_it_to_the_engine(tmp_path):
    engine = Engine.open(tmp_path, EngineOptions(background_compaction=False))
    engine.create_table(T)
    worker, flush = start_stuck_flush(engine)
    os.kill(worker, signal.SIGKILL)
    flush.join(30)
    assert not flush.is_alive()
    table = engine.table(T)
    table.check()
    assert len(table.manifest.generations) == 2
    named = {component_name(g, c) for g in table.manifest.generations for c in COMPONENTS}
    assert {p.name for p in table.directory.iterdir()} - named == {"MANIFEST"}  # nothing left of the killed try
    assert {k for k, _ in table.scan()} == {b"p%07d" % i for i in range(50_000)}
    engine.close()


def test_writes_go_on_while_a_flush_is_under_way(tmp_path):
    # The issue: "flushed when over memtable_mb, while writes go on into a fresh memtable". Memory stays bounded:
    # a second memtable that fills up while the first still flushes makes writers wait.
    limit = 1 << 20
    engine = Engine.open(tmp_path, EngineOptions(background_compaction=False, memtable_bytes=limit))
    engine.create_table(T)
    put_batch(engine, 0, 100)
    engine.flush(T)  # starts the worker
    worker = engine.compactor.pid
    os.kill(worker, signal.SIGSTOP)  # the next flush cannot finish
    done = []

    def write():
        for start in range(100, 20_000, 100):
            put_batch(engine, start, 100)
            done.append(start)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        deadline = time.monotonic() + 60
        while not (engine._frozen_bytes >= limit and engine._active_bytes() > limit) and writer.is_alive():
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert writer.is_alive()  # waiting, with a second memtable's worth written since the first was frozen
        written = len(done)
        time.sleep(0.3)
        assert len(done) == written
        table = engine.table(T)
        assert len(table.flushing) == 1
        assert engine._active_bytes() > limit >= engine._active_bytes() - 100 * 700  # within one batch
    finally:
        os.kill(worker, signal.SIGCONT)
    writer.join(60)
    assert not writer.is_alive()
    engine.flush(T)
    assert {k for k, _ in engine.table(T).scan()} == {b"p%07d" % i for i in range(20_000)}
    engine.close()


def test_a_table_dropped_while_it_flushes_leaves_the_engine_working(tmp_path):
    engine = Engine.open(tmp_path, EngineOptions(background_compaction=False))
    engine.create_table(T)
    other = engine.create_table("ks.other")
    worker, flush = start_stuck_flush(engine)
    engine.drop_table(T)  # which removes the folder under it
    os.kill(worker, signal.SIGCONT)
    flush.join(30)
    assert not flush.is_alive()
    engine.apply(Mutation("ks.other", b"k").put(b"", {b"v": b"1"}, 1))  # the engine goes on
    engine.flush("ks.other")
    assert len(other.read(b"k")) == 1
    engine.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_an_orphaned_worker_stops_without_finishing_a_flush(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        from widecol.storage.engine import Engine, EngineOptions
        from widecol.storage.mutation import Mutation
        engine = Engine.open({str(tmp_path)!r}, EngineOptions(background_compaction=False))
        engine.create_table("ks.t")
        def put(start, count):
            engine.apply_batch([Mutation("ks.t", b"k%d" % i).put(b"", {{b"v": b"x" * 100}}, 1)
                                for i in range(start, start + count)])
        put(0, 1000)
        engine.flush("ks.t")  # starts the worker
        print(engine.compactor.pid, flush=True)
        sys.stdin.readline()
        for start in range(1000, 50000, 1000):
            put(start, 1000)
        print("flushing", flush=True)
        engine.flush("ks.t")
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             text=True, cwd=ROOT)
    worker = int(child.stdout.readline())
    os.kill(worker, signal.SIGSTOP)  # so the flush of generation 2 is stuck mid-way
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline() == "flushing\n"
    time.sleep(0.3)
    child.kill()
    child.wait()
    os.kill(worker, signal.SIGCONT)
    _wait_until_gone(worker)
    assert list((tmp_path / "tables").glob("*/1-TOC.txt"))
    assert not list((tmp_path / "tables").glob("*/2-*"))  # nothing of the flush, not even a temporary file
    engine = Engine.open(tmp_path)  # and the rows are in the commit log
    assert len(list(engine.table("ks.t").scan())) == 50_000
    engine.close()


class _ClosedWhileStarting(Compactor):
    def _start(self):
        proc = super()._start()
        self.close()  # as close() on another thread at this moment: it finds no process to stop yet
        return proc


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_close_while_the_worker_starts_stops_it(tmp_path):
    # Seen as a close that waited 4 s for a merge to finish: the engine closed just as its compaction thread
    # started the worker.
    compactor = _ClosedWhileStarting()
    with pytest.raises(Interrupted):
        compactor.run(tmp_path, [], 1, 0)
    _wait_until_gone(compactor.pid)
