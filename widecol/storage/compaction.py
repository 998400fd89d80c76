"""Size-tiered compaction: which SSTables to merge, and the merge itself.

How this works. SSTables are grouped into buckets of similar size (each within half to one and a half times the
bucket's average; everything under MIN_SSTABLE_SIZE shares one bucket), as Cassandra's SizeTieredCompactionStrategy
does. A bucket with at least `min_threshold` members is compacted: the inputs are scanned in sort-key order, each
partition's versions are reconciled by the one rule (merge.py), shadowed data is dropped, expired cells become
tombstones, and a tombstone is purged only once its local deletion time is gc_grace_seconds old and no source
outside the compaction (another SSTable or a memtable) may hold data for its partition. The output SSTable is
made durable and installed in the manifest before the inputs are deleted, so a crash at any point leaves either
the inputs or the output live, never neither and never a partial file.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from itertools import repeat
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING

from widecol.storage.compactor import Interrupted as WorkerInterrupted
from widecol.storage.compactor import WorkerFailed
from widecol.storage.merge import merge_versions, purge
from widecol.storage.sstable.bloom import hashes
from widecol.storage.sstable.reader import SSTableReader
from widecol.storage.sstable.writer import SSTableWriter, remove_sstable_files

if TYPE_CHECKING:
    from widecol.storage.table import Table

log = logging.getLogger(__name__)
MIN_SSTABLE_SIZE = 50 * 1024 * 1024
BUCKET_LOW, BUCKET_HIGH = 0.5, 1.5
MAX_THRESHOLD = 32


class Interrupted(Exception):
    """The engine is closing: the compaction stops, its output is removed and its inputs stay live."""


def size_tiered_candidates(sstables: Sequence[SSTableReader], min_threshold: int = 4) -> list[SSTableReader]:
    """The SSTables to compact next (the bucket of smallest average size with enough members), or []."""
    buckets: list[list[SSTableReader]] = []
    for sstable in sorted(sstables, key=lambda s: s.size_on_disk):
        size = sstable.size_on_disk
        for bucket in buckets:
            average = sum(s.size_on_disk for s in bucket) / len(bucket)
            small = size < MIN_SSTABLE_SIZE and average < MIN_SSTABLE_SIZE
            if small or BUCKET_LOW * average <= size <= BUCKET_HIGH * average:
                bucket.append(sstable)
                break
        else:
            buckets.append([sstable])
    ready = [b for b in buckets if len(b) >= min_threshold]
    if not ready:
        return []
    best = min(ready, key=lambda b: sum(s.size_on_disk for s in b) / len(b))
    return best[:MAX_THRESHOLD]


def compact(table: Table, inputs: Sequence[SSTableReader], keep: Callable[[bytes], bool] | None = None,
            claimed: bool = False) -> int | None:
    """Merge INPUTS of TABLE into one SSTable and install it. Returns its generation (None if nothing was left
    or the table changed underneath: truncated, dropped, or an input already gone). With KEEP, a partition whose
    sort key it refuses is dropped (cleanup). CLAIMED: the caller already put INPUTS in table.compacting."""
    engine = table.engine
    input_gens = {s.generation for s in inputs}
    with engine.lock:
        if not input_gens <= set(table.sstables) or (input_gens & table.compacting and not claimed):
            return None
        table.compacting |= input_gens
        epoch = table.epoch
        generation = table.manifest.next_generation
        table.manifest.next_generation += 1
        others = [s for g, s in table.sstables.items() if g not in input_gens]
        compactor = engine.compactor if keep is None and all(s.clean for s in inputs) else None
        if compactor is not None:
            table.manifest.save(table.directory)  # GENERATION is never handed out again, even after a crash
    try:
        now = engine.now()
        purge_before = now - table.gc_grace_seconds
        expected = sum(s.stats["partitions"] for s in inputs)
        try:
            if compactor is not None:
                # Nothing to purge and nothing to look up elsewhere: the worker process does it (compactor.py).
                try:
                    stats = compactor.run(table.directory, sorted(input_gens), generation, expected)
                except (Interrupted, WorkerInterrupted):
                    remove_sstable_files(table.directory, generation)
                    raise Interrupted from None
                except WorkerFailed:
                    remove_sstable_files(table.directory, generation)
                    with engine.lock:
                        if table.dropped or table.epoch != epoch or not input_gens <= set(table.sstables):
                            return None  # truncated or dropped while the worker read the inputs
                    raise
                written = stats["partitions"]
            else:
                written = _write_merge(table, inputs, others, generation, expected, now, purge_before, keep)
        except Interrupted:
            log.info("table %s: compaction of %s interrupted by close", table.table_id, sorted(input_gens))
            return None
        reader = table.open_new(generation, epoch) if written else None
        with engine.lock:
            gone = table.dropped or table.epoch != epoch or (written and reader is None)
            if gone or not input_gens <= set(table.sstables):
                if written:
                    table.abandon_new(generation, reader)
                return None
            manifest = table.manifest
            manifest.generations = sorted((set(manifest.generations) - input_gens) | ({generation} if written else set()))
            manifest.save(table.directory)
            if reader is not None:
                table.sstables[generation] = reader
            for g in input_gens:
                table.sstables.pop(g).retire()
            table.refresh_view()
        table.remove_files(sorted(input_gens))
        log.info(
            "table %s: compacted %d sstables (%s) into %s", table.table_id, len(inputs), sorted(input_gens),
            generation if written else "nothing",
        )
        return generation if written else None
    finally:
        with engine.lock:
            table.compacting -= input_gens


def _write_merge(table: Table, inputs: Sequence[SSTableReader], others: Sequence[SSTableReader], generation: int,
                 expected: int, now: int, purge_before: int, keep: Callable[[bytes], bool] | None) -> int:
    """Merge INPUTS into SSTable GENERATION of TABLE, durably (nothing is left if no partition is); returns how many
    partitions were written."""
    engine = table.engine
    writer = SSTableWriter(table.directory, generation, expected)
    try:
        written = _merge_into(writer, inputs, others, table.memtables_may_contain, now, purge_before, keep,
                              lambda: engine.closing)
        if written:
            writer.finish()
        else:
            writer.abort()
        return written
    except BaseException:
        writer.abort()
        raise


def merge_clean(directory: Path, generations: list[int], generation: int, expected: int,
                stop: Callable[[], bool]) -> dict:
    """Merge the clean SSTables GENERATIONS (no tombstone, no TTL cell) of the table in DIRECTORY into SSTable
    GENERATION, durably; returns its statistics (partitions 0: nothing was written). What the compaction worker
    process runs (compactor.py). STOP() is asked between chunks and before the output is made final: true raises
    Interrupted and removes the output."""
    inputs = [SSTableReader(directory, g) for g in generations]
    if not all(s.clean for s in inputs):
        raise ValueError(f"SSTables {generations} are not all clean")
    writer = SSTableWriter(directory, generation, expected)
    try:
        if _merge_into(writer, inputs, [], lambda sk: True, int(time.time()), 0, None, stop):
            if stop():
                raise Interrupted
            return writer.finish()
        writer.abort()
        return {"partitions": 0}
    except BaseException:
        writer.abort()
        raise
    finally:
        for s in inputs:
            s.close()


def _blocks(source: SSTableReader, index: int) -> Iterator[tuple[list[bytes], list[tuple]]]:
    """SOURCE's blocks in file order, each as (sort keys, fragments): a fragment is (sort key, key, packed bytes,
    INDEX, block offset), the sort keys being its first items, for bisection."""
    for b in range(len(source.offsets)):
        sks, keys, blobs = source.split_block(b)
        yield sks, list(zip(sks, keys, blobs, repeat(index), repeat(source.offsets[b])))


def _chunks(inputs: Sequence[SSTableReader]) -> Iterator[list[tuple]]:
    """The fragments of INPUTS merged in sort-key order, in chunks: each chunk is sorted and holds every fragment
    of each partition it has (a partition never straddles two chunks). Each round takes, from every input, what
    sorts before the smallest last sort key among the inputs' current blocks (none of them can have anything
    smaller still to come) and sorts that together, so the merge runs in C a block at a time rather than a
    partition at a time in Python."""
    blocks = [_blocks(s, i) for i, s in enumerate(inputs)]
    sks: list[list[bytes]] = [[] for _ in inputs]
    frags: list[list[tuple]] = [[] for _ in inputs]
    pos = [0] * len(inputs)
    live = list(range(len(inputs)))  # inputs with blocks still unread
    while True:
        for i in list(live):
            # Read on until this input's buffer holds two different sort keys (its last partition may go on
            # in the next block) or the input ends.
            while not sks[i] or sks[i][pos[i]] == sks[i][-1]:
                block = next(blocks[i], None)
                if block is None:
                    live.remove(i)
                    break
                sks[i] = sks[i][pos[i]:] + block[0]
                frags[i] = frags[i][pos[i]:] + block[1]
                pos[i] = 0
        bound = min((sks[i][-1] for i in live), default=None)
        chunk: list[tuple] = []
        for i in range(len(inputs)):
            j = len(sks[i]) if bound is None else bisect_left(sks[i], bound, pos[i])
            if j > pos[i]:
                chunk += frags[i][pos[i]:j]
                pos[i] = j
        if not chunk:
            return
        chunk.sort(key=itemgetter(0))
        yield chunk


def _merge_into(
    writer: SSTableWriter,
    inputs: Sequence[SSTableReader],
    others: Sequence[SSTableReader],
    in_memtables: Callable[[bytes], bool],
    now: int,
    purge_before: int,
    keep: Callable[[bytes], bool] | None,
    closing: Callable[[], bool],
) -> int:
    """Merge the inputs' partitions into WRITER; returns how many partitions were written. A tombstone is purged
    only if no SSTable of OTHERS and no memtable (IN_MEMTABLES(sort key)) may hold its partition.

    A partition found in a single fragment of a single clean input (no tombstone, no TTL in that SSTable) needs no
    merging, so its packed bytes are copied as they are, a chunk at a time when every partition in the chunk is
    such; every other partition is decoded, reconciled and purged.
    """
    written = 0
    all_clean = all(s.clean for s in inputs)

    def emit(group: list[tuple]) -> None:
        nonlocal written
        sk, key, blob, index, _ = group[0]
        if keep is not None and not keep(sk):
            return
        source = inputs[index]
        if len(group) == 1 and source.clean:
            writer.add_packed(sk, key, blob, source.stats)
            written += 1
            return
        raw = merge_versions(inputs[g[3]].decode_fragment(g[2], g[4]) for g in group)
        overlapping = any(o.may_contain(hashes(key), sk) for o in others) or in_memtables(sk)
        result = purge(raw, now, None if overlapping else purge_before)
        if result is not None:
            deletion, ranges, rows = result
            writer.add_partition(sk, key, deletion, ranges, rows)
            written += 1

    for chunk in _chunks(inputs):
        if closing():
            raise Interrupted
        columns = list(zip(*chunk, strict=True))
        sks = columns[0]
        if all_clean and keep is None and len(set(sks)) == len(sks):
            writer.copy_fragments(sks, columns[1], columns[2])
            for index, count in Counter(columns[3]).items():
                writer.count_copied(inputs[index].stats, count)
            written += len(sks)
            continue
        group: list[tuple] = []
        for item in chunk:
            if group and item[0] != group[0][0]:
                emit(group)
                group = []
            group.append(item)
        emit(group)
    return written
