"""SSTableWriter: streams sorted partitions into a new SSTable, durable and renamed into place on finish().

How this works. Partitions arrive in sort-key order with their rows in clustering order. Each partition is packed
as one fragment into the current block, and the block is written when it passes BLOCK_TARGET bytes, behind a
small directory of its fragments' token prefixes and key and fragment end offsets (fixed-width arrays, which a
reader searches without decoding them), so a wide partition spans several blocks (its header, with the partition
and range deletions, stays in the first). In the block each fragment is an entry with its key and a CRC of both, so
a point read can fetch and check one entry alone. For each block the index records the first sort key and
clustering and the last sort key, which is all a reader needs to find the blocks of a partition or of a clustering
slice by bisection; Partitions.db records each entry's token top and length and each block's entry count, from
which a point read finds its entry.
Components are written under .tmp names, fsynced, then renamed; the caller makes the SSTable live by listing it in
the table's manifest.
"""

from __future__ import annotations

import operator
import os
import struct
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from itertools import accumulate, chain
from pathlib import Path

import mmh3
import msgpack

from widecol.storage.sstable.bloom import MASK_SHIFT, MASKS, BlockedBloom, hashes
from widecol.storage.sstable.format import (
    BLOCK_COUNT,
    BLOCK_HEADER,
    BLOCK_TARGET,
    COMPONENTS,
    DATA_HEADER,
    DATA_MAGIC,
    ENTRY_CRC,
    FORMAT_VERSION,
    MAX_ENTRY_LENGTH,
    TRAILER,
    WIDE_ENDS,
    component_name,
    crc32,
    seal,
)
from widecol.storage.token import token_of_sort_key

_NO_TS = 1 << 63


class SSTableWriter:
    def __init__(self, directory: Path, generation: int, expected_partitions: int) -> None:
        self.directory = directory
        self.generation = generation
        self._tmp_data = directory / (component_name(generation, "Data.db") + ".tmp")
        self._data = open(self._tmp_data, "wb")  # noqa: SIM115 - closed in finish/abort
        self._data.write(DATA_HEADER.pack(DATA_MAGIC, FORMAT_VERSION))
        self._offset = DATA_HEADER.size
        self._bloom = BlockedBloom.for_keys(max(1, expected_partitions))
        self._packer = msgpack.Packer()
        self._keys: list[bytes] = []  # the current block: its fragments' keys, sort keys and packed bytes
        self._sks: list[bytes] = []
        self._blobs: list[bytes] = []
        self._bytes = 0
        self._first: tuple[bytes, bytes] | None = None
        self._last_sk = b""
        self.first_sks: list[bytes] = []
        self.first_cks: list[bytes] = []
        self.last_sks: list[bytes] = []
        self.offsets: list[int] = []
        self._tops = array("I")  # Partitions.db (format.py): each entry's token top (as the file's bytes) and
        self._lengths = array("H")  # length, in file order, and each block's number of entries
        self._counts = array("I")
        self._partitions = self._rows = self._cells = self._tombstones = self._ttl_cells = 0
        self._min_ts = _NO_TS
        self._max_ts = -_NO_TS
        self._max_ldt = 0
        self._min_sk: bytes | None = None
        self._copied: dict[int, list] = {}  # id(source statistics) -> [source statistics, partitions copied]

    # -- adding data -----------------------------------------------------------------------------------------------

    def add_partition(
        self,
        sk: bytes,
        key: bytes,
        deletion: tuple | None,
        ranges: list[tuple],
        rows: Iterable[tuple],
    ) -> None:
        """Append one partition. ROWS yields (clustering, row deletion, cells dict) in clustering order."""
        self._partitions += 1
        self._bloom.add(hashes(key))
        if self._min_sk is None:
            self._min_sk = sk
        min_ts, max_ts, max_ldt, tombstones = self._min_ts, self._max_ts, self._max_ldt, 0
        for ts, ldt in ([deletion] if deletion else []) + [(r[2], r[3]) for r in ranges]:
            tombstones += 1
            min_ts, max_ts, max_ldt = min(min_ts, ts), max(max_ts, ts), max(max_ldt, ldt)
        rows_out: list = []
        fragment = [list(deletion) if deletion else None, [list(r) for r in ranges], rows_out]
        first_ck: bytes | None = None
        size = self._bytes + len(key) + 8 + 24 * len(ranges)
        cells_count = 0
        continuation = False
        for ck, rowdel, cells in rows:
            if first_ck is None:
                first_ck = ck
            if rowdel is not None:
                tombstones += 1
                min_ts, max_ts, max_ldt = min(min_ts, rowdel[0]), max(max_ts, rowdel[0]), max(max_ldt, rowdel[1])
            wire = []
            for colkey in sorted(cells) if len(cells) > 1 else cells:
                ts, value, ldt, ttl = cells[colkey]
                if ts < min_ts:
                    min_ts = ts
                if ts > max_ts:
                    max_ts = ts
                if ldt > max_ldt:
                    max_ldt = ldt
                if value is None:
                    tombstones += 1
                else:
                    size += len(value)
                    if ttl:
                        self._ttl_cells += 1
                size += len(colkey) + 14
                wire.append([colkey, ts, value, ldt, ttl])
            cells_count += len(wire)
            rows_out.append([ck, list(rowdel) if rowdel else None, wire])
            size += len(ck) + 6
            if size >= BLOCK_TARGET:
                self._add_fragment(sk, key, fragment, first_ck)
                self._close_block()
                rows_out = []
                fragment = [None, [], rows_out]
                first_ck = None
                size = 0
                continuation = True
        if rows_out or not continuation:
            self._add_fragment(sk, key, fragment, first_ck)
        self._cells += cells_count
        self._tombstones += tombstones
        self._min_ts, self._max_ts, self._max_ldt = min_ts, max_ts, max_ldt
        if self._bytes >= BLOCK_TARGET:
            self._close_block()

    def add_fragments(self, items: Iterable[Sequence], stats: Sequence[int] | None) -> None:
        """Append each (sort key, (key, fragment)) of ITEMS, in order: partitions a memtable holds in packed form
        (memtable.pack_fragment: one fragment each, no partition or range deletion), whose summed statistics are
        STATS (memtable.EMPTY_STATS; None when a later call gives them). Their bytes are copied as they are (see
        copy_fragments)."""
        items = list(items)
        if items:
            sks, pairs = zip(*items, strict=True)
            keys, blobs = zip(*pairs, strict=True)
            self.copy_fragments(sks, keys, blobs)
        if stats is None:
            return
        rows, cells, tombstones, ttl_cells, min_ts, max_ts, max_ldt = stats
        self._rows += rows
        self._cells += cells
        self._tombstones += tombstones
        self._ttl_cells += ttl_cells
        self._min_ts, self._max_ts = min(self._min_ts, min_ts), max(self._max_ts, max_ts)
        self._max_ldt = max(self._max_ldt, max_ldt)

    def copy_fragments(self, sks: Sequence[bytes], keys: Sequence[bytes], blobs: Sequence[bytes]) -> None:
        """Append whole partitions, each one packed fragment (BLOBS[i] is partition KEYS[i], sort key SKS[i]), in
        sort-key order, copying their bytes as they are. Counts partitions and the bloom filter only: the caller
        accounts for rows, cells and timestamps (add_fragments, count_copied). As for add_packed, the index records
        b"" as a first clustering. One loop with the bloom filter's add inline: this is most of a flush and of a
        compaction of clean SSTables."""
        words, w = self._bloom.words, self._bloom.n
        hash64 = mmh3.hash64
        for key in keys:
            h1, h2 = hash64(key, 0, True, True)
            words[h1 % w] |= MASKS[h2 >> MASK_SHIFT]
        n = len(keys)
        if not n:
            return
        if self._min_sk is None:
            self._min_sk = sks[0]
        self._partitions += n
        totals = list(accumulate(map(len, blobs)))  # totals[j]: the bytes of blobs[0..j]
        i = 0
        while i < n:
            # The fragments [i, j] fill the current block: j is the first to take it to BLOCK_TARGET bytes.
            if self._bytes >= BLOCK_TARGET:
                self._close_block()
            if not self._keys:
                self._first = (sks[i], b"")
            shift = self._bytes - (totals[i - 1] if i else 0)  # totals[j] + shift: the block's bytes with j in it
            j = min(n - 1, bisect_left(totals, BLOCK_TARGET - shift, i))
            self._keys.extend(keys[i : j + 1])
            self._sks.extend(sks[i : j + 1])
            self._blobs.extend(blobs[i : j + 1])
            self._bytes = totals[j] + shift
            self._last_sk = sks[j]
            i = j + 1
        if self._bytes >= BLOCK_TARGET:
            self._close_block()

    def count_copied(self, source: dict, partitions: int) -> None:
        """PARTITIONS partitions were copied from an SSTable whose statistics are SOURCE (no tombstone, no TTL):
        their rows, cells and timestamps count through SOURCE's averages and bounds when the statistics are made."""
        copied = self._copied.get(id(source))
        if copied is None:
            self._copied[id(source)] = [source, partitions]
        else:
            copied[1] += partitions

    def add_packed(self, sk: bytes, key: bytes, blob: bytes, source: dict) -> None:
        """Append a whole partition given as one packed fragment, copied as it is from another SSTable whose
        statistics are SOURCE (compaction). Only for data with no tombstone and no TTL. The blob is not decoded:
        see copy_fragments and count_copied."""
        self.copy_fragments((sk,), (key,), (blob,))
        self.count_copied(source, 1)

    def _add_fragment(
        self, sk: bytes, key: bytes, fragment: list | None, first_ck: bytes | None, blob: bytes | None = None,
        rows: int = 0,
    ) -> None:
        if blob is None:
            assert fragment is not None
            blob = self._packer.pack(fragment)
            rows = len(fragment[2])
        if not self._keys:
            self._first = (sk, first_ck if first_ck is not None else b"")
        self._keys.append(key)
        self._sks.append(sk)
        self._blobs.append(blob)
        self._bytes += len(blob)
        self._rows += rows
        self._last_sk = sk

    def _close_block(self) -> None:
        if not self._keys:
            return
        n = len(self._keys)
        # Entry j is fragment j, key j and crc32 of both; one C-level pass (map) a step, no concatenation: this runs
        # on every flush, on the writers' interpreter lock.
        keys, blobs = self._keys, self._blobs
        key_lengths = list(map(len, keys))
        crcs = map(ENTRY_CRC.pack, map(crc32, keys, map(crc32, blobs)))
        lengths = list(map(operator.add, map(len, blobs), map(ENTRY_CRC.size.__add__, key_lengths)))
        key_ends = list(map((-ENTRY_CRC.size).__add__, accumulate(lengths)))
        entries = chain.from_iterable(zip(blobs, keys, crcs, strict=True))
        wide = key_ends[-1] > 0xFFFF  # the ends are u16 unless an entry ends past that
        if wide:  # some entry may be too long for Partitions.db's u16 length
            lengths = [x if x <= MAX_ENTRY_LENGTH else 0 for x in lengths]
        self._lengths.extend(lengths)
        tokens = b"".join([sk[:8] for sk in self._sks])
        if len(tokens) != 8 * n:
            raise ValueError("every sort key starts with an 8-byte token prefix")
        self._tops.extend(array("I", tokens)[::2])  # each token prefix's first 4 bytes, as they are (big-endian)
        self._counts.append(n | WIDE_ENDS if wide else n)
        ends = struct.pack(f">{2 * n}{'I' if wide else 'H'}", *key_ends, *map(operator.sub, key_ends, key_lengths))
        if wide:
            n |= WIDE_ENDS
        payload = b"".join([BLOCK_COUNT.pack(n), tokens, ends, *entries])
        assert self._first is not None
        self.first_sks.append(self._first[0])
        self.first_cks.append(self._first[1])
        self.last_sks.append(self._last_sk)
        self.offsets.append(self._offset)
        record = BLOCK_HEADER.pack(len(payload), crc32(payload)) + payload
        self._data.write(record)
        self._offset += len(record)
        self._keys, self._sks, self._blobs = [], [], []
        self._bytes = 0
        self._first = None

    def _fold_copied(self) -> None:
        """Count the partitions add_packed copied into the statistics, through their sources' statistics."""
        for source, count in self._copied.values():
            partitions = source.get("partitions") or 1
            self._rows += round(count * source.get("rows", 0) / partitions)
            self._cells += round(count * source.get("cells", 0) / partitions)
            if source.get("min_timestamp") is not None:
                self._min_ts = min(self._min_ts, source["min_timestamp"])
                self._max_ts = max(self._max_ts, source["max_timestamp"])
            self._max_ldt = max(self._max_ldt, source.get("max_ldt", 0))
        self._copied = {}

    @property
    def stats(self) -> dict:
        self._fold_copied()
        return {
            "partitions": self._partitions,
            "rows": self._rows,
            "cells": self._cells,
            "tombstones": self._tombstones,
            "ttl_cells": self._ttl_cells,
            "min_timestamp": None if self._partitions == 0 or self._min_ts == _NO_TS else self._min_ts,
            "max_timestamp": None if self._partitions == 0 or self._max_ts == -_NO_TS else self._max_ts,
            "max_ldt": self._max_ldt,
            "min_token": None if self._min_sk is None else token_of_sort_key(self._min_sk),
            "max_token": None if self._min_sk is None else token_of_sort_key(self._last_sk),
        }

    # -- finishing ---------------------------------------------------------------------------------------------------

    def finish(self) -> dict:
        """Write every component durably under its final name. Returns the statistics."""
        self._close_block()
        self._data.flush()
        os.fsync(self._data.fileno())
        self._data.close()
        stats = {**self.stats, "data_size": self._offset}
        index = msgpack.packb([self.first_sks, self.first_cks, self.last_sks, self.offsets, self._offset])
        parts: dict[str, bytes | list] = {
            "Index.db": seal(index),
            "Filter.db": seal(msgpack.packb(self._bloom.to_bytes())),
            "Statistics.db": seal(msgpack.packb(stats)),
            "Partitions.db": self._partitions_arrays(),
            "TOC.txt": ("\n".join(component_name(self.generation, c) for c in COMPONENTS) + "\n").encode(),
        }
        for component, data in parts.items():
            tmp = self.directory / (component_name(self.generation, component) + ".tmp")
            with open(tmp, "wb") as f:
                if isinstance(data, list):  # buffers written as they are, then crc32 of them all (seal)
                    crc = 0
                    for buffer in data:
                        f.write(buffer)
                        crc = crc32(buffer, crc)
                    f.write(TRAILER.pack(crc))
                else:
                    f.write(data)
                f.flush()
                os.fsync(f.fileno())
        for component in COMPONENTS:
            tmp = self.directory / (component_name(self.generation, component) + ".tmp")
            os.replace(tmp, self.directory / component_name(self.generation, component))
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return stats

    def _partitions_arrays(self) -> list:
        """Partitions.db (format.py) as buffers to write and seal: its header, then the entries' token tops and
        lengths and the blocks' entry counts, big-endian. The arrays are swapped in place, not copied: at 1,000,000
        partitions copies would cost the compaction worker tens of MB at its peak."""
        arrays = [self._tops, self._lengths, self._counts]  # _tops holds the file's bytes already
        if sys.byteorder == "little":
            self._lengths.byteswap()
            self._counts.byteswap()
        return [struct.pack(">II", len(self._tops), len(self._counts)), *arrays]

    def abort(self) -> None:
        """Remove whatever this writer left behind."""
        if not self._data.closed:
            self._data.close()
        remove_sstable_files(self.directory, self.generation)


def remove_sstable_files(directory: Path, generation: int) -> None:
    """Remove SSTable GENERATION's files from DIRECTORY, finished or not."""
    for component in COMPONENTS:
        for name in (component_name(generation, component) + ".tmp", component_name(generation, component)):
            (directory / name).unlink(missing_ok=True)
