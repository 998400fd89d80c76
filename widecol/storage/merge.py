"""Merging versions of a partition from several sources by the one rule, for reads and for compaction.

A version is `(deletion, ranges, rows)` as memtables and SSTables return it (rows: (ck, row deletion, cells)).
`merge_versions` reconciles them into one raw partition that still holds its tombstones (what a replica sends and
read repair compares); `live_rows` turns a raw partition into what a client sees at a given time; `purge` turns it
into what compaction writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from widecol.storage.cells import merge_row_into, newer_deletion, range_deletion_at, shadow_row

RawPartition = tuple  # (deletion, ranges, rows dict ck -> [row deletion, cells dict])


def merge_versions(versions: Iterable[tuple]) -> RawPartition:
    """Reconcile VERSIONS into one raw partition. Takes ownership of the versions' cells dicts."""
    deletion = None
    ranges: list = []
    rows: dict = {}
    for d, rs, vrows in versions:
        if d is not None:
            deletion = newer_deletion(deletion, d)
        if rs:
            ranges.extend(rs)
        for ck, rowdel, cells in vrows:
            cur = rows.get(ck)
            if cur is None:
                rows[ck] = [rowdel, cells]
            else:
                merge_row_into(cur, rowdel, cells)
    return deletion, ranges, rows


def _deletion_ts(deletion: tuple | None, rowdel: tuple | None, ck: bytes, ranges: list) -> int | None:
    best = deletion[0] if deletion is not None else None
    if rowdel is not None and (best is None or rowdel[0] > best):
        best = rowdel[0]
    if ranges:
        r = range_deletion_at(ck, ranges)
        if r is not None and (best is None or r > best):
            best = r
    return best


def live_row(raw: RawPartition, ck: bytes, now: int) -> dict:
    """The live cells of row CK of RAW at local time NOW (empty if the row is deleted or absent)."""
    deletion, ranges, rows = raw
    rowdel, cells = rows[ck]
    return shadow_row(_deletion_ts(deletion, rowdel, ck, ranges), cells, now)


def purge(raw: RawPartition, now: int, purge_before: int | None) -> tuple | None:
    """What compaction writes for RAW: shadowed data dropped, expired cells turned into tombstones, and tombstones
    whose local deletion time is before PURGE_BEFORE dropped (None: keep every tombstone). Returns (deletion,
    ranges, rows list sorted by clustering), or None when nothing is left."""
    deletion, ranges, rows = raw
    original_deletion = deletion
    floor = purge_before if purge_before is not None else -(1 << 62)
    if deletion is not None and deletion[1] < floor:
        deletion = None
    kept_ranges = []
    for r in ranges:
        if deletion is not None and r[2] <= deletion[0]:
            continue
        if r[3] < floor:
            continue
        kept_ranges.append(r)
    out_rows = []
    for ck in sorted(rows):
        rowdel, cells = rows[ck]
        shadow = _deletion_ts(deletion, None, ck, kept_ranges)
        if rowdel is not None and ((shadow is not None and rowdel[0] <= shadow) or rowdel[1] < floor):
            rowdel = None
        # Cells are shadowed by every deletion, purged or not: data goes no later than its tombstone.
        kept = shadow_row(_deletion_ts(original_deletion, rows[ck][0], ck, ranges), cells, now, floor)
        if kept or rowdel is not None:
            out_rows.append((ck, rowdel, kept))
    if deletion is None and not kept_ranges and not out_rows:
        return None
    kept_ranges.sort(key=lambda r: (r[0] is not None, r[0] or b""))
    return deletion, kept_ranges, out_rows
