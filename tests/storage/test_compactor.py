"""The compaction worker process: the same result as an in-process compaction; stopped by close; an orphan stops."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.mutation import Mutation

T = "ks.t"


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
        while engine.compactor.pid is None:
            time.sleep(0.01)
        print(engine.compactor.pid, flush=True)
        merge.join()
    """)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    worker = int(child.stdout.readline())
    child.kill()
    child.wait()
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker)
    # Orphaned, the worker stopped before finishing the output (generation 5, after four flushes).
    assert not list((tmp_path / "tables").glob("*/5-TOC.txt"))


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
