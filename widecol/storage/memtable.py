"""The memtable: a table's recent writes in memory, sorted, merged by the one rule as they arrive.

How this works. Partitions live in a dict keyed by their sort key (token, then key: see token.py); a SortedList
of the keys, brought up to date in one batch when an ordered walk needs it (a flush, a token-range scan), gives
SSTable order. New keys wait in a list until then, which keeps a write to a new partition at one dict insert.

A partition is held in one of two forms:
- **packed form**, a tuple `(key, fragment)`: the rows of the single mutation that created it, packed once at
  apply time as the SSTable fragment `[None, [], rows]` they will be flushed as (docs/formats.md), when they are
  already canonical: no partition or range deletion, rows in strictly increasing clustering order, each row's
  cells in strictly increasing column-key order, and small enough for one fragment. Most partitions of a
  write-heavy table are written once: this form costs one dict insert to apply, holds two objects instead of a
  dozen lists, and is flushed by copying its bytes. Its statistics (rows, cells, tombstones, TTL cells, timestamp
  bounds) are summed into `wire_stats` as it is applied, so a flush does not decode it. It is unpacked only to be
  read or merged with a second mutation.
- **merged form**, a MemPartition: a dict of rows by clustering key (with a SortedList of the keys once a second
  row arrives), each row a [deletion, {column key: cell}] merged by cells.reconcile. A packed partition is
  turned into this form when a second mutation reaches it.

`size` estimates the Python memory the memtable holds (object overheads included, calibrated with tracemalloc; see
docs/storage.md): a merged partition by its rows and cells, a packed one by its key and fragment bytes
(packed_size); promoting a partition charges the difference. The table flushes when it passes the limit.
Not thread-safe: the table serialises writers, and readers of the active memtable copy what they need under the
table's lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from operator import itemgetter

import msgpack
from sortedcontainers import SortedList

from widecol.storage.cells import newer_deletion, reconcile
from widecol.storage.sstable.format import BLOCK_TARGET

# Estimated bytes of Python memory, beyond the raw key and value bytes (docs/storage.md, "Memory accounting").
PARTITION_OVERHEAD = 300
ROW_OVERHEAD = 200
CELL_OVERHEAD = 140
RANGE_OVERHEAD = 160
# A packed partition: its sort key, key and fragment bytes objects, the tuple, the dict entry and the sorted list's
# slot. tracemalloc measures about 225 bytes beyond the key (twice: in the sort key too) and the fragment (383 in
# all for a 16-byte key and a 100-byte value). Charged 440: about 600 for that row, 1.5 times the truth (the merged
# form's figures charge it 897), which keeps the peak memory of bench/storage.py where it was while a memtable
# holds half as many rows again before it is flushed.
PACKED_OVERHEAD = 440

_first = itemgetter(0)
_NO_TS = 1 << 63
# wire_stats: rows, cells, tombstones, TTL cells, min timestamp, max timestamp, max local deletion time
EMPTY_STATS = (0, 0, 0, 0, _NO_TS, -_NO_TS, 0)
Version = tuple  # (deletion, ranges, rows): rows = [(ck, row deletion, cells dict), ...], as merge.py takes them


def wire_size(key: bytes, rows: list) -> int:
    """The estimated size of a partition holding exactly ROWS (wire form) if they are canonical (see above), else
    -1. The estimate equals what the merged form would account for the same rows."""
    size = PARTITION_OVERHEAD + len(key)
    prev_ck = None
    for ck, _rowdel, cells in rows:
        if prev_ck is not None and ck <= prev_ck:
            return -1
        prev_ck = ck
        size += ROW_OVERHEAD + len(ck)
        prev = None
        for cell in cells:
            colkey = cell[0]
            if prev is not None and colkey <= prev:
                return -1
            prev = colkey
            value = cell[2]
            size += CELL_OVERHEAD + len(colkey) + (len(value) if value is not None else 0)
    return size


def packed_size(key: bytes, fragment: bytes) -> int:
    """The estimated size of a partition in packed form."""
    return PACKED_OVERHEAD + 2 * len(key) + len(fragment)


def fragment_stats(rows: list) -> tuple:
    """The wire_stats contribution of canonical wire-form ROWS (see EMPTY_STATS)."""
    cells_count = tombstones = ttl_cells = max_ldt = 0
    min_ts, max_ts = _NO_TS, -_NO_TS
    for _ck, rowdel, cells in rows:
        if rowdel is not None:
            tombstones += 1
            min_ts, max_ts, max_ldt = min(min_ts, rowdel[0]), max(max_ts, rowdel[0]), max(max_ldt, rowdel[1])
        cells_count += len(cells)
        for _colkey, ts, value, ldt, ttl in cells:
            if ts < min_ts:
                min_ts = ts
            if ts > max_ts:
                max_ts = ts
            if ldt > max_ldt:
                max_ldt = ldt
            if value is None:
                tombstones += 1
            elif ttl:
                ttl_cells += 1
    return len(rows), cells_count, tombstones, ttl_cells, min_ts, max_ts, max_ldt


def pack_fragment(rows: list) -> bytes | None:
    """Canonical wire-form ROWS packed as one SSTable fragment, or None when they are too big for one block (a
    wide partition, which the flush splits across blocks from the merged form)."""
    fragment = msgpack.packb([None, [], rows])
    return None if len(fragment) > BLOCK_TARGET and len(rows) > 1 else fragment


def unpack_rows(fragment: bytes) -> list:
    """The wire-form rows of a packed partition (fresh lists)."""
    return msgpack.unpackb(fragment)[2]


class MemPartition:
    __slots__ = ("key", "deletion", "ranges", "rows", "order")

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.deletion: tuple | None = None
        self.ranges: list[tuple] = []
        self.rows: dict[bytes, list] = {}
        self.order: SortedList | None = None

    def clusterings(self, start: bytes | None, end: bytes | None, reverse: bool) -> list[bytes]:
        """The clustering keys in [START, END), in order (reversed if REVERSE)."""
        if self.order is None:
            keys = [ck for ck in self.rows if (start is None or ck >= start) and (end is None or ck < end)]
            keys.sort(reverse=reverse)
            return keys
        lo = 0 if start is None else self.order.bisect_left(start)
        hi = len(self.order) if end is None else self.order.bisect_left(end)
        keys = list(self.order.islice(lo, hi))
        if reverse:
            keys.reverse()
        return keys

    def merge(self, deletion: list | None, ranges: list, rows: list) -> tuple[int, int]:
        """Merge one mutation's parts (wire form) by the one rule: (bytes of new data, new cells)."""
        size = cells_added = 0
        if deletion is not None:
            self.deletion = newer_deletion(self.deletion, (deletion[0], deletion[1]))
        for start, end, ts, ldt in ranges:
            self.ranges.append((start, end, ts, ldt))
            size += RANGE_OVERHEAD + (len(start) if start else 0) + (len(end) if end else 0)
        prows = self.rows
        for ck, rowdel, cells in rows:
            row = prows.get(ck)
            if row is None:
                row = [None, {}]
                prows[ck] = row
                size += ROW_OVERHEAD + len(ck)
                if self.order is not None:
                    self.order.add(ck)
                elif len(prows) > 1:
                    self.order = SortedList(prows)
            if rowdel is not None:
                row[0] = newer_deletion(row[0], (rowdel[0], rowdel[1]))
            target = row[1]
            for colkey, ts, value, ldt, ttl in cells:
                new = (ts, value, ldt, ttl)
                old = target.get(colkey)
                if old is None:
                    target[colkey] = new
                    size += CELL_OVERHEAD + len(colkey) + (len(value) if value is not None else 0)
                    cells_added += 1
                else:
                    target[colkey] = reconcile(old, new)
        return size, cells_added


def _merged(key: bytes, fragment: bytes) -> MemPartition:
    """A packed partition in merged form."""
    p = MemPartition(key)
    p.merge(None, [], unpack_rows(fragment))
    return p


class Memtable:
    def __init__(self) -> None:
        self.partitions: dict[bytes, MemPartition | tuple] = {}
        self._sorted = SortedList()
        self._unsorted: list[bytes] = []
        self.size = 0
        self.cells = 0
        self.wire_stats = EMPTY_STATS  # of the partitions in packed form
        self.merged = 0  # partitions in merged form: with none, a flush only copies packed bytes

    def __len__(self) -> int:
        return len(self.partitions)

    def apply(
        self, sk: bytes, key: bytes, deletion: list | None, ranges: list, rows: list, size: int = -2,
        fragment: bytes | None = None, stats: tuple = EMPTY_STATS,
    ) -> None:
        """Merge one mutation (in wire form, see mutation.py) into partition SK. SIZE, FRAGMENT and STATS, when the
        caller has them (computed outside the engine lock), are packed_size(key, fragment), FRAGMENT =
        pack_fragment(rows) and fragment_stats(rows), or -1, None, EMPTY_STATS when the rows are not canonical."""
        partitions = self.partitions
        partition = partitions.get(sk)
        if partition is None:
            if deletion is None and not ranges:
                if size == -2:
                    size = wire_size(key, rows)
                    if size >= 0:
                        fragment = pack_fragment(rows)
                        stats = fragment_stats(rows)
                        if fragment is not None:
                            size = packed_size(key, fragment)
                if size >= 0 and fragment is not None:
                    partitions[sk] = (key, fragment)
                    self._unsorted.append(sk)
                    self.size += size
                    self.cells += stats[1]
                    self._add_stats(stats)
                    return
            partition = MemPartition(key)
            partitions[sk] = partition
            self.merged += 1
            self._unsorted.append(sk)
            self.size += PARTITION_OVERHEAD + len(key)
        elif isinstance(partition, tuple):
            partition_fragment = partition[1]
            old_rows = unpack_rows(partition_fragment)
            r, c, t, ttl = fragment_stats(old_rows)[:4]  # its counts leave wire_stats (the bounds stay: wider)
            w = self.wire_stats
            self.wire_stats = (w[0] - r, w[1] - c, w[2] - t, w[3] - ttl, *w[4:])
            partition = MemPartition(key)
            merged, _ = partition.merge(None, [], old_rows)
            self.size += PARTITION_OVERHEAD + len(key) + merged - packed_size(key, partition_fragment)
            partitions[sk] = partition
            self.merged += 1
        added, cells = partition.merge(deletion, ranges, rows)
        self.size += added
        self.cells += cells

    def apply_packed(self, sks: list[bytes], parts: list[tuple[bytes, bytes]], size: int, stats: tuple) -> bool:
        """Add new partitions in packed form: SKS[i] holds PARTS[i] = (key, fragment), canonical rows packed as
        pack_fragment would; SIZE is the sum of their packed_size and STATS the sum of their fragment_stats. Returns
        False, changing nothing, if a sort key is repeated or already present (then apply() them one by one).
        The cost is a few C-level passes over the lists, no Python code per partition."""
        new = dict(zip(sks, parts, strict=True))
        partitions = self.partitions
        if len(new) != len(sks) or not partitions.keys().isdisjoint(new):
            return False
        partitions.update(new)
        self._unsorted += sks
        self.size += size
        self.cells += stats[1]
        self._add_stats(stats)
        return True

    def _add_stats(self, stats: tuple) -> None:
        w = self.wire_stats
        self.wire_stats = (
            w[0] + stats[0], w[1] + stats[1], w[2] + stats[2], w[3] + stats[3],
            w[4] if w[4] < stats[4] else stats[4], w[5] if w[5] > stats[5] else stats[5],
            w[6] if w[6] > stats[6] else stats[6],
        )

    def get(self, sk: bytes) -> MemPartition | None:
        """Partition SK in merged form (a copy for a packed partition), or None."""
        p = self.partitions.get(sk)
        return _merged(*p) if isinstance(p, tuple) else p

    def key_of(self, sk: bytes) -> bytes:
        p = self.partitions[sk]
        return p[0] if isinstance(p, tuple) else p.key

    def version(
        self, sk: bytes, start: bytes | None = None, end: bytes | None = None, reverse: bool = False,
        limit: int | None = None,
    ) -> Version | None:
        """Partition SK's (deletion, ranges, rows in [START, END)), copied for the caller, or None."""
        p = self.partitions.get(sk)
        if p is None:
            return None
        if isinstance(p, tuple):
            out = []
            rows = unpack_rows(p[1])
            for ck, rowdel, cells in reversed(rows) if reverse else rows:
                if (start is None or ck >= start) and (end is None or ck < end):
                    out.append((ck, None if rowdel is None else (rowdel[0], rowdel[1]),
                                {c[0]: (c[1], c[2], c[3], c[4]) for c in cells}))
                    if limit is not None and len(out) >= limit:
                        break
            return None, [], out
        return p.deletion, list(p.ranges), rows_of(p, start, end, reverse, limit)

    def may_contain(self, sk: bytes) -> bool:
        return sk in self.partitions

    def _ordered(self) -> SortedList:
        if self._unsorted:
            self._sorted.update(self._unsorted)
            self._unsorted = []
        return self._sorted

    def sort_keys(self, lo: bytes | None, hi: bytes | None) -> list[bytes]:
        """Sort keys in (LO, HI]: greater than LO, at most HI (None: unbounded), in order."""
        ordered = self._ordered()
        i = 0 if lo is None else ordered.bisect_right(lo)
        j = len(ordered) if hi is None else ordered.bisect_right(hi)
        return list(ordered.islice(i, j))

    def entries(self) -> Iterator[tuple[bytes, MemPartition | tuple]]:
        """(sort key, partition in either form) in order. The memtable must not change meanwhile (it is frozen when
        flushed)."""
        # Sorting the items walks the dict's entries in memory order, where looking each sorted key up would jump
        # around the heap: twice as fast on a memtable of 100,000 partitions.
        return iter(sorted(self.partitions.items(), key=_first))

    def items(self) -> Iterator[tuple[bytes, MemPartition]]:
        """(sort key, partition in merged form) in order; see entries()."""
        return ((sk, _merged(*p) if isinstance(p, tuple) else p) for sk, p in self.entries())


def rows_of(
    partition: MemPartition, start: bytes | None, end: bytes | None, reverse: bool, limit: int | None = None
) -> list[tuple]:
    """(ck, row deletion, cells) of PARTITION's rows in [START, END), at most LIMIT, copied for the caller."""
    rows = partition.rows
    keys = partition.clusterings(start, end, reverse)
    if limit is not None:
        keys = keys[:limit]
    return [(ck, rows[ck][0], dict(rows[ck][1])) for ck in keys]
