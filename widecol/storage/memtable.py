"""The memtable: a table's recent writes in memory, sorted, merged by the one rule as they arrive.

How this works. Partitions live in a dict keyed by their sort key (token, then key: see token.py); a SortedList
of the keys, brought up to date in one batch when an ordered walk needs it (a flush, a token-range scan), gives
SSTable order. New keys wait in a list until then, which keeps a write to a new partition at one dict insert. Inside a partition, rows are a dict by clustering key with
a SortedList of the keys, created when a second row arrives (most partitions of key-value tables have one row, and
need no sorted structure). Every incoming cell is reconciled with the one present by cells.reconcile.

`size` estimates the Python memory the memtable holds (object overheads included, calibrated with tracemalloc; see
docs/storage.md); the table flushes when it passes the limit. Not thread-safe: the table serialises writers, and
readers of the active memtable copy what they need under the table's lock.
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList

from widecol.storage.cells import newer_deletion, reconcile

# Estimated bytes of Python memory, beyond the raw key and value bytes (docs/storage.md, "Memory accounting").
PARTITION_OVERHEAD = 300
ROW_OVERHEAD = 200
CELL_OVERHEAD = 140
RANGE_OVERHEAD = 160


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


class Memtable:
    def __init__(self) -> None:
        self.partitions: dict[bytes, MemPartition] = {}
        self._sorted = SortedList()
        self._unsorted: list[bytes] = []
        self.size = 0
        self.cells = 0
        self.min_timestamp: int | None = None

    def __len__(self) -> int:
        return len(self.partitions)

    def apply(self, sk: bytes, key: bytes, deletion: list | None, ranges: list, rows: list) -> None:
        """Merge one mutation (in wire form, see mutation.py) into partition SK."""
        partition = self.partitions.get(sk)
        size = 0
        if partition is None:
            partition = MemPartition(key)
            self.partitions[sk] = partition
            self._unsorted.append(sk)
            size += PARTITION_OVERHEAD + len(key)
        min_ts = self.min_timestamp
        if deletion is not None:
            partition.deletion = newer_deletion(partition.deletion, (deletion[0], deletion[1]))
            if min_ts is None or deletion[0] < min_ts:
                min_ts = deletion[0]
        for start, end, ts, ldt in ranges:
            partition.ranges.append((start, end, ts, ldt))
            size += RANGE_OVERHEAD + (len(start) if start else 0) + (len(end) if end else 0)
            if min_ts is None or ts < min_ts:
                min_ts = ts
        prows = partition.rows
        for ck, rowdel, cells in rows:
            row = prows.get(ck)
            if row is None:
                row = [None, {}]
                prows[ck] = row
                size += ROW_OVERHEAD + len(ck)
                if partition.order is not None:
                    partition.order.add(ck)
                elif len(prows) > 1:
                    partition.order = SortedList(prows)
            if rowdel is not None:
                row[0] = newer_deletion(row[0], (rowdel[0], rowdel[1]))
                if min_ts is None or rowdel[0] < min_ts:
                    min_ts = rowdel[0]
            target = row[1]
            for colkey, ts, value, ldt, ttl in cells:
                new = (ts, value, ldt, ttl)
                old = target.get(colkey)
                if old is None:
                    target[colkey] = new
                    size += CELL_OVERHEAD + len(colkey) + (len(value) if value is not None else 0)
                    self.cells += 1
                else:
                    target[colkey] = reconcile(old, new)
                if min_ts is None or ts < min_ts:
                    min_ts = ts
        self.min_timestamp = min_ts
        self.size += size

    def get(self, sk: bytes) -> MemPartition | None:
        return self.partitions.get(sk)

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

    def items(self) -> Iterator[tuple[bytes, MemPartition]]:
        """(sort key, partition) in order. The memtable must not change meanwhile (it is frozen when flushed)."""
        partitions = self.partitions
        return ((sk, partitions[sk]) for sk in sorted(partitions))


def rows_of(
    partition: MemPartition, start: bytes | None, end: bytes | None, reverse: bool, limit: int | None = None
) -> list[tuple]:
    """(ck, row deletion, cells) of PARTITION's rows in [START, END), at most LIMIT, copied for the caller."""
    rows = partition.rows
    keys = partition.clusterings(start, end, reverse)
    if limit is not None:
        keys = keys[:limit]
    return [(ck, rows[ck][0], dict(rows[ck][1])) for ck in keys]
