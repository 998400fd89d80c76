"""SSTableReader: point reads, clustering slices and sort-key range scans over one SSTable.

How this works. Opening loads the small components (index, bloom filter, statistics) into memory, checking their
CRCs, and keeps the data file open. A partition's blocks are the contiguous run whose [first sort key, last sort
key] contains its sort key, found by bisection; a clustering slice narrows that run further with the blocks' first
clustering keys. Each block read is CRC-checked: a mismatch raises Corruption naming the file and the offset, so a
damaged block never yields rows. Reads use os.pread on a descriptor held for the reader's life, so they are
thread-safe and survive the file being unlinked by a compaction while a read is in flight.
"""

from __future__ import annotations

import itertools
import os
import struct
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from pathlib import Path

import msgpack

from widecol.errors import Corruption
from widecol.storage.sstable.bloom import BloomFilter
from widecol.storage.sstable.cache import ENTRY_OVERHEAD, KEY_OVERHEAD, BlockCache
from widecol.storage.sstable.format import (
    BLOCK_DIRECTORY,
    BLOCK_HEADER,
    COMPONENTS,
    DATA_HEADER,
    DATA_MAGIC,
    FORMAT_VERSION,
    component_name,
    unseal,
)
from widecol.storage.token import partition_sort_key

PartitionData = tuple  # (deletion, ranges, rows): rows = [(ck, rowdel, cells dict), ...]


_UIDS = itertools.count(1)


def _decode(blob: bytes | memoryview) -> PartitionData:
    """A packed fragment as (deletion, ranges, rows), rows being (ck, row deletion, {column key: cell})."""
    deletion, ranges, rows = msgpack.unpackb(blob, use_list=False)
    return deletion, list(ranges), [(r[0], r[1], {c[0]: c[1:] for c in r[2]}) for r in rows]


class SSTableReader:
    def __init__(self, directory: Path, generation: int, cache: BlockCache | None = None) -> None:
        self._fd = -1
        self.uid = next(_UIDS)
        self.cache = cache
        self.directory = directory
        self.generation = generation
        self.data_path = str(directory / component_name(generation, "Data.db"))
        index = self._component("Index.db")
        if not isinstance(index, list) or len(index) != 5:
            raise Corruption(str(directory / component_name(generation, "Index.db")), 0, "index is not a 5-list")
        self.first_sks: list[bytes] = index[0]
        self.first_cks: list[bytes] = index[1]
        self.last_sks: list[bytes] = index[2]
        self.offsets: list[int] = index[3]
        self.data_end: int = index[4]
        self.first_keys = list(zip(self.first_sks, self.first_cks, strict=True))
        # The sort-key bounds (an empty SSTable's admit nothing: no sort key is both >= 0xff and <= b"").
        self._lo: bytes = self.first_sks[0] if self.offsets else b"\xff"
        self._hi: bytes = self.last_sks[-1] if self.offsets else b""
        self.bloom = BloomFilter.from_bytes(self._component("Filter.db"))  # type: ignore[arg-type]
        self._m, self._k1, self._bits = self.bloom.m, self.bloom.k - 1, self.bloom.bits
        self.stats: dict = self._component("Statistics.db")  # type: ignore[assignment]
        # No partition here needs purging or expiry: no tombstone and no TTL cell.
        self.clean = self.stats.get("tombstones", 1) == 0 and self.stats.get("ttl_cells", 1) == 0
        self._fd = os.open(self.data_path, os.O_RDONLY)
        header = os.pread(self._fd, DATA_HEADER.size, 0)
        if len(header) < DATA_HEADER.size or DATA_HEADER.unpack(header) != (DATA_MAGIC, FORMAT_VERSION):
            os.close(self._fd)
            raise Corruption(self.data_path, 0, "bad data file header")
        self.size_on_disk = sum(
            os.path.getsize(directory / component_name(generation, c)) for c in COMPONENTS
        )

    def _component(self, component: str) -> object:
        path = self.directory / component_name(self.generation, component)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise Corruption(str(path), 0, "component missing") from None
        return unseal(data, str(path))

    def retire(self) -> None:
        """This SSTable left the table (compacted away, truncated, dropped): free its cached blocks. Reads already
        in flight still work (the descriptor stays open until the reader is garbage)."""
        if self.cache is not None:
            self.cache.forget(self.uid)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass

    # -- blocks ------------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.offsets)

    def read_block(self, i: int) -> tuple[list[bytes], list[int], memoryview, int]:
        """Block I, checked: (fragment keys, fragment end offsets, fragment bytes, file offset)."""
        offset = self.offsets[i]
        end = self.offsets[i + 1] if i + 1 < len(self.offsets) else self.data_end
        data = os.pread(self._fd, end - offset, offset)
        if len(data) != end - offset:
            raise Corruption(self.data_path, offset, f"block truncated: {len(data)} of {end - offset} bytes")
        length, crc = BLOCK_HEADER.unpack_from(data)
        if length != len(data) - BLOCK_HEADER.size:
            raise Corruption(self.data_path, offset, f"block length {length} does not match the index")
        payload = memoryview(data)[BLOCK_HEADER.size :]
        if zlib.crc32(payload) != crc:
            raise Corruption(self.data_path, offset, "block checksum mismatch")
        try:
            (size,) = BLOCK_DIRECTORY.unpack_from(payload)
            keys, ends = msgpack.unpackb(payload[BLOCK_DIRECTORY.size : BLOCK_DIRECTORY.size + size])
        except (ValueError, TypeError, struct.error, msgpack.UnpackException) as e:
            raise Corruption(self.data_path, offset, f"block directory undecodable: {e}") from None
        return keys, ends, payload[BLOCK_DIRECTORY.size + size :], offset

    def cached_block(self, i: int) -> tuple:
        """Block I as read_block() gives it, through the block cache when the reader has one."""
        cache = self.cache
        if cache is None:
            return self.read_block(i)
        block = cache.get((self.uid, i))
        return self._load_block(i) if block is None else block

    def _load_block(self, i: int) -> tuple:
        """Read block I from the file into the cache."""
        block = self.read_block(i)
        if self.cache is not None:
            self.cache.put((self.uid, i), block, ENTRY_OVERHEAD + len(block[2]) + sum(map(len, block[0])) +
                           KEY_OVERHEAD * len(block[0]))
        return block

    def _fragment(self, block: tuple, index: int) -> PartitionData:
        keys, ends, body, offset = block
        try:
            return _decode(body[ends[index - 1] if index else 0 : ends[index]])
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise Corruption(self.data_path, offset, f"fragment {index} undecodable: {e}") from None

    def _find(self, block: tuple, key: bytes) -> PartitionData | None:
        try:
            index = block[0].index(key)
        except ValueError:
            return None
        return self._fragment(block, index)

    def _blocks_of(self, sk: bytes) -> tuple[int, int]:
        i = bisect_left(self.last_sks, sk)
        j = bisect_right(self.first_sks, sk, lo=i)
        return i, j

    # -- reads -------------------------------------------------------------------------------------------------------

    def may_contain(self, h: tuple[int, int], sk: bytes) -> bool:
        """False if this SSTable certainly has no partition SK (whose bloom hashes are H). The bloom filter's
        probes (bloom.py) are inlined: a read asks this of every SSTable."""
        if not self._lo <= sk <= self._hi:
            return False
        m = self._m
        b = h[0] % m
        bits = self._bits
        if not bits[b >> 3] >> (b & 7) & 1:
            return False
        step = h[1] % m
        for _ in range(self._k1):
            b += step
            if b >= m:
                b -= m
            if not bits[b >> 3] >> (b & 7) & 1:
                return False
        return True

    def get(self, sk: bytes, key: bytes) -> PartitionData | None:
        """The whole partition KEY (sort key SK), or None: partition() without bounds, with a one-block fast path."""
        i = bisect_left(self.last_sks, sk)
        first_sks = self.first_sks
        if i == len(first_sks) or first_sks[i] > sk:
            return None
        if i + 1 < len(first_sks) and first_sks[i + 1] <= sk:
            return self.partition(sk, key)
        block = None if self.cache is None else self.cache.get((self.uid, i))
        if block is None:
            block = self._load_block(i)
        try:
            index = block[0].index(key)
        except ValueError:
            return None
        return self._fragment(block, index)

    def partition(
        self,
        sk: bytes,
        key: bytes,
        start: bytes | None = None,
        end: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> PartitionData | None:
        """Partition KEY's deletion, range deletions and rows in [START, END), or None if it is not here.

        Rows come in clustering order (reversed if REVERSE); with LIMIT, at most that many, the first in that order.
        """
        i, j = self._blocks_of(sk)
        if i >= j:
            return None
        head = self._find(self.cached_block(i), key)
        if head is None:
            return None
        deletion, ranges, first_rows = head
        if j == i + 1 and start is None and end is None and limit is None:
            if reverse:
                first_rows.reverse()
            return head
        lo, hi = i, j
        if start is not None:
            lo = max(i, bisect_right(self.first_keys, (sk, start), i, j) - 1)
        if end is not None:
            hi = max(lo + 1, min(j, bisect_left(self.first_keys, (sk, end), i, j)))
        out: list = []
        for b in range(hi - 1, lo - 1, -1) if reverse else range(lo, hi):
            if b == i:
                rows = first_rows
            else:
                frag = self._find(self.cached_block(b), key)
                rows = frag[2] if frag else []
            for row in reversed(rows) if reverse else rows:
                ck = row[0]
                if (start is None or ck >= start) and (end is None or ck < end):
                    out.append(row)
                    if limit is not None and len(out) >= limit:
                        return deletion, ranges, out
        return deletion, ranges, out

    def fragments(self) -> Iterator[tuple[bytes, bytes, int, bytes, tuple]]:
        """Every fragment in file order: (sort key, key, block number, packed bytes, block). A partition's fragments
        are consecutive; compaction copies the bytes of a partition that needs no merging."""
        for b in range(len(self.offsets)):
            block = self.read_block(b)
            keys, ends, body, _ = block
            start = 0
            for key, end in zip(keys, ends, strict=True):
                yield partition_sort_key(key), key, b, bytes(body[start:end]), block
                start = end

    def decode_fragment(self, blob: bytes, block: tuple) -> PartitionData:
        try:
            return _decode(blob)
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise Corruption(self.data_path, block[3], f"fragment undecodable: {e}") from None


    def scan(self, lo: bytes | None = None, hi: bytes | None = None) -> Iterator[tuple]:
        """(sk, key, deletion, ranges, rows) of every partition with LO < sk <= HI, in order."""
        b = 0 if lo is None else bisect_right(self.last_sks, lo)
        current: list | None = None
        while b < len(self.offsets):
            if hi is not None and self.first_sks[b] > hi:
                break
            block = self.read_block(b)
            for index, key in enumerate(block[0]):
                if current is not None and current[1] == key:
                    current[4].extend(self._fragment(block, index)[2])
                    continue
                if current is not None:
                    yield tuple(current)
                    current = None
                sk = partition_sort_key(key)
                if lo is not None and sk <= lo:
                    continue
                if hi is not None and sk > hi:
                    return
                deletion, ranges, rows = self._fragment(block, index)
                current = [sk, key, deletion, ranges, rows]
            b += 1
        if current is not None:
            yield tuple(current)
