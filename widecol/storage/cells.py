"""Cells, deletions and the one merge rule.

How this works. A cell is a plain tuple `(timestamp, value, ldt, ttl)`:
- a live cell has `value` bytes; with `ttl > 0` it expires at `ldt` (local seconds), else `ldt` is 0;
- a tombstone has `value None` and `ldt` = the local time of the deletion (for gc_grace).
A deletion (partition, row, range or collection) is `(timestamp, ldt)`; it shadows every cell whose timestamp is
less than or equal to its own (tombstones win ties).

`reconcile(a, b)` is the one merge rule: higher timestamp wins; on a tie a tombstone wins, then the greater value,
then the later local time (expiry or deletion), then the greater TTL, so that the rule is a total order. It is
commutative, associative and idempotent, so memtables, SSTable reads, compaction, replica reconciliation, read
repair and hints may apply it in any order and agree.

Cells are keyed inside a row by a column key (bytes): the column name in UTF-8 for a simple column, name + 0x00 +
path for an element of a non-frozen collection, and b"" for the row marker (the liveness of the primary key that an
INSERT writes). A tombstone cell at `name + 0x00` (empty path) is a collection deletion: it shadows every element
of that collection written at or before its timestamp.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

Cell = tuple  # (timestamp: int, value: bytes | None, ldt: int, ttl: int)
Deletion = tuple  # (timestamp: int, ldt: int)
RangeTombstone = tuple  # (start: bytes | None, end: bytes | None, timestamp: int, ldt: int): [start, end)
ROW_MARKER = b""
COMPLEX_SEP = b"\x00"






def reconcile(a: Cell, b: Cell) -> Cell:
    """The one merge rule: which of two versions of the same cell survives."""
    if a[0] != b[0]:
        return a if a[0] > b[0] else b
    if (a[1] is None) != (b[1] is None):
        return a if a[1] is None else b
    if a[1] is not None and a[1] != b[1]:
        return a if a[1] > b[1] else b
    return a if (a[2], a[3]) >= (b[2], b[3]) else b


def newer_deletion(a: Deletion | None, b: Deletion | None) -> Deletion | None:
    """The deletion that shadows more: the higher timestamp, then the later local time."""
    if a is None:
        return b
    if b is None:
        return a
    return a if tuple(a) >= tuple(b) else b






def range_deletion_at(ck: bytes, ranges: Iterable[RangeTombstone]) -> int | None:
    """The highest timestamp among range tombstones [start, end) that cover clustering CK, or None."""
    best = None
    for start, end, ts, _ldt in ranges:
        if (start is None or start <= ck) and (end is None or ck < end) and (best is None or ts > best):
            best = ts
    return best


def collection_of(colkey: bytes) -> bytes | None:
    """The collection-deletion key (name + 0x00) of an element's column key, or None for a simple column."""
    i = colkey.find(COMPLEX_SEP)
    if i < 0 or i == len(colkey) - 1:
        return None
    return colkey[: i + 1]


def merge_row_into(into: list, rowdel: Deletion | None, cells: dict) -> None:
    """Merge one row version (deletion, cells) into INTO = [deletion, cells], by the one rule."""
    if rowdel is not None:
        into[0] = newer_deletion(into[0], rowdel)
    target = into[1]
    for colkey, cell in cells.items():
        old = target.get(colkey)
        target[colkey] = cell if old is None else reconcile(old, cell)


def shadow_row(rowdel_ts: int | None, cells: dict, now: int, purge_before: int | None = None) -> dict:
    """The cells of a row that no deletion shadows, with collection deletions applied.

    ROWDEL_TS is the highest timestamp among the partition, row and covering range deletions (None if none).
    With PURGE_BEFORE None (a read), tombstones and expired cells are removed: what is left is live data.
    With PURGE_BEFORE set (compaction), tombstones are kept unless their ldt is before PURGE_BEFORE, and expired
    cells become tombstones (kept for gc_grace after expiry).
    """
    complex_dels = None
    for colkey, cell in cells.items():
        if cell[1] is None and colkey.endswith(COMPLEX_SEP) and colkey.find(COMPLEX_SEP) == len(colkey) - 1:
            if complex_dels is None:
                complex_dels = {}
            complex_dels[colkey] = cell[0]
    out = {}
    for colkey, cell in cells.items():
        ts = cell[0]
        if rowdel_ts is not None and ts <= rowdel_ts:
            continue
        if complex_dels is not None:
            coll = collection_of(colkey)
            if coll is not None and coll in complex_dels and ts <= complex_dels[coll]:
                continue
        if purge_before is None:
            if cell[1] is not None and (cell[3] == 0 or cell[2] > now):
                out[colkey] = cell
        elif cell[1] is None:
            if cell[2] >= purge_before:
                out[colkey] = cell
        elif cell[3] != 0 and cell[2] <= now:
            if cell[2] >= purge_before:
                out[colkey] = (ts, None, cell[2], 0)
        else:
            out[colkey] = cell
    return out




def cells_from_wire(items: Iterable[Any]) -> dict:
    return {c[0]: (c[1], c[2], c[3], c[4]) for c in items}
