"""SSTableWriter: streams sorted partitions into a new SSTable, durable and renamed into place on finish().

How this works. Partitions arrive in sort-key order with their rows in clustering order. Rows are packed one by one
into the current block's payload; a block is closed when it passes BLOCK_TARGET bytes, so a wide partition spans
several blocks (its header, with the partition and range deletions, stays in the first). For each block the index
records the first sort key and clustering and the last sort key, which is all a reader needs to find the blocks of
a partition or of a clustering slice by bisection. Components are written under .tmp names, fsynced, then renamed;
the caller makes the SSTable live by listing it in the table's manifest.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path

import msgpack

from widecol.storage.cells import wire_cells
from widecol.storage.sstable.bloom import BloomFilter, hashes
from widecol.storage.sstable.format import (
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

_ARRAY16 = struct.Struct(">BH")
_ARRAY32 = struct.Struct(">BI")


def _array_header(n: int) -> bytes:
    if n < 16:
        return bytes([0x90 | n])
    if n < 65536:
        return _ARRAY16.pack(0xDC, n)
    return _ARRAY32.pack(0xDD, n)


class SSTableWriter:
    def __init__(self, directory: Path, generation: int, expected_partitions: int) -> None:
        self.directory = directory
        self.generation = generation
        self._tmp_data = directory / (component_name(generation, "Data.db") + ".tmp")
        self._data = open(self._tmp_data, "wb")  # noqa: SIM115 - closed in finish/abort
        self._data.write(DATA_HEADER.pack(DATA_MAGIC, FORMAT_VERSION))
        self._offset = DATA_HEADER.size
        self._packer = msgpack.Packer()
        self._bloom = BloomFilter.for_keys(max(1, expected_partitions))
        self._block: list[bytes] = []
        self._block_items = 0
        self._block_bytes = 0
        self._block_first: tuple[bytes, bytes] | None = None
        self._block_last_sk = b""
        self.first_sks: list[bytes] = []
        self.first_cks: list[bytes] = []
        self.last_sks: list[bytes] = []
        self.offsets: list[int] = []
        self.stats = {
            "partitions": 0,
            "rows": 0,
            "cells": 0,
            "tombstones": 0,
            "min_timestamp": None,
            "max_timestamp": None,
            "max_ldt": 0,
            "min_token": None,
            "max_token": None,
        }

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
        stats = self.stats
        stats["partitions"] += 1
        self._bloom.add(hashes(key))
        tok = token_of_sort_key(sk)
        if stats["min_token"] is None:
            stats["min_token"] = tok
        stats["max_token"] = tok
        min_ts, max_ts, max_ldt, tombstones = stats["min_timestamp"], stats["max_timestamp"], stats["max_ldt"], 0
        for ts, ldt in ([deletion] if deletion else []) + [(r[2], r[3]) for r in ranges]:
            tombstones += 1
            min_ts = ts if min_ts is None or ts < min_ts else min_ts
            max_ts = ts if max_ts is None or ts > max_ts else max_ts
            max_ldt = max(max_ldt, ldt)
        header = [key, list(deletion) if deletion else None, [list(r) for r in ranges]]
        pack = self._packer.pack
        packed_rows: list[bytes] = []
        first_ck = None
        emitted = False
        cells_count = 0
        for ck, rowdel, cells in rows:
            if first_ck is None:
                first_ck = ck
            if rowdel is not None:
                tombstones += 1
                min_ts = rowdel[0] if min_ts is None or rowdel[0] < min_ts else min_ts
                max_ts = rowdel[0] if max_ts is None or rowdel[0] > max_ts else max_ts
                max_ldt = max(max_ldt, rowdel[1])
            for c in cells.values():
                ts = c[0]
                min_ts = ts if min_ts is None or ts < min_ts else min_ts
                max_ts = ts if max_ts is None or ts > max_ts else max_ts
                if c[1] is None:
                    tombstones += 1
                if c[2] > max_ldt:
                    max_ldt = c[2]
            cells_count += len(cells)
            row = pack([ck, list(rowdel) if rowdel else None, wire_cells(cells)])
            packed_rows.append(row)
            self._block_bytes += len(row)
            if self._block_bytes >= BLOCK_TARGET:
                self._emit_fragment(sk, header, packed_rows, first_ck)
                emitted = True
                header = [key, None, []]
                packed_rows = []
                first_ck = None
                self._close_block()
        if packed_rows or not emitted:
            self._emit_fragment(sk, header, packed_rows, first_ck)
        stats["cells"] += cells_count
        stats["tombstones"] += tombstones
        stats["min_timestamp"], stats["max_timestamp"], stats["max_ldt"] = min_ts, max_ts, max_ldt
        if self._block_bytes >= BLOCK_TARGET:
            self._close_block()

    def _emit_fragment(self, sk: bytes, header: list, packed_rows: list[bytes], first_ck: bytes | None) -> None:
        self.stats["rows"] += len(packed_rows)
        if self._block_first is None:
            self._block_first = (sk, first_ck if first_ck is not None else b"")
        self._block.append(self._packer.pack(header + [len(packed_rows)]))
        self._block.extend(packed_rows)
        self._block_items += 1 + len(packed_rows)
        self._block_bytes += len(self._block[-1 - len(packed_rows)])
        self._block_last_sk = sk

    def _close_block(self) -> None:
        if not self._block_items:
            return
        payload = _array_header(self._block_items) + b"".join(self._block)
        assert self._block_first is not None
        self.first_sks.append(self._block_first[0])
        self.first_cks.append(self._block_first[1])
        self.last_sks.append(self._block_last_sk)
        self.offsets.append(self._offset)
        record = BLOCK_HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        self._data.write(record)
        self._offset += len(record)
        self._block = []
        self._block_items = 0
        self._block_bytes = 0
        self._block_first = None

    # -- finishing ---------------------------------------------------------------------------------------------------

    def finish(self) -> dict:
        """Write every component durably under its final name. Returns the statistics."""
        self._close_block()
        self._data.flush()
        os.fsync(self._data.fileno())
        self._data.close()
        self.stats["data_size"] = self._offset
        index = msgpack.packb([self.first_sks, self.first_cks, self.last_sks, self.offsets, self._offset])
        parts = {
            "Index.db": seal(index),
            "Filter.db": seal(msgpack.packb(self._bloom.to_bytes())),
            "Statistics.db": seal(msgpack.packb(self.stats)),
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
        return self.stats

    def abort(self) -> None:
        """Remove whatever this writer left behind."""
        if not self._data.closed:
            self._data.close()
        for component in COMPONENTS:
            for name in (component_name(self.generation, component) + ".tmp", component_name(self.generation, component)):
                (self.directory / name).unlink(missing_ok=True)
