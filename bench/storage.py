"""Storage engine benchmark: widecol's engine beside sqlite3 and LevelDB (plyvel), measured in the same run.

Prints a table; asserts nothing. Each (store, size) runs in a child process so that its peak memory is its own.
Workloads, with 16-byte keys and 100-byte values:
  seq write    keys in ascending order, batches of 1,000
  rand write   keys in random order (a keyed hash of the index), batches of 1,000
  single put   random keys one at a time (widecol: one apply per key; periodic commit log)
  settle       after a reopen, the seconds until the store's background work (compactions it resumes) is done:
               until the process and its children have used under 5% of a core for half a second
  read hit     random point reads of present keys, after the reopen and the settling (memtable empty, data
               flushed); best of 3
  read miss    random point reads of absent keys
  slice 100    100 consecutive rows from a random start (widecol: a clustering slice of a wide partition of
               1,000 rows; the peers: 100 consecutive keys of the same data)
  reopen       close, then open again (seconds)
  disk         bytes on disk after a major compaction, over raw key + value bytes
  peak rss     peak resident memory of the process, and its ratio to widecol's memtable limit
  worker rss   peak resident memory of widecol's worker process (compactions, flushes; read before each close)
  together     the highest sum of the process's and its worker's resident memory, sampled every 10 ms from
               the parent process

Usage: python bench/storage.py [--sizes 200000,1000000] [--stores widecol,sqlite3,leveldb]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VALUE = bytes(range(100))
BATCH = 1000
READS = 100_000
SLICES = 5_000
SINGLE = 50_000
MEMTABLE_MB = 64


def rand_key(i: int) -> bytes:
    return hashlib.blake2b(i.to_bytes(8, "big"), digest_size=16).digest()


def seq_key(i: int) -> bytes:
    return i.to_bytes(16, "big")


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


# -- stores ---------------------------------------------------------------------------------------------------------


class Widecol:
    name = "widecol"

    def __init__(self, path: Path) -> None:
        from widecol.storage.engine import EngineOptions, tune_gc

        tune_gc()
        self.path = path
        self.options = EngineOptions(commitlog_sync="periodic", memtable_bytes=MEMTABLE_MB * 1024 * 1024)
        self.open()
        self.table = self.engine.create_table("bench.kv")
        self.wide = self.engine.create_table("bench.wide")
        self.ts = 1

    def open(self) -> None:
        from widecol.storage.engine import Engine

        self.engine = Engine.open(self.path, self.options)
        self.table = self.engine.tables.get("bench.kv")
        self.wide = self.engine.tables.get("bench.wide")

    def write_batch(self, keys: list[bytes]) -> None:
        from widecol.storage.mutation import Mutation

        if self.engine.compactor is not None and self.engine.compactor.pid is not None:
            WORKERS.add(self.engine.compactor.pid)
        self.ts += 1
        ts = self.ts
        self.engine.apply_batch([Mutation("bench.kv", k).put(b"", {b"v": VALUE}, ts) for k in keys])

    def put(self, key: bytes) -> None:
        from widecol.storage.mutation import Mutation

        self.engine.apply(Mutation("bench.kv", key).put(b"", {b"v": VALUE}, 1))

    def get(self, key: bytes) -> bytes | None:
        rows = self.table.read(key)
        return rows[0][1][b"v"][1] if rows else None

    def write_wide(self, partition: bytes, clusterings: list[bytes]) -> None:
        from widecol.storage.mutation import Mutation

        m = Mutation("bench.wide", partition)
        for ck in clusterings:
            m.put(ck, {b"v": VALUE}, 1)
        self.engine.apply(m)

    def slice(self, partition: bytes, start: bytes, n: int) -> int:
        return len(self.wide.read(partition, start=start, limit=n))

    def reopen(self) -> None:
        self.close()
        self.open()

    def compact(self) -> None:
        self.engine.compact("bench.kv")

    def disk(self) -> int:
        return self.table.disk_size()

    def close(self) -> None:
        if self.engine.compactor is not None:
            note_worker_peak(self.engine.compactor.pid)
        self.engine.close()


class Sqlite:
    name = "sqlite3"

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.file = path / "db.sqlite"
        self.open()
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
        self.db.execute("CREATE TABLE IF NOT EXISTS wide (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")

    def open(self) -> None:
        self.db = sqlite3.connect(self.file, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")

    def write_batch(self, keys: list[bytes]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?)", [(k, VALUE) for k in keys])
        self.db.execute("COMMIT")

    def put(self, key: bytes) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, VALUE))

    def get(self, key: bytes) -> bytes | None:
        row = self.db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def write_wide(self, partition: bytes, clusterings: list[bytes]) -> None:
        self.db.execute("BEGIN")
        self.db.executemany("INSERT OR REPLACE INTO wide VALUES (?, ?)", [(partition + c, VALUE) for c in clusterings])
        self.db.execute("COMMIT")

    def slice(self, partition: bytes, start: bytes, n: int) -> int:
        rows = self.db.execute("SELECT k, v FROM wide WHERE k >= ? ORDER BY k LIMIT ?", (partition + start, n))
        return len(rows.fetchall())

    def reopen(self) -> None:
        self.db.close()
        self.open()

    def compact(self) -> None:
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self.db.execute("VACUUM")

    def disk(self) -> int:
        return dir_size(self.file.parent)

    def close(self) -> None:
        self.db.close()


class LevelDB:
    name = "leveldb"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.open()

    def open(self) -> None:
        import plyvel

        self.db = plyvel.DB(str(self.path), create_if_missing=True)
        self.kv = self.db.prefixed_db(b"k")
        self.wide = self.db.prefixed_db(b"w")

    def write_batch(self, keys: list[bytes]) -> None:
        with self.kv.write_batch() as wb:
            for k in keys:
                wb.put(k, VALUE)

    def put(self, key: bytes) -> None:
        self.kv.put(key, VALUE)

    def get(self, key: bytes) -> bytes | None:
        return self.kv.get(key)

    def write_wide(self, partition: bytes, clusterings: list[bytes]) -> None:
        with self.wide.write_batch() as wb:
            for c in clusterings:
                wb.put(partition + c, VALUE)

    def slice(self, partition: bytes, start: bytes, n: int) -> int:
        count = 0
        for _ in self.wide.iterator(start=partition + start):
            count += 1
            if count >= n:
                break
        return count

    def reopen(self) -> None:
        self.db.close()
        self.open()

    def compact(self) -> None:
        self.db.compact_range()

    def disk(self) -> int:
        return dir_size(self.path)

    def close(self) -> None:
        self.db.close()


STORES = {"widecol": Widecol, "sqlite3": Sqlite, "leveldb": LevelDB}


# -- one run in a child process -----------------------------------------------------------------------------------


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def best_of(repeats: int, fn) -> tuple[float, float]:
    """The fastest of REPEATS runs of FN: (wall seconds, CPU seconds). Reads repeat; writes cannot."""
    runs = [timed_cpu(fn) for _ in range(repeats)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def cpu_seconds() -> float:
    """CPU time of this process (every thread), of its finished children, and of widecol's live compaction
    worker process."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system + sum(map(_live_cpu, WORKERS))


WORKERS: set[int] = set()  # pids of live child processes whose CPU counts (widecol's worker)


def _live_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0  # gone: reaped, its time is in children_user/children_system
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


WORKER_PEAK = [0.0]  # the highest peak resident memory (MB) seen of widecol's worker


def _resident_mb(pid: int | str) -> float:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / (1 << 20)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0


def _children(pid: int) -> list[int]:
    """The live child processes of PID, whichever of its threads started them."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found.extend(map(int, f.read().split()))
    except (FileNotFoundError, ProcessLookupError):
        pass  # the child, or one of its threads, ended while we looked
    return found


def run_child(store_name: str, n: int) -> dict | None:
    """run_one(STORE_NAME, N) in a child process, whose resident memory plus its own children's (widecol's worker)
    this process samples every 10 ms meanwhile. The sampling is done from here, not by a thread in the child: such
    a thread contends for the child's GIL, which widecol's reads release at every pread, and made them about 20%
    slower (docs/performance.md)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, __file__, "--child", store_name, str(n)], stdout=out, stderr=err,
                                text=True)
        together = 0.0
        while proc.poll() is None:
            together = max(together, _resident_mb(proc.pid) + sum(map(_resident_mb, _children(proc.pid))))
            time.sleep(0.01)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            print(f"{store_name} n={n} failed:\n{err.read()[-2000:]}", file=sys.stderr)
            return None
        result = json.loads(out.read().strip().splitlines()[-1])
    result["together MB"] = max(together, result["peak rss MB"])
    return result


def note_worker_peak(pid: int | None) -> None:
    """Read a live worker's peak resident memory (VmHWM: since its exec, so not the fork's copy of ours)."""
    if pid is None:
        return
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    WORKER_PEAK[0] = max(WORKER_PEAK[0], int(line.split()[1]) / 1024)
    except (FileNotFoundError, ProcessLookupError):
        pass


def settle(timeout: float = 120.0) -> float:
    """Wait until this process and its live children (widecol's worker) have used under 5% of a core for two
    quarter-seconds in a row, or TIMEOUT; return the seconds waited. Background compactions after a reopen would
    otherwise share the machine's cores with the reads timed next (on 2 cores, widecol's point reads at 1,000,000
    rows took 14 us a read during one against 8.5 after it)."""

    def used() -> float:
        t = os.times()
        return t.user + t.system + sum(map(_live_cpu, _children(os.getpid())))

    start = time.perf_counter()
    quiet = 0
    before = used()
    while quiet < 2 and time.perf_counter() - start < timeout:
        time.sleep(0.25)
        now = used()
        quiet = quiet + 1 if now - before < 0.0125 else 0
        before = now
    return time.perf_counter() - start


def timed_cpu(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process and its children)."""
    t, c = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - t, cpu_seconds() - c


def run_one(store_name: str, n: int) -> dict:
    rng = random.Random(n)
    out: dict = {"store": store_name, "n": n}
    root = Path(tempfile.mkdtemp(prefix=f"bench-{store_name}-"))
    try:
        seq = STORES[store_name](root / "seq")
        seconds = timed(lambda: [seq.write_batch([seq_key(j) for j in range(i, min(n, i + BATCH))]) for i in range(0, n, BATCH)])
        out["seq write"] = n / seconds
        seq.close()
        shutil.rmtree(root / "seq")

        store = STORES[store_name](root / "main")
        seconds, cpu = timed_cpu(
            lambda: [store.write_batch([rand_key(j) for j in range(i, min(n, i + BATCH))]) for i in range(0, n, BATCH)]
        )
        out["rand write"] = n / seconds
        out["rand write/cpu"] = n / cpu
        singles = min(SINGLE, n)
        seconds = timed(lambda: [store.put(rand_key(n + 10_000_000 + j)) for j in range(singles)])
        out["single put"] = singles / seconds
        out["reopen s"] = timed(store.reopen)
        out["settle s"] = settle()
        reads = min(READS, n)
        hits = [rand_key(rng.randrange(n)) for _ in range(reads)]
        seconds, cpu = best_of(3, lambda: [store.get(k) for k in hits])
        out["read hit/cpu"] = reads / cpu
        assert all(store.get(k) == VALUE for k in hits[:100]), "a written key is missing"
        out["read hit"] = reads / seconds
        misses = [rand_key(n + 20_000_000 + j) for j in range(reads)]
        seconds, _ = best_of(3, lambda: [store.get(k) for k in misses])
        assert store.get(misses[0]) is None
        out["read miss"] = reads / seconds
        hits.clear()  # the benchmark's own 200,000 keys (11 MB), not the store's memory
        misses.clear()
        wide_rows = 1000
        partitions = max(1, n // wide_rows // 4)
        for p in range(partitions):
            store.write_wide(seq_key(p)[8:], [rand_key(p * wide_rows + c) for c in range(wide_rows)])
        store.reopen()
        starts = [(seq_key(rng.randrange(partitions))[8:], rand_key(rng.randrange(n))) for _ in range(SLICES)]
        rows = 0

        def slices() -> None:
            nonlocal rows
            for p, s in starts:
                rows += store.slice(p, s, 100)

        seconds = timed(slices)
        out["slice 100"] = SLICES / seconds
        out["slice rows"] = rows / SLICES
        store.compact()
        out["disk ratio"] = store.disk() / (n * (16 + len(VALUE)) + singles * (16 + len(VALUE)))
        store.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    out["peak rss MB"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["worker rss MB"] = WORKER_PEAK[0]
    return out


# -- the table ----------------------------------------------------------------------------------------------------

COLUMNS = ["seq write", "rand write", "rand write/cpu", "single put", "read hit", "read hit/cpu", "read miss",
           "slice 100", "reopen s", "settle s", "disk ratio", "peak rss MB", "worker rss MB", "together MB"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="200000,1000000")
    parser.add_argument("--stores", default="widecol,sqlite3,leveldb")
    parser.add_argument("--child", nargs=2, metavar=("STORE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child[0], int(args.child[1]))))
        return
    results = []
    for n in [int(s) for s in args.sizes.split(",")]:
        for store in args.stores.split(","):
            result = run_child(store, n)
            if result is None:
                continue
            results.append(result)
            print(f"done: {store} n={n}", file=sys.stderr, flush=True)
    header = f"{'store':<9}{'n':>9} " + " ".join(f"{c:>14}" for c in COLUMNS)
    print("ops/s unless named; /cpu: ops per CPU-second of the process (all threads, and any children),")
    print("steadier on a busy machine than wall-clock rates")
    print("disk ratio = bytes on disk / raw key+value bytes after a major compaction")
    print(header)
    for r in results:
        cells = []
        for c in COLUMNS:
            v = r.get(c)
            cells.append(f"{v:>14.2f}" if isinstance(v, float) and v < 100 else f"{v:>14,.0f}")
        print(f"{r['store']:<9}{r['n']:>9} " + " ".join(cells))
    print()
    print(f"ratios (widecol / peer) and targets; memtable limit {MEMTABLE_MB} MB")
    for n in sorted({r["n"] for r in results}):
        by = {r["store"]: r for r in results if r["n"] == n}
        w = by.get("widecol")
        if not w:
            continue
        for peer, metric, target in (("sqlite3", "rand write", "5"), ("leveldb", "rand write", "0.2"),
                                     ("leveldb", "read hit", "0.5")):
            if peer in by:
                p = by[peer]
                print(f"  n={n}: {metric} / {peer} = {w[metric] / p[metric]:.2f} wall, "
                      f"{w[metric + '/cpu'] / p[metric + '/cpu']:.2f} per CPU-second (target >= {target})")
        print(f"  n={n}: reopen {w['reopen s']:.2f} s (target < 2 s at 1,000,000)")
        print(f"  n={n}: peak rss / memtable limit = {w['peak rss MB'] / MEMTABLE_MB:.2f}; with the "
              f"worker's resident memory at the same moment {w['together MB'] / MEMTABLE_MB:.2f}; the two peaks "
              f"added {(w['peak rss MB'] + w['worker rss MB']) / MEMTABLE_MB:.2f} (target < 4)")
        print(f"  n={n}: disk ratio {w['disk ratio']:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
