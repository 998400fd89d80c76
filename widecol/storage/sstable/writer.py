"""SSTableWriter: streams sorted partitions into a new SSTable, durable and renamed into place on finish().

How this works. Partitions arrive in sort-key order with their rows in clustering order. Each partition is packed
as one fragment into the current block, and the block is written when it passes BLOCK_TARGET bytes, behind a
small directory of its fragments' token prefixes, keys and end offsets (fixed-width arrays, which a reader
searches without decoding them), so a wide partition spans several blocks (its header, with the partition and
range deletions, stays in the first). For each block the index records the first sort key and clustering and the
last sort key, which is all a reader needs to find the blocks of a partition or of a clustering slice by bisection.
Components are written under .tmp names, fsynced, then renamed; the caller makes the SSTable live by listing it in
the table's manifest.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import mmh3
import msgpack

from widecol.storage.sstable.bloom import BloomFilter, hashes
from widecol.storage.sstable.format import (
    BLOCK_COUNT,
    BLOCK_HEADER,
    BLOCK_TARGET,
    COMPONENTS,
    DATA_HEADER,
    DATA_MAGIC,
    FORMAT_VERSION,
    component_name,
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
        self._bloom = BloomFilter.for_keys(max(1, expected_partitions))
        self._packer = msgpack.Packer()
        self._keys: list[bytes] = []  # the current block: its fragments' keys, sort keys, ends and packed bytes
        self._sks: list[bytes] = []
        self._ends: list[int] = []
        self._blobs: list[bytes] = []
        self._bytes = 0
        self._first: tuple[bytes, bytes] | None = None
        self._last_sk = b""
        self.first_sks: list[bytes] = []
        self.first_cks: list[bytes] = []
        self.last_sks: list[bytes] = []
        self.offsets: list[int] = []
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

    def add_fragments(self, items: Iterable[tuple[bytes, tuple[bytes, bytes]]], stats: tuple) -> None:
        """Append each (sort key, (key, fragment)) of ITEMS, in order: partitions a memtable holds in packed form
        (memtable.pack_fragment: one fragment each, no partition or range deletion), whose summed statistics are
        STATS (memtable.EMPTY_STATS). Their bytes are copied as they are; as for add_packed, the index records
        b"" as a first clustering. One loop with the bloom filter's add inline: this is most of a flush."""
        bloom = self._bloom
        bits, m, k = bloom.bits, bloom.m, bloom.k - 1
        hash64 = mmh3.hash64
        keys, sks, ends, blobs, nbytes = self._keys, self._sks, self._ends, self._blobs, self._bytes
        first_sk = self._min_sk
        partitions = 0
        for sk, (key, blob) in items:
            h1, h2 = hash64(key, 0, True, False)
            b = h1 % m
            step = (h2 | 1) % m
            bits[b >> 3] |= 1 << (b & 7)
            for _ in range(k):
                b += step
                if b >= m:
                    b -= m
                bits[b >> 3] |= 1 << (b & 7)
            if not keys:
                self._first = (sk, b"")
                if first_sk is None:
                    first_sk = sk
            keys.append(key)
            sks.append(sk)
            blobs.append(blob)
            nbytes += len(blob)
            ends.append(nbytes)
            partitions += 1
            if nbytes >= BLOCK_TARGET:
                self._bytes, self._last_sk = nbytes, sk
                self._close_block()
                keys, sks, ends, blobs, nbytes = self._keys, self._sks, self._ends, self._blobs, 0
        self._bytes = nbytes
        if keys:
            self._last_sk = sks[-1]
        self._min_sk = first_sk
        self._partitions += partitions
        rows, cells, tombstones, ttl_cells, min_ts, max_ts, max_ldt = stats
        self._rows += rows
        self._cells += cells
        self._tombstones += tombstones
        self._ttl_cells += ttl_cells
        self._min_ts, self._max_ts = min(self._min_ts, min_ts), max(self._max_ts, max_ts)
        self._max_ldt = max(self._max_ldt, max_ldt)

    def add_packed(self, sk: bytes, key: bytes, blob: bytes, source: dict) -> None:
        """Append a whole partition given as one packed fragment, copied as it is from another SSTable whose
        statistics are SOURCE (compaction). Only for data with no tombstone and no TTL. The blob is not decoded:
        its timestamps count through SOURCE's bounds, its rows and cells as SOURCE's average partition, and the
        index records b"" as its first clustering if it opens a block (readers use a block's first clustering only
        inside a partition that spans blocks, which a single fragment does not)."""
        self._partitions += 1
        self._bloom.add(hashes(key))
        if self._min_sk is None:
            self._min_sk = sk
        copied = self._copied.get(id(source))
        if copied is None:
            self._copied[id(source)] = [source, 1]
        else:
            copied[1] += 1
        self._add_fragment(sk, key, None, b"", blob, 0)
        if self._bytes >= BLOCK_TARGET:
            self._close_block()

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
        self._ends.append(self._bytes)
        self._rows += rows
        self._last_sk = sk

    def _close_block(self) -> None:
        if not self._keys:
            return
        n = len(self._keys)
        key_ends = []
        end = 0
        for key in self._keys:
            end += len(key)
            key_ends.append(end)
        ends = struct.pack(f">{2 * n}I", *key_ends, *self._ends)
        tokens = b"".join([sk[:8] for sk in self._sks])
        payload = b"".join([BLOCK_COUNT.pack(n), tokens, ends, *self._keys, *self._blobs])
        assert self._first is not None
        self.first_sks.append(self._first[0])
        self.first_cks.append(self._first[1])
        self.last_sks.append(self._last_sk)
        self.offsets.append(self._offset)
        record = BLOCK_HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        self._data.write(record)
        self._offset += len(record)
        self._keys, self._sks, self._ends, self._blobs = [], [], [], []
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
        parts = {
            "Index.db": seal(index),
            "Filter.db": seal(msgpack.packb(self._bloom.to_bytes())),
            "Statistics.db": seal(msgpack.packb(stats)),
            "TOC.txt": ("\n".join(component_name(self.generation, c) for c in COMPONENTS) + "\n").encode(),
        }
        for component, data in parts.items():
            tmp = self.directory / (component_name(self.generation, component) + ".tmp")
            with open(tmp, "wb") as f:
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

    def abort(self) -> None:
        """Remove whatever this writer left behind."""
        if not self._data.closed:
            self._data.close()
        for component in COMPONENTS:
            for name in (component_name(self.generation, component) + ".tmp", component_name(self.generation, component)):
                (self.directory / name).unlink(missing_ok=True)
