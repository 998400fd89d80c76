"""Table: one table's memtables and SSTables, and its reads.

How this works. Writes go through the Engine (which logs them first) into `memtable`. A flush freezes the active
memtable together with the commit log position it covers, writes it as an SSTable in the background, then installs
the SSTable by rewriting the manifest. Reads merge the active memtable (copied under the engine's lock), memtables
being flushed and every SSTable whose bounds and bloom filter admit the partition, by the one rule. When the only
version is from a clean SSTable (its statistics count no tombstone and no TTL cell), every cell in it is live at any
time, so its rows are returned as decoded, without the clock or the shadowing pass.

A read with a LIMIT does not read whole partitions: it asks each source for a bounded number of rows, merges what is
certainly complete (up to the nearest last row of a source that may have more) and asks again past it, doubling
the batch, until it has LIMIT live rows or every source is exhausted. When only one source has the partition and
it has no partition or range deletion, its first batch is already in order and unique, and (from a clean SSTable,
or when enough of it is live) its first LIMIT live rows are the answer, with no merge.
"""

from __future__ import annotations

import heapq
import logging
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from widecol.errors import Corruption
from widecol.storage.cells import shadow_row
from widecol.storage.manifest import Manifest
from widecol.storage.memtable import Memtable
from widecol.storage.merge import live_row, merge_versions
from widecol.storage.sstable.bloom import MASK_SHIFT, MASKS
from widecol.storage.sstable.format import COMPONENTS, component_name, components
from widecol.storage.sstable.reader import SSTableReader
from widecol.storage.token import MAX_TOKEN, partition_sort_key, sort_key_and_hashes, token_bound

if TYPE_CHECKING:
    from widecol.storage.engine import Engine

log = logging.getLogger(__name__)
_SSTABLE_FILE = re.compile(r"^(\d+)-(Data\.db|Index\.db|Filter\.db|Statistics\.db|Partitions\.db|TOC\.txt)(\.tmp)?$")
DEFAULT_OPTIONS = {"gc_grace_seconds": 864000}


class Table:
    def __init__(self, engine: Engine, table_id: str, directory: Path, manifest: Manifest) -> None:
        self.engine = engine
        self.table_id = table_id
        self.directory = directory
        self.manifest = manifest
        self.memtable = Memtable()
        self.flushing: list[tuple[Memtable, tuple[int, int]]] = []
        self.sstables: dict[int, SSTableReader] = {}
        self.compacting: set[int] = set()
        self.epoch = 0  # bumped by truncate: background work started before it is discarded
        self.dropped = False
        # What a read consults besides the active memtable: (frozen memtables, SSTables, the SSTables' probes for
        # point reads as (low, high, filter words, word count, SSTable), or None if one has a classic filter).
        # Replaced, never mutated, under the engine lock by refresh_view() after every change, so reads take it
        # without the lock.
        self.view: tuple[tuple[Memtable, ...], tuple[SSTableReader, ...], tuple[tuple, ...] | None] = ((), (), ())

    @classmethod
    def open(cls, engine: Engine, table_id: str, directory: Path) -> Table:
        """Open a table folder: load its manifest, delete files it does not list, open its SSTables."""
        manifest = Manifest.load(directory)
        live = set(manifest.generations)
        present = set()
        for path in directory.iterdir():
            m = _SSTABLE_FILE.match(path.name)
            if (m and (m.group(3) or int(m.group(1)) not in live)) or path.name.endswith(".tmp"):
                log.info("table %s: removing leftover %s", table_id, path.name)
                path.unlink(missing_ok=True)  # a compaction worker orphaned by a crash may be removing it too
            elif m:
                present.add(int(m.group(1)))
        gone = live - present
        if gone:  # every file of it deleted by hand, as an operator may while the node is down: repair restores it
            log.error("table %s: SSTable generations %s are in the manifest but have no files; their data is "
                      "missing until a repair", directory.name, sorted(gone))
            manifest.generations = [g for g in manifest.generations if g not in gone]
            manifest.save(directory)
        table = cls(engine, table_id, directory, manifest)
        for generation in manifest.generations:
            table.sstables[generation] = SSTableReader(directory, generation, engine.block_cache)
        table.refresh_view()
        return table

    def open_new(self, generation: int, epoch: int) -> SSTableReader | None:
        """Open the durable SSTable GENERATION that a flush or compaction just wrote, before taking the engine lock to
        install it. If the table serves point reads (one of its SSTables has been point-read), build what they need
        now: neither the first read nor the writers then wait for it. A table only written to, or only sliced, does
        not hold those arrays (14 bytes a partition). None if the table was dropped or truncated since EPOCH (which
        may have removed the files)."""
        try:
            reader = SSTableReader(self.directory, generation, self.engine.block_cache)
        except (OSError, Corruption):
            if self.dropped or self.epoch != epoch:
                return None
            raise
        if any(s.serves_point_reads for s in self.view[1]):
            reader.prepare_reads()
        return reader

    def abandon_new(self, generation: int, reader: SSTableReader | None) -> None:
        """Undo open_new(): not installed after all, the new SSTable GENERATION (READER, if it opened) goes."""
        if reader is not None:
            reader.retire()
            reader.close()
        self.remove_files([generation])

    def refresh_view(self) -> None:
        """Publish the current frozen memtables and SSTables to readers. Call with the engine lock held."""
        sstables = tuple(self.sstables.values())
        probes = tuple((*s.probe, s) for s in sstables if s.probe is not None)
        self.view = (tuple(m for m, _ in self.flushing), sstables, probes if len(probes) == len(sstables) else None)

    @property
    def gc_grace_seconds(self) -> int:
        return int(self.manifest.options.get("gc_grace_seconds", DEFAULT_OPTIONS["gc_grace_seconds"]))

    def check(self) -> None:
        """Invariants of the table's on-disk state (for tests). Under the engine lock, which a flush or compaction
        holds while it changes the manifest and the open SSTables together."""
        with self.engine.lock:
            self.manifest.check()
            assert sorted(self.sstables) == self.manifest.generations
            for generation in self.manifest.generations:
                for component in components(self.sstables[generation].version):
                    assert (self.directory / component_name(generation, component)).exists()

    # -- reads -------------------------------------------------------------------------------------------------------

    def _versions(
        self, key: bytes, start: bytes | None, end: bytes | None, reverse: bool, limit: int | None
    ) -> list[tuple]:
        """Partition KEY's version in every source that has it: (deletion, ranges, rows in [START, END))."""
        return self._sources(key, start, end, reverse, limit)[0]

    def _sources(
        self, key: bytes, start: bytes | None, end: bytes | None, reverse: bool, limit: int | None
    ) -> tuple[list[tuple], bool]:
        """_versions(), and whether every version came from a clean SSTable (no tombstone and no TTL cell in it, so
        every cell of it is live at any time)."""
        sk, h = sort_key_and_hashes(key)
        versions = []
        clean = True
        # The active memtable first, the view second: a memtable switched in between is then read twice (harmless
        # under the merge rule), never missed.
        active = self.memtable
        if sk in active.partitions:
            with self.engine.lock:  # a writer thread may be changing the partition
                version = active.version(sk, start, end, reverse, limit)
            if version is not None:
                versions.append(version)
                clean = False
        frozen, sstables, probes = self.view
        for memtable in frozen:
            if sk in memtable.partitions:
                versions.append(memtable.version(sk, start, end, reverse, limit))  # type: ignore[arg-type]
                clean = False
        whole = start is None and end is None and limit is None and not reverse  # a point read
        if whole and probes is not None:
            # Every SSTable's bounds and blocked bloom filter (bloom.py's test) in this one loop, then get() where
            # both admit the key. Calling each SSTable to test itself took 9.3 us a read over 3 SSTables against
            # 8.3 now, and 14.3 over 10 against 11.2 (docs/performance.md).
            h0 = h[0]
            mask = MASKS[h[1] >> MASK_SHIFT]
            for lo, hi, words, n, sstable in probes:
                if lo <= sk <= hi and words[h0 % n] & mask == mask:
                    version = sstable.get(sk, key)
                    if version is not None:
                        versions.append(version)
                        if not sstable.clean:
                            clean = False
            return versions, clean
        for sstable in sstables:
            if not sstable.may_contain(h, sk):
                continue
            version = sstable.get(sk, key) if whole else sstable.partition(sk, key, start, end, reverse, limit)
            if version is not None:
                versions.append(version)
                if not sstable.clean:
                    clean = False
        return versions, clean

    def read_raw(
        self, key: bytes, start: bytes | None = None, end: bytes | None = None, reverse: bool = False,
        limit: int | None = None,
    ) -> tuple[tuple, bytes | None]:
        """Partition KEY's versions in [START, END) merged by the one rule, tombstones kept, and a boundary.

        With LIMIT, each source contributes at most LIMIT rows. The boundary is None when every row in the range
        is in the result; otherwise rows beyond it (after it in the read's direction) may be incomplete.
        """
        return _merged(self._versions(key, start, end, reverse, limit), reverse, limit)

    def read(
        self,
        key: bytes,
        start: bytes | None = None,
        end: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
        now: int | None = None,
    ) -> list[tuple[bytes, dict]]:
        """Live rows (clustering, {column key: cell}) of partition KEY in [START, END), in clustering order
        (reversed if REVERSE), at most LIMIT of them. Expired and deleted cells are absent; a row with no live cell
        is absent."""
        versions, clean = self._sources(key, start, end, reverse, None if limit is None else _first_rows(limit))
        if not versions:
            return []
        if len(versions) == 1 and versions[0][0] is None and not versions[0][1]:
            # One source and no partition or range deletion: its rows are already unique and in order (with a
            # LIMIT, the first _first_rows(LIMIT) rows of the range).
            rows = versions[0][2]
            if clean:  # and no tombstone or TTL: every cell is live
                return [(ck, cells) for ck, _, cells in rows[:limit] if cells]
            if now is None:
                now = self.engine.now()
            out = []
            for ck, rowdel, cells in rows:
                kept = shadow_row(None if rowdel is None else rowdel[0], cells, now)
                if kept:
                    out.append((ck, kept))
            if limit is None or len(out) >= limit or len(rows) < _first_rows(limit):
                return out[:limit]
            # Fewer than LIMIT rows live and the source may have more: the general path reads past them.
        if now is None:
            now = self.engine.now()
        if limit is None:
            raw = merge_versions(versions)
            live = ((ck, live_row(raw, ck, now)) for ck in sorted(raw[2], reverse=reverse))
            return [(ck, cells) for ck, cells in live if cells]
        return live_rows_limited(lambda s, e, n: self.read_raw(key, s, e, reverse, n), start, end, reverse,
                                 limit, now, _merged(versions, reverse, _first_rows(limit)))

    def scan(
        self,
        start_token: int | None = None,
        end_token: int | None = None,
        after_key: bytes | None = None,
        now: int | None = None,
    ) -> Iterator[tuple[bytes, list[tuple[bytes, dict]]]]:
        """(key, live rows) of every partition with START_TOKEN < token <= END_TOKEN (None: unbounded), in token
        order, starting after partition AFTER_KEY when given (for paging). Partitions with no live row are skipped.
        """
        if now is None:
            now = self.engine.now()
        for _sk, key, raw in self.scan_raw(start_token, end_token, after_key):
            rows = []
            for ck in sorted(raw[2]):
                cells = live_row(raw, ck, now)
                if cells:
                    rows.append((ck, cells))
            if rows:
                yield key, rows

    def scan_raw(
        self, start_token: int | None = None, end_token: int | None = None, after_key: bytes | None = None
    ) -> Iterator[tuple[bytes, bytes, tuple]]:
        """(sort key, key, raw partition) in token order over the range, tombstones included."""
        # Sort keys are an 8-byte token prefix then a non-empty key, so "token > T" is "sk > bound(T + 1)" and
        # "token <= T" is "sk <= bound(T + 1)".
        lo = hi = None
        if start_token is not None:
            if start_token >= MAX_TOKEN:
                return
            lo = token_bound(start_token + 1)
        if end_token is not None and end_token < MAX_TOKEN:
            hi = token_bound(end_token + 1)
        if after_key is not None:
            ask = partition_sort_key(after_key)
            lo = ask if lo is None or ask > lo else lo
        with self.engine.lock:
            active = self.memtable
            active_items = [(sk, active.key_of(sk), active.version(sk)) for sk in active.sort_keys(lo, hi)]
            frozen = [(m, m.sort_keys(lo, hi)) for m, _ in self.flushing]  # sort_keys updates the key order
            sstables = list(self.sstables.values())
        streams = [iter(active_items)]
        for m, sks in frozen:
            streams.append(_memtable_stream(m, sks))
        for s in sstables:
            streams.append((sk, key, (d, r, rows)) for sk, key, d, r, rows in s.scan(lo, hi))
        current_sk = None
        current_key = b""
        versions: list = []
        for sk, key, version in heapq.merge(*streams, key=lambda item: item[0]):
            if sk != current_sk:
                if versions:
                    yield current_sk, current_key, merge_versions(versions)  # type: ignore[misc]
                current_sk, current_key, versions = sk, key, []
            versions.append(version)
        if versions:
            yield current_sk, current_key, merge_versions(versions)  # type: ignore[misc]

    def memtables_may_contain(self, sk: bytes) -> bool:
        with self.engine.lock:
            return self.memtable.may_contain(sk) or any(m.may_contain(sk) for m, _ in self.flushing)

    # -- maintenance -------------------------------------------------------------------------------------------------


    def disk_size(self) -> int:
        return sum(s.size_on_disk for s in list(self.sstables.values()))

    def remove_files(self, generations: list[int]) -> None:
        for g in generations:
            for c in COMPONENTS:
                try:
                    os.unlink(self.directory / component_name(g, c))
                except FileNotFoundError:
                    pass


def _memtable_stream(m: Memtable, sks: list[bytes]) -> Iterator[tuple]:
    for sk in sks:
        yield sk, m.key_of(sk), m.version(sk)


RawReader = Callable[[bytes | None, bytes | None, int], tuple[tuple, bytes | None]]


def _merged(versions: list[tuple], reverse: bool, limit: int | None) -> tuple[tuple, bytes | None]:
    """read_raw() of VERSIONS, read with at most LIMIT rows from each source."""
    boundary = None
    if limit is not None:
        more = [rows[-1][0] for _, _, rows in versions if len(rows) >= limit]
        if more:
            boundary = max(more) if reverse else min(more)
    return merge_versions(versions), boundary


def _first_rows(limit: int) -> int:
    """How many rows Table.read first asks of each source for LIMIT live rows: LIMIT, and at least 8. When one
    clean source answers (the common slice), every row read is returned."""
    return max(8, limit)


def live_rows_limited(read_raw: RawReader, start: bytes | None, end: bytes | None, reverse: bool, limit: int,
                      now: int, first: tuple[tuple, bytes | None] | None = None) -> list[tuple[bytes, dict]]:
    """At most LIMIT live rows of [START, END) in clustering order (reversed if REVERSE), from READ_RAW(start,
    end, n), which returns a raw partition with at most n rows per source and the boundary past which it may be
    incomplete (Table.read_raw, or a coordinator's reconciled read). Reads again past the boundary, with twice
    the batch, until LIMIT live rows are found or the range is exhausted. FIRST, if given, is READ_RAW(START, END,
    n) for some n, already made: it stands for the first read."""
    out: list[tuple[bytes, dict]] = []
    batch = max(8, limit + limit // 2)  # half again LIMIT: some rows may turn out shadowed
    while True:
        raw, boundary = read_raw(start, end, batch) if first is None else first
        first = None
        for ck in sorted(raw[2], reverse=reverse):
            if boundary is not None and (ck < boundary if reverse else ck > boundary):
                break
            cells = live_row(raw, ck, now)
            if cells:
                out.append((ck, cells))
                if len(out) >= limit:
                    return out
        if boundary is None:
            return out
        if reverse:
            end = boundary
        else:
            start = boundary + b"\x00"
        batch *= 2
