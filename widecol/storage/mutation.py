"""Mutation: every change to one partition of one table, as the engine applies it.

A mutation is kept in its wire form (lists of plain values), so the commit log, the internode messages and hints
carry it with no conversion:

    [table_id, key, deletion, ranges, rows]
    deletion = [timestamp, ldt] or None                  partition deletion
    ranges   = [[start, end, timestamp, ldt], ...]        clustering-range deletions over [start, end)
    rows     = [[clustering, row_deletion, cells], ...]   row_deletion = [timestamp, ldt] or None
    cells    = [[colkey, timestamp, value, ldt, ttl], ...] value None is a tombstone

The builder methods below are what callers use; they compute ldt from the NOW they are given (local seconds).

`plain` is a summary that put() leaves when it built the whole mutation as one row the memtable can hold in packed
form (memtable.py): well-typed, no deletions, column keys in strictly increasing order. The engine then skips
its per-cell checks and walk (prepare.prepare_plain). Every other builder method clears it; code that changes a
built mutation other than through these methods must clear it too (none does: mutations are built, then applied
or sent).
"""

from __future__ import annotations

from typing import Any

from widecol.storage.cells import COMPLEX_SEP, ROW_MARKER


class Mutation:
    __slots__ = ("table_id", "key", "deletion", "ranges", "rows", "_rows_by_ck", "plain")

    def __init__(
        self,
        table_id: str,
        key: bytes,
        deletion: list | None = None,
        ranges: list | None = None,
        rows: list | None = None,
    ) -> None:
        self.table_id = table_id
        self.key = key
        self.deletion = deletion
        self.ranges = ranges if ranges is not None else []
        self.rows = rows if rows is not None else []
        self._rows_by_ck: dict[bytes, list] | None = None
        self.plain: tuple | None = None  # (timestamp, ldt, ttl, cells, tombstones): see above

    # -- building ------------------------------------------------------------------------------------------------

    def _row(self, clustering: bytes) -> list:
        self.plain = None
        if self._rows_by_ck is None:
            self._rows_by_ck = {r[0]: r for r in self.rows}
        row = self._rows_by_ck.get(clustering)
        if row is None:
            row = [clustering, None, []]
            self.rows.append(row)
            self._rows_by_ck[clustering] = row
        return row

    def set(
        self, clustering: bytes, column: bytes, value: bytes, timestamp: int, now: int = 0, ttl: int = 0
    ) -> Mutation:
        """Write VALUE to COLUMN (a column key: see cells.py) of the row CLUSTERING."""
        self._row(clustering)[2].append([column, timestamp, value, now + ttl if ttl else 0, ttl])
        return self

    def put(
        self, clustering: bytes, columns: dict[bytes, bytes], timestamp: int, now: int = 0, ttl: int = 0
    ) -> Mutation:
        """An INSERT: the row marker plus every column of COLUMNS."""
        ldt = now + ttl if ttl else 0
        cells = [[ROW_MARKER, timestamp, b"", ldt, ttl]]
        if self.rows:  # a second row, or more cells for a row: the general form (_row clears plain)
            for column, value in columns.items():
                cells.append([column, timestamp, value, ldt, ttl])
            self._row(clustering)[2].extend(cells)
            return self
        self.rows.append([clustering, None, cells])
        # This is every INSERT's path: one loop builds the cells and checks what plain promises.
        plain = (
            type(clustering) is bytes and type(timestamp) is int and type(ttl) is int and ttl >= 0
            and type(ldt) is int and self.deletion is None and not self.ranges
        )
        prev = ROW_MARKER
        tombstones = 0
        for column, value in columns.items():
            cells.append([column, timestamp, value, ldt, ttl])
            if plain:
                if type(column) is not bytes or column <= prev:
                    plain = False
                elif type(value) is not bytes:
                    if value is None:
                        tombstones += 1
                    else:
                        plain = False
                prev = column
        if plain:
            self.plain = (timestamp, ldt, ttl, len(cells), tombstones)
        return self

    def delete_cell(self, clustering: bytes, column: bytes, timestamp: int, now: int) -> Mutation:
        self._row(clustering)[2].append([column, timestamp, None, now, 0])
        return self

    def delete_collection(self, clustering: bytes, column: bytes, timestamp: int, now: int) -> Mutation:
        """Delete every element of non-frozen collection COLUMN written at or before TIMESTAMP."""
        return self.delete_cell(clustering, column + COMPLEX_SEP, timestamp, now)

    def delete_row(self, clustering: bytes, timestamp: int, now: int) -> Mutation:
        self._row(clustering)[1] = [timestamp, now]
        return self

    def delete_range(self, start: bytes | None, end: bytes | None, timestamp: int, now: int) -> Mutation:
        """Delete the clustering range [START, END) (None: unbounded)."""
        self.plain = None
        self.ranges.append([start, end, timestamp, now])
        return self

    def delete_partition(self, timestamp: int, now: int) -> Mutation:
        self.plain = None
        self.deletion = [timestamp, now]
        return self

    # -- wire form -------------------------------------------------------------------------------------------------

    def to_wire(self) -> list:
        return [self.table_id, self.key, self.deletion, self.ranges, self.rows]

    @classmethod
    def from_raw(cls, table_id: str, key: bytes, raw: tuple) -> Mutation:
        """The mutation that carries raw partition RAW (merge.RawPartition: deletion, ranges, rows by
        clustering), tombstones included, rows in clustering order: what a replica sends for a read."""
        deletion, ranges, rows = raw
        wire_rows = []
        for ck in sorted(rows):
            rowdel, cells = rows[ck]
            wire_rows.append([ck, None if rowdel is None else list(rowdel),
                              [[colkey, *cell] for colkey, cell in sorted(cells.items())]])
        return cls(table_id, key, None if deletion is None else list(deletion), [list(r) for r in ranges],
                   wire_rows)

    @classmethod
    def from_wire(cls, item: Any) -> Mutation:
        table_id, key, deletion, ranges, rows = item
        if not isinstance(key, bytes) or not isinstance(table_id, str):
            raise ValueError("malformed mutation")
        return cls(table_id, key, deletion, ranges, rows)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mutation) and self.to_wire() == other.to_wire()

    def __repr__(self) -> str:
        return f"Mutation({self.table_id!r}, {self.key!r}, rows={len(self.rows)}, ranges={len(self.ranges)})"
