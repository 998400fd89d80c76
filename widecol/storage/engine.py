"""Engine: a node's storage: one commit log, many tables, and the background flush and compaction threads.

How this works.
- open(): load every table folder (tables/<name>/MANIFEST), replay the commit log into their memtables (skipping
  records at or before each table's replay position), flush what was replayed, delete the old segments, start a
  fresh segment whose id is above every id ever used, and start the background threads.
- apply_batch(): validate, log the mutations as one record (one os.write), then merge them into the memtables, all
  under the engine's lock so that a memtable switch splits the log at an exact position. In batch mode it then
  waits for the fsync covering the record (group commit with every concurrent writer). A batch of INSERTs built
  by Mutation.put (each with its `plain` summary, all to one table) takes a fast path, prepare_plain: no Python
  work per cell, and its partitions enter the memtable in packed form in one step (Memtable.apply_packed).
- When the memtables together pass `memtable_bytes`, the largest is frozen and queued for the flush thread, and
  writes go on into a fresh memtable. Only when that one is due too while frozen memtables still hold that much do
  writers wait, which bounds memory to about twice the limit. A memtable of packed partitions only is written by
  the worker process (compactor.py) when it is free, so the flush takes little of the writers' interpreter lock.
- After each flush, and once at open, the compaction thread looks for size-tiered candidates.

Thread-safety: every public method may be called from any thread. Blocking calls: apply in batch mode (fsync),
flush, compact, truncate, drop_table, close. Time is an input: `clock` gives local seconds, for TTLs and gc_grace.
"""

from __future__ import annotations

import bisect
import gc
import logging
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack

from widecol.errors import InvalidRequest
from widecol.storage.commitlog import CommitLog, Position
from widecol.storage.compaction import compact, size_tiered_candidates
from widecol.storage.compactor import Compactor, WorkerFailed
from widecol.storage.compactor import Interrupted as WorkerInterrupted
from widecol.storage.manifest import NAME as MANIFEST_NAME
from widecol.storage.manifest import Manifest
from widecol.storage.memtable import Memtable
from widecol.storage.mutation import Mutation
from widecol.storage.prepare import array_header, prepare, prepare_plain, validate
from widecol.storage.sstable.cache import BlockCache
from widecol.storage.sstable.reader import SSTableReader
from widecol.storage.sstable.writer import SSTableWriter, remove_sstable_files
from widecol.storage.table import DEFAULT_OPTIONS, Table
from widecol.storage.token import partition_sort_key, token_of_sort_key

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_local = threading.local()  # .pack: this thread's msgpack packer (a Packer must not be shared by threads)
_PLAIN_BATCH = 8  # prepare_plain's fixed cost (a dozen passes) pays from about this many mutations


@dataclass(frozen=True)
class EngineOptions:
    commitlog_sync: str = "periodic"
    commitlog_sync_period_ms: int = 1000
    commitlog_segment_bytes: int = 32 * 1024 * 1024
    memtable_bytes: int = 64 * 1024 * 1024
    compaction_min_threshold: int = 4
    background_compaction: bool = True
    compaction_process: bool = True  # merge clean SSTables and flush packed memtables in a worker (compactor.py)
    block_cache_bytes: int = 16 * 1024 * 1024

    @classmethod
    def from_config(cls, storage: Any) -> EngineOptions:
        return cls(
            commitlog_sync=storage.commitlog_sync,
            commitlog_sync_period_ms=storage.commitlog_sync_period_ms,
            commitlog_segment_bytes=storage.commitlog_segment_mb * 1024 * 1024,
            memtable_bytes=storage.memtable_mb * 1024 * 1024,
            compaction_min_threshold=storage.compaction_min_threshold,
            block_cache_bytes=storage.block_cache_mb * 1024 * 1024,
            compaction_process=storage.compaction_process,
        )


def tune_gc() -> None:
    """Make Python's cyclic garbage collector run less often. Call once per process that hosts an engine.

    A memtable is hundreds of thousands of small containers that never form cycles; with the default thresholds the
    collector walks them again every 700 allocations, which more than halves write throughput (docs/performance.md).
    """
    gc.set_threshold(50_000, 20, 100)


def _range_order(r: tuple) -> tuple:
    return (r[0] is not None, r[0] or b"")


def _add_memtable(writer: SSTableWriter, items: list, wire_stats: tuple) -> None:
    """Append a memtable's ITEMS (Memtable.entries(): partitions in either form, in order) to WRITER; WIRE_STATS
    are the packed partitions' summed statistics."""
    run: list = []  # consecutive packed partitions, written in one add_fragments call
    for sk, p in items:
        if isinstance(p, tuple):
            run.append((sk, p))
            continue
        rows = p.rows
        if p.order is not None:
            row_list = [(ck, rows[ck][0], rows[ck][1]) for ck in p.order]
        else:
            row_list = [(ck, row[0], row[1]) for ck, row in sorted(rows.items())]
        ranges = sorted(p.ranges, key=_range_order) if p.ranges else p.ranges
        if run:
            writer.add_fragments(run, None)
            run = []
        writer.add_partition(sk, p.key, p.deletion, ranges, row_list)
    writer.add_fragments(run, wire_stats)


class Engine:
    def __init__(self, directory: Path, options: EngineOptions, clock: Callable[[], float]) -> None:
        self.directory = directory
        self.options = options
        self.clock = clock
        self.lock = threading.RLock()
        self.flushed = threading.Condition(self.lock)
        self.tables: dict[str, Table] = {}
        self.commitlog = CommitLog(
            directory / "commitlog", options.commitlog_sync, options.commitlog_sync_period_ms,
            options.commitlog_segment_bytes,
        )
        self.block_cache = BlockCache(options.block_cache_bytes)
        self._frozen_bytes = 0
        self._flush_queue: queue.Queue = queue.Queue()
        self._compaction_wanted = threading.Event()
        self.closing = False
        self._threads: list[threading.Thread] = []
        self.background_error: BaseException | None = None
        self.compactor = Compactor() if options.compaction_process else None

    # -- opening and closing -----------------------------------------------------------------------------------------

    @classmethod
    def open(
        cls, directory: str | Path, options: EngineOptions | None = None, clock: Callable[[], float] = time.time
    ) -> Engine:
        """Open (creating if needed) the storage in DIRECTORY. Every write acknowledged before a crash is readable
        when this returns."""
        directory = Path(directory)
        (directory / "tables").mkdir(parents=True, exist_ok=True)
        engine = cls(directory, options or EngineOptions(), clock)
        for folder in sorted((directory / "tables").iterdir()):
            if (folder / MANIFEST_NAME).exists():
                table = Table.open(engine, "", folder)
                table.table_id = table.manifest.options["table_id"]
                engine.tables[table.table_id] = table
            elif folder.is_dir():
                shutil.rmtree(folder)  # a table whose creation did not complete
        engine._replay()
        highest = max([p.manifest.replay_position[0] for p in engine.tables.values()] + engine.commitlog.segment_ids() + [0])
        engine.commitlog.start(highest + 1)
        engine._start_threads()
        engine._compaction_wanted.set()  # catch up with what an earlier run left uncompacted
        return engine

    def _replay(self) -> None:
        last: Position = (0, 0)
        replayed = 0
        # A record at or before every table's replay position is in SSTables already: skipped before its mutations
        # are decoded and validated, most of a replay's cost.
        floor = min((tuple(t.manifest.replay_position) for t in self.tables.values()), default=None)
        for position, payload in self.commitlog.replay():
            last = position
            if floor is None or tuple(position) <= floor:
                continue
            if not isinstance(payload, list):
                log.warning("commit log record at %s is not a list of mutations; skipped", position)
                continue
            for wire in payload:
                try:
                    m = Mutation.from_wire(wire)
                    validate(m)
                except (ValueError, TypeError, InvalidRequest) as e:
                    log.warning("commit log record at %s holds a malformed mutation (%s); skipped", position, e)
                    continue
                table = self.tables.get(m.table_id)
                if table is None or position <= table.manifest.replay_position:
                    continue
                table.memtable.apply(partition_sort_key(m.key), m.key, m.deletion, m.ranges, m.rows)
                replayed += 1
                if table.memtable.size > self.options.memtable_bytes:
                    self._flush_now(table, position)
        for table in self.tables.values():
            self._flush_now(table, last)
        if replayed:
            log.info("commit log replay: %d mutations up to %s", replayed, last)
        self.commitlog.forget_replayed()

    def _flush_now(self, table: Table, position: Position) -> None:
        """Replay-time flush: write the memtable as an SSTable in this thread."""
        if len(table.memtable):
            memtable, table.memtable = table.memtable, Memtable()
            self._write_flush(table, memtable, position, table.epoch)

    def _start_threads(self) -> None:
        targets = [("flush", self._flush_loop)]
        if self.options.background_compaction:
            targets.append(("compaction", self._compaction_loop))
        for name, target in targets:
            thread = threading.Thread(target=target, name=f"widecol-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        """Flush every memtable, stop the background threads and sync the commit log. Idempotent."""
        if self.closing:
            return
        self.flush()
        with self.lock:
            self.closing = True
            self.flushed.notify_all()
        self._flush_queue.put(None)
        self._compaction_wanted.set()
        if self.compactor is not None:
            self.compactor.close()  # interrupts a merge in flight, so the compaction thread can stop
        for thread in self._threads:
            thread.join()
        self.commitlog.close()
        for table in self.tables.values():
            for sstable in table.sstables.values():
                sstable.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def now(self) -> int:
        return int(self.clock())

    # -- tables ------------------------------------------------------------------------------------------------------

    def create_table(self, table_id: str, **options: Any) -> Table:
        """Create table TABLE_ID (options: gc_grace_seconds) durably, or return it if it exists."""
        with self.lock:
            if table_id in self.tables:
                return self.tables[table_id]
            folder = self.directory / "tables" / _UNSAFE.sub("_", table_id)
            n = 1
            while folder.exists():
                n += 1
                folder = self.directory / "tables" / f"{_UNSAFE.sub('_', table_id)}-{n}"
            folder.mkdir()
            manifest = Manifest(options={**DEFAULT_OPTIONS, **options, "table_id": table_id})
            manifest.save(folder)
            table = Table(self, table_id, folder, manifest)
            self.tables[table_id] = table
            return table

    def table(self, table_id: str) -> Table:
        try:
            return self.tables[table_id]
        except KeyError:
            raise InvalidRequest(f"unknown table {table_id}") from None

    def set_table_options(self, table_id: str, **options: Any) -> None:
        with self.lock:
            table = self.table(table_id)
            table.manifest.options.update(options)
            table.manifest.save(table.directory)

    def truncate(self, table_id: str) -> None:
        """Remove every row of the table durably: its memtables are discarded, its SSTables deleted."""
        table = self.table(table_id)
        with self.lock:
            table.epoch += 1
            position = self.commitlog.position()
            for memtable, _ in table.flushing:
                self._frozen_bytes -= memtable.size
            table.flushing = []
            table.memtable = Memtable()
            generations = list(table.manifest.generations)
            table.manifest.generations = []
            table.manifest.replay_position = position
            table.manifest.save(table.directory)
            for sstable in table.sstables.values():
                sstable.retire()
            table.sstables.clear()
            table.refresh_view()
            self.flushed.notify_all()
        table.remove_files(generations)
        self.commitlog.mark_clean(table_id, position)

    def drop_table(self, table_id: str) -> None:
        """Remove the table and its files. Its records still in the commit log are ignored from now on."""
        self.truncate(table_id)
        with self.lock:
            table = self.tables.pop(table_id)
            table.dropped = True
        shutil.rmtree(table.directory, ignore_errors=True)

    # -- writes ------------------------------------------------------------------------------------------------------

    def apply(self, mutation: Mutation, wait: bool = True) -> Position:
        return self.apply_batch((mutation,), wait)

    def apply_batch(self, mutations: Sequence[Mutation], wait: bool = True) -> Position:
        """Apply MUTATIONS atomically with respect to the commit log (one record).

        When this returns the mutations are readable and have reached the operating system; in batch mode (and
        WAIT true) they are also fsynced. With WAIT false, call wait_durable(position) for that.
        """
        pack = getattr(_local, "pack", None)
        if pack is None:
            pack = _local.pack = msgpack.Packer().pack
        plain = prepare_plain(mutations, pack) if len(mutations) >= _PLAIN_BATCH else None
        if plain is None:
            return self._apply_general(mutations, wait, pack)
        table_id, payload, sks, parts, size, stats = plain
        table = self.tables.get(table_id)
        if table is None:
            raise InvalidRequest(f"unknown table {table_id}")
        with self.lock:
            self._wait_for_flushes()
            position = self.commitlog.append(payload, (table_id,))
            memtable = table.memtable
            if not memtable.apply_packed(sks, parts, size, stats):  # a key repeated or already written
                for sk, m in zip(sks, mutations, strict=True):
                    memtable.apply(sk, m.key, None, [], m.rows)
            self._maybe_switch()
        if wait and self.commitlog.sync_mode == "batch":
            self.commitlog.wait_synced(position)
        return position

    def _apply_general(self, mutations: Sequence[Mutation], wait: bool, pack: Callable[[Any], bytes]) -> Position:
        tables = self.tables
        prepared = []
        pieces = [array_header(len(mutations))]
        for m in mutations:
            table = tables.get(m.table_id)
            if table is None:
                raise InvalidRequest(f"unknown table {m.table_id}")
            packed, size, fragment, stats = prepare(m, pack)
            prepared.append((table, partition_sort_key(m.key), m, size, fragment, stats))
            pieces.append(packed)
        payload = b"".join(pieces)  # msgpack of [m.to_wire() for m in mutations]
        with self.lock:
            self._wait_for_flushes()
            position = self.commitlog.append(payload, {p[0].table_id for p in prepared})
            for table, sk, m, size, fragment, stats in prepared:
                table.memtable.apply(sk, m.key, m.deletion, m.ranges, m.rows, size, fragment, stats)
            self._maybe_switch()
        if wait and self.commitlog.sync_mode == "batch":
            self.commitlog.wait_synced(position)
        return position

    def _wait_for_flushes(self) -> None:
        """Block while the memtables are due to be frozen but frozen memtables still hold memtable_bytes (lock
        held); raise a background thread's failure. So writes go on into fresh memtables while others flush, and
        the memtables together stay within about twice memtable_bytes."""
        limit = self.options.memtable_bytes
        while self._frozen_bytes >= limit and self._active_bytes() > limit and not self.closing:
            self.flushed.wait()
        self._check_background()

    def _active_bytes(self) -> int:
        return sum(table.memtable.size for table in self.tables.values())

    def _maybe_switch(self) -> None:
        """Freeze the largest memtable if the memtables together pass memtable_bytes, unless frozen memtables
        still hold that much (the next write waits for them instead: _wait_for_flushes). Lock held."""
        if self._frozen_bytes >= self.options.memtable_bytes or self._active_bytes() <= self.options.memtable_bytes:
            return
        largest = max(self.tables.values(), key=lambda table: table.memtable.size)
        self._switch(largest)

    def wait_durable(self, position: Position) -> None:
        """Block until everything up to POSITION is fsynced (batch mode semantics, in either mode)."""
        self.commitlog.wait_synced(position)

    # -- flushing ----------------------------------------------------------------------------------------------------

    def _switch(self, table: Table) -> None:
        """Freeze TABLE's memtable at the current log position and queue it for the flush thread (lock held)."""
        if not len(table.memtable):
            return
        position = self.commitlog.position()
        memtable = table.memtable
        table.memtable = Memtable()
        table.flushing.append((memtable, position))
        table.refresh_view()
        self._frozen_bytes += memtable.size
        self._flush_queue.put((table, memtable, position, table.epoch))

    def flush(self, table_id: str | None = None) -> None:
        """Flush the table's memtable (every table's if None) and wait until the SSTables are installed."""
        with self.lock:
            tables = [self.table(table_id)] if table_id is not None else list(self.tables.values())
            for table in tables:
                self._switch(table)
            while any(t.flushing for t in tables) and not self.closing:
                self._check_background()
                self.flushed.wait(1.0)
            self._check_background()

    def _flush_loop(self) -> None:
        while True:
            item = self._flush_queue.get()
            if item is None:
                return
            table, memtable, position, epoch = item
            try:
                self._write_flush(table, memtable, position, epoch)
            except BaseException as e:  # noqa: BLE001 - surfaced to writers through _check_background
                if isinstance(e, Exception) and (table.dropped or table.epoch != epoch):
                    # A drop removes the folder under the writer; the memtable was discarded anyway, and nothing of
                    # it is in the manifest.
                    log.info("flush of table %s abandoned: dropped or truncated meanwhile (%s)", table.table_id, e)
                else:
                    log.exception("flush of table %s failed", table.table_id)
                    with self.lock:
                        self.background_error = e
                        self.flushed.notify_all()
                    return
            # The flushed memtable is garbage now, not once the next one is queued: held while this thread waits,
            # it doubled the memtables' memory while the next one filled.
            del item, memtable
            self._compaction_wanted.set()

    def _write_flush(self, table: Table, memtable: Memtable, position: Position, epoch: int) -> None:
        generation = self._write_sstable(table, memtable)
        reader = table.open_new(generation, epoch)
        with self.lock:
            current = any(m is memtable for m, _ in table.flushing)
            self._install(table, generation, reader, epoch, position)
            if current:
                table.flushing = [(m, p) for m, p in table.flushing if m is not memtable]
                self._frozen_bytes -= memtable.size
            table.refresh_view()
            self.flushed.notify_all()
        if not table.dropped and table.epoch == epoch and self.commitlog._active is not None:
            self.commitlog.mark_clean(table.table_id, position)

    def _write_sstable(self, table: Table, memtable: Memtable) -> int:
        """Write MEMTABLE as a new durable SSTable of TABLE (not yet in its manifest); return its generation.

        A memtable whose partitions are all packed goes to the worker process when it is free (Compactor.flush):
        most of a flush then runs off this process's interpreter lock, which the writers need."""
        packed = not memtable.merged and len(memtable) > 0
        with self.lock:
            generation = table.manifest.next_generation
            table.manifest.next_generation += 1
            if packed and self.compactor is not None:
                table.manifest.save(table.directory)  # GENERATION is never handed out again, even after a crash
        items = list(memtable.entries())
        if packed and self.compactor is not None and self._flush_in_worker(table, generation, items,
                                                                            memtable.wire_stats):
            return generation
        writer = SSTableWriter(table.directory, generation, len(memtable))
        try:
            if packed:
                writer.add_fragments(items, memtable.wire_stats)
            else:
                _add_memtable(writer, items, memtable.wire_stats)
            writer.finish()
        except BaseException:
            writer.abort()
            raise
        return generation

    def _flush_in_worker(self, table: Table, generation: int, items: list, stats: tuple) -> bool:
        """Have the worker write ITEMS (a packed memtable's entries) as SSTable GENERATION of TABLE. False when the
        worker is merging, closed or failed: the caller writes the SSTable itself, under the same generation."""
        assert self.compactor is not None
        try:
            return self.compactor.flush(table.directory, generation, items, stats) is not None
        except (WorkerInterrupted, WorkerFailed) as e:
            log.warning("table %s: the worker did not flush (%s); flushing in this process", table.table_id,
                        type(e).__name__ if isinstance(e, WorkerInterrupted) else e)
            remove_sstable_files(table.directory, generation)
            return False

    def ingest(self, mutations: Sequence[Mutation]) -> None:
        """Write MUTATIONS straight into new SSTables, one per table, bypassing the commit log and the memtables
        (streaming uses this). When this returns they are durable and readable; they merge with everything else
        by the one rule. A crash before the manifest names a new SSTable leaves no trace of it."""
        memtables: dict[str, Memtable] = {}
        for m in mutations:
            self.table(m.table_id)
            validate(m)
            memtable = memtables.setdefault(m.table_id, Memtable())
            memtable.apply(partition_sort_key(m.key), m.key, m.deletion, m.ranges, m.rows)
        for table_id, memtable in memtables.items():
            table = self.table(table_id)
            epoch = table.epoch
            generation = self._write_sstable(table, memtable)
            reader = table.open_new(generation, epoch)
            with self.lock:
                self._install(table, generation, reader, epoch)
                table.refresh_view()
            self._compaction_wanted.set()

    def _install(
        self, table: Table, generation: int, reader: SSTableReader | None, epoch: int, position: Position | None = None
    ) -> None:
        """Name the durable SSTable GENERATION in TABLE's manifest (raising its replay position to POSITION when
        it came from the commit log) and add READER, its Table.open_new(); or delete it if the table was truncated
        or dropped since EPOCH. With the lock held; the caller refreshes the table's view."""
        if reader is None or table.dropped or table.epoch != epoch:
            table.abandon_new(generation, reader)
            return
        manifest = table.manifest
        manifest.generations = sorted([*manifest.generations, generation])
        if position is not None:
            manifest.replay_position = max(manifest.replay_position, tuple(position))  # type: ignore[assignment]
        manifest.save(table.directory)
        table.sstables[generation] = reader

    def _check_background(self) -> None:
        if self.background_error is not None:
            raise RuntimeError("storage background thread failed") from self.background_error

    # -- compaction --------------------------------------------------------------------------------------------------

    def _compaction_loop(self) -> None:
        while True:
            self._compaction_wanted.wait()
            self._compaction_wanted.clear()
            if self.closing:
                return
            try:
                while not self.closing and self._compact_one():
                    pass
            except BaseException as e:  # noqa: BLE001 - surfaced through _check_background
                log.exception("background compaction failed")
                with self.lock:
                    self.background_error = e
                    self.flushed.notify_all()
                return

    def _compact_one(self) -> bool:
        with self.lock:
            tables = list(self.tables.values())
        for table in tables:
            with self.lock:
                available = [s for g, s in table.sstables.items() if g not in table.compacting]
            inputs = size_tiered_candidates(available, self.options.compaction_min_threshold)
            if inputs and compact(table, inputs) is not None:
                return True
        return False

    def compact(self, table_id: str) -> None:
        """Major compaction: merge every SSTable of the table into one (after flushing its memtable)."""
        self.flush(table_id)
        table = self.table(table_id)
        while True:
            with self.lock:
                if table.compacting:
                    busy = True
                else:
                    busy = False
                    inputs = list(table.sstables.values())
            if busy:
                time.sleep(0.05)
                continue
            if len(inputs) <= 1 and not any(self._has_purgeable(s) for s in inputs):
                return
            compact(table, inputs)
            return

    def cleanup(self, table_id: str, owned: Sequence[tuple[int, int]]) -> tuple[int, int, int]:
        """Drop every partition of TABLE_ID whose token is outside OWNED: sorted, disjoint (start, end] token
        ranges that do not wrap (this node's ranges, after others took some over). Flushes the memtable, then
        rewrites each SSTable that may hold other tokens, one at a time, as compaction does (durable output
        before the input goes). Returns (SSTables rewritten, bytes on disk before, after)."""
        self.flush(table_id)
        table = self.table(table_id)
        starts = [start for start, _ in owned]
        ends = [end for _, end in owned]

        def owned_span(lo: int, hi: int) -> bool:  # is every token of [lo, hi] in one owned range?
            i = bisect.bisect_left(ends, lo)
            return i < len(ends) and starts[i] < lo and hi <= ends[i]

        def keep(sk: bytes) -> bool:
            t = token_of_sort_key(sk)
            return owned_span(t, t)

        before = table.disk_size()
        with self.lock:
            while True:  # wait for running compactions of the SSTables to rewrite, then claim them
                targets = [s for s in table.sstables.values()
                           if s.stats.get("min_token") is not None
                           and not owned_span(s.stats["min_token"], s.stats["max_token"])]
                if not {s.generation for s in targets} & table.compacting:
                    break
                self.flushed.wait(0.05)
            table.compacting |= {s.generation for s in targets}
        try:
            for s in targets:
                compact(table, [s], keep=keep, claimed=True)
        finally:
            with self.lock:
                table.compacting -= {s.generation for s in targets}
        return len(targets), before, table.disk_size()

    def _has_purgeable(self, sstable: SSTableReader) -> bool:
        return bool(sstable.stats.get("tombstones"))
