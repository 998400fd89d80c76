"""SELECT: the partitions and rows a query names, decoded, filtered, limited and paged.

How this works. The WHERE clause is sorted by `terms.Where`. If every partition key column is restricted by = or
IN the query reads those partitions (in key order); otherwise it scans the table in token order, within the
token(...) bounds if any. In each partition the clustering restrictions become byte ranges read from the engine
(reversed for an ORDER BY against the table's order); restrictions that cannot become ranges or keys, and those on
other columns, are filters, allowed only with ALLOW FILTERING. Rows are produced lazily as (key, clustering,
values, cells); the static row (clustering b"") is merged into each row of its partition, and a partition with
only static values yields one row. Paging: the page ends after `page_size` rows and the paging state (msgpack)
records the last partition key and clustering returned, and the counts already spent on LIMIT and PER PARTITION
LIMIT, so the next page resumes just after that row.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgpack

from widecol.cql import ast
from widecol.cql.casts import cast_function
from widecol.cql.json_rows import row_json
from widecol.cql.terms import (
    BIGINT,
    FILTERING_MESSAGE,
    INT,
    TableInfo,
    Values,
    Where,
    clustering_ranges,
    in_ranges,
    partition_keys,
)
from widecol.errors import InvalidRequest, ProtocolError
from widecol.schema.clustering import decode_clustering, encode_component
from widecol.schema.model import CLUSTERING, PARTITION_KEY, STATIC
from widecol.schema.types import parse_type
from widecol.storage.token import token

if TYPE_CHECKING:
    from widecol.cql.executor import Executor, Rows

SEP = b"\x00"
TEXT = parse_type("text")


def select(ex: Executor, stmt: ast.Select, params: Any, session: str | None, page_size: int | None,
           paging_state: bytes | None, consistency: str = "ONE") -> Rows:
    """The rows of one SELECT page at CONSISTENCY; `paging_state` is None when no rows are left."""
    from widecol.cql.executor import Rows

    info = ex.table_info(stmt.keyspace, stmt.table, session)
    if page_size is not None and page_size <= 0:
        page_size = None  # the native protocol's "no paging"
    if stmt.json:
        result = select(ex, replace(stmt, json=False), params, session, page_size, paging_state, consistency)
        rows = [(row_json(result.columns, row),) for row in result.rows]
        return Rows([("[json]", TEXT)], rows, result.paging_state)
    if stmt.group_by:
        raise InvalidRequest("GROUP BY is not supported yet")
    values = ex.values(params)
    where = Where.of(info, stmt.where)
    columns, getters, counting = _selection(info, stmt)
    limit = values.integer(stmt.limit, "limit")
    ppl = values.integer(stmt.per_partition_limit, "per partition limit")
    for what, n in (("LIMIT", limit), ("PER PARTITION LIMIT", ppl)):
        if n is not None and n <= 0:
            raise InvalidRequest(f"{what} must be strictly positive")
    keys = None if where.tokens else partition_keys(info, where, values)
    filters: list[ast.Relation] = list(where.others)
    if keys is None:
        filters += [r for rels in where.partition.values() for r in rels]
    ranges, leftover = clustering_ranges(info, where, values)
    filters += leftover
    restricted_ck = bool(where.clustering or where.multi)
    if (filters or (keys is None and restricted_ck)) and not stmt.allow_filtering:
        raise InvalidRequest(FILTERING_MESSAGE)
    reverse = _reverse(info, stmt, keys)
    checks = [_filter(info, values, r) for r in filters]
    state = _State.decode(paging_state)
    plan = _Plan(ex, info, keys, ranges if restricted_ck else [(None, None)], reverse, checks, stmt.distinct,
                 restricted_ck, _token_bounds(info, where, values), consistency)
    if not checks and not counting:
        # Each engine read needs at most this many rows (plus one to tell whether more follow).
        bounds = [n for n in (page_size, None if limit is None else limit - state.total, ppl) if n is not None]
        plan.read_limit = 1 if stmt.distinct else (min(bounds) + 1 if bounds else None)
    rows_iter = plan.rows(state, ppl)
    if counting:
        # An aggregate reads every matching row; LIMIT applies to the one row it returns.
        first, n = None, 0
        for row in rows_iter:
            first = row if first is None else first
            n += 1
        return Rows(columns, [tuple(g(first, n) for g in getters)], None)
    out: list[tuple] = []
    cap = limit - state.total if limit is not None else None
    last = None
    for row in rows_iter:
        if cap is not None and len(out) >= cap:
            break
        if page_size is not None and out and len(out) >= page_size:
            assert last is not None
            next_state = _State(last[0], None if stmt.distinct else last[1], state.total + len(out), last[4])
            return Rows(columns, out, next_state.encode())
        out.append(tuple(g(row, 0) for g in getters))
        last = row
    return Rows(columns, out, None)


class _State:
    """Where a page ended: the last row's partition key and clustering (None: the partition is done), the rows
    returned so far (for LIMIT) and in that partition (for PER PARTITION LIMIT)."""

    def __init__(self, key: bytes | None = None, ck: bytes | None = None, total: int = 0, in_partition: int = 0):
        self.key, self.ck, self.total, self.in_partition = key, ck, total, in_partition

    def encode(self) -> bytes:
        return msgpack.packb([self.key, self.ck, self.total, self.in_partition])

    @classmethod
    def decode(cls, data: bytes | None) -> _State:
        if not data:
            return cls()
        try:
            key, ck, total, in_partition = msgpack.unpackb(data)
        except (ValueError, TypeError, msgpack.ExtraData) as e:
            raise ProtocolError(f"Invalid paging state: {e}") from None
        return cls(key, ck, total, in_partition)


def _reverse(info: TableInfo, stmt: ast.Select, keys: list | None) -> bool:
    if not stmt.order_by:
        return False
    if keys is None:
        raise InvalidRequest("ORDER BY is only supported when the partition key is restricted by an EQ or an IN.")
    flags = set()
    for i, (name, direction) in enumerate(stmt.order_by):
        col = info.column(name)
        if col.kind != CLUSTERING:
            raise InvalidRequest(f"Order by is currently only supported on the clustered columns of the PRIMARY "
                                 f"KEY, got {name}")
        if col.position != i:
            raise InvalidRequest("Order by currently only supports the ordering of columns following their "
                                 "declared order in the PRIMARY KEY")
        flags.add((direction.upper() == "DESC") != col.descending)
    if len(flags) > 1:
        raise InvalidRequest("Unsupported order by relation")
    return flags.pop()


def _token_bounds(info: TableInfo, where: Where, values: Values) -> tuple[int | None, int | None]:
    start = end = None
    for r in where.tokens:
        t = values.token(r.rhs, info)
        if r.op == ">":
            start = t if start is None else max(start, t)
        elif r.op == ">=":
            start = t - 1 if start is None else max(start, t - 1)
        elif r.op == "<":
            end = t - 1 if end is None else min(end, t - 1)
        elif r.op == "<=":
            end = t if end is None else min(end, t)
        elif r.op == "=":
            start, end = t - 1, t
        else:
            raise InvalidRequest(f"Unsupported operator {r.op} on token()")
    return start, end


def _filter(info: TableInfo, values: Values, r: ast.Relation) -> Any:
    """A predicate on a row's values for one relation needing filtering."""
    name = r.lhs.name
    t = info.types[name]
    op = r.op
    if op == "IN":
        wanted = {encode_component(t, v) for v in values.values_in(r.rhs, t, name) if v is not None}
        return lambda row: row.get(name) is not None and encode_component(t, row[name]) in wanted
    if op in ("CONTAINS", "CONTAINS KEY"):
        if not t.is_collection:
            raise InvalidRequest(f"Cannot use {op} on non-collection column {name}")
        if op == "CONTAINS KEY":
            if t.kind != "map":
                raise InvalidRequest(f"Cannot use CONTAINS KEY on non-map column {name}")
            v = values.value(r.rhs, t.key, name)
            return lambda row: row.get(name) is not None and v in row[name]
        v = values.value(r.rhs, t.value if t.kind == "map" else t.element, name)
        if t.kind == "map":
            return lambda row: row.get(name) is not None and v in row[name].values()
        return lambda row: row.get(name) is not None and v in row[name]
    if op not in ("=", "<", "<=", ">", ">="):
        raise InvalidRequest(f"Unsupported operator {op} on column {name}")
    v = values.value(r.rhs, t, name)
    if v is None:
        raise InvalidRequest(f"Unsupported null value for column {name}")
    bound = encode_component(t, v)
    compare = {"=": lambda a: a == bound, "<": lambda a: a < bound, "<=": lambda a: a <= bound,
               ">": lambda a: a > bound, ">=": lambda a: a >= bound}[op]
    return lambda row: row.get(name) is not None and compare(encode_component(t, row[name]))


class _Plan:
    """Produces a query's rows as (key, clustering, values, cells, rows so far in the partition)."""

    def __init__(self, ex: Executor, info: TableInfo, keys: list[bytes] | None, ranges: list[tuple], reverse: bool,
                 checks: list, distinct: bool, restricted_ck: bool, tokens: tuple, consistency: str) -> None:
        self.ex, self.info, self.keys, self.ranges, self.reverse = ex, info, keys, ranges, reverse
        self.checks, self.distinct, self.restricted_ck, self.tokens = checks, distinct, restricted_ck, tokens
        self.read_limit: int | None = None
        self.table = ex.data.table(info.storage_id, consistency)
        self.now = ex.engine.now()

    def rows(self, state: _State, ppl: int | None) -> Iterator[tuple]:
        for key, rows, done in self._partitions(state):
            count = state.in_partition if key == state.key and state.key is not None else 0
            if ppl is not None and count >= ppl:
                continue
            for ck, vals, cells in self._decode(key, rows, done):
                if not all(check(vals) for check in self.checks):
                    continue
                count += 1
                yield key, ck, vals, cells, count
                if self.distinct or (ppl is not None and count >= ppl):
                    break

    def _partitions(self, state: _State) -> Iterator[tuple[bytes, list, bool]]:
        """(key, raw rows incl. the static row, resumed) per partition, starting where STATE says."""
        if self.keys is not None:
            keys = self.keys
            if state.key is not None:
                keys = keys[keys.index(state.key):] if state.key in keys else []
            for key in keys:
                if key == state.key:
                    if state.ck is None:
                        continue
                    yield key, self._read(key, state.ck), True
                else:
                    yield key, self._read(key, None), False
            return
        start, end = self.tokens
        after = None
        if state.key is not None:
            if state.ck is not None:
                yield state.key, self._read(state.key, state.ck), True
            after = state.key
        for key, rows in self.table.scan(start, end, after, now=self.now):
            if self.restricted_ck:
                rows = [r for r in rows if r[0] == b"" or in_ranges(r[0], self.ranges)]
            if self.reverse:
                rows = rows[:1] + rows[:0:-1] if rows and rows[0][0] == b"" else rows[::-1]
            yield key, rows, False

    def _read(self, key: bytes, after: bytes | None) -> list:
        rows = []
        if self.info.clustering:
            rows += self.table.read(key, b"", b"\x00", now=self.now)
        ranges = self.ranges[::-1] if self.reverse else self.ranges
        for start, end in ranges:
            if after is not None:
                if self.reverse:
                    end = after if end is None or after < end else end
                else:
                    nxt = after + b"\x00"
                    start = nxt if start is None or nxt > start else start
                if start is not None and end is not None and start >= end:
                    continue
            if start is None and self.info.clustering and not self.reverse:
                start = b"\x00"  # past the static row, which was read above
            found = self.table.read(key, start, end, self.reverse, self.read_limit, now=self.now)
            rows += [r for r in found if r[0] != b"" or not self.info.clustering]
        return rows

    def _decode(self, key: bytes, rows: list, resumed: bool) -> Iterator[tuple[bytes | None, dict, dict]]:
        info = self.info
        keyvals = dict(zip((c.name for c in info.partition_key), info.decode_key(key), strict=True))
        static: dict = {}
        static_cells: dict = {}
        if info.clustering and rows and rows[0][0] == b"":
            static, static_cells = _columns(info, rows[0][1], self.now)
            rows = rows[1:]
        if not rows and static and not self.restricted_ck and not resumed:
            yield None, {**keyvals, **static}, static_cells
            return
        for ck, cells in rows:
            vals, meta = _columns(info, cells, self.now)
            if ck:
                vals.update(zip((c.name for c in info.clustering),
                                decode_clustering(info.ck_types, info.ck_orders, ck), strict=False))
            yield ck, {**keyvals, **static, **vals}, {**static_cells, **meta}


def _columns(info: TableInfo, cells: dict, now: int) -> tuple[dict, dict]:
    """The values of the regular or static columns in one row's live cells, and (writetime, remaining TTL) of
    each simple column."""
    vals: dict[str, Any] = {}
    meta: dict[str, tuple] = {}
    elements: dict[str, list] = {}
    for colkey, cell in cells.items():
        name_bytes, sep, path = colkey.partition(SEP)
        name = name_bytes.decode()
        col = info.columns.get(name)
        if col is None or col.kind in (PARTITION_KEY, CLUSTERING) or cell[0] <= info.dropped.get(name, -2**63):
            continue
        if sep:
            elements.setdefault(name, []).append((path, cell))
        else:
            vals[name] = info.types[name].deserialize(cell[1])
            meta[name] = (cell[0], cell[2] - now if cell[3] else None)
    for name, items in elements.items():
        t = info.types[name]
        items.sort(key=lambda item: item[0])
        if t.kind == "map":
            vals[name] = {t.key.unsort_bytes(p): t.value.deserialize(c[1]) for p, c in items}
        elif t.kind == "set":
            vals[name] = t.validate([t.element.unsort_bytes(p) for p, _ in items])
        else:
            vals[name] = [t.element.deserialize(c[1]) for _, c in items]
    return vals, meta


def _selection(info: TableInfo, stmt: ast.Select) -> tuple[list, list, bool]:
    """Result columns (name, type), one getter per column (row, count) -> value, and whether it is a COUNT."""
    selectors = stmt.selectors
    if not selectors:
        rest = sorted((c for c in info.table.columns if c.kind == STATIC), key=lambda c: c.name)
        rest += sorted((c for c in info.table.columns if c.kind not in (PARTITION_KEY, CLUSTERING, STATIC)),
                       key=lambda c: c.name)
        selectors = tuple(ast.Selector(ast.ColumnRef(c.name)) for c in (*info.partition_key, *info.clustering,
                                                                          *rest))
    columns, getters = [], []
    counting = False
    for sel in selectors:
        label, t, getter, is_count = _selector(info, sel.expr, stmt.distinct)
        counting = counting or is_count
        columns.append((sel.alias or label, t))
        getters.append(getter)
    return columns, getters, counting


def _selector(info: TableInfo, expr: Any, distinct: bool) -> tuple[str, Any, Any, bool]:
    if isinstance(expr, ast.ColumnRef):
        name = expr.name
        col = info.column(name)
        if distinct and col.kind not in (PARTITION_KEY, STATIC):
            raise InvalidRequest("SELECT DISTINCT queries must only request partition key columns and/or static "
                                 f"columns (not {name})")
        return name, info.types[name], lambda row, n: row[2].get(name) if row else None, False
    if isinstance(expr, ast.CountRows):
        return "count", BIGINT, lambda row, n: n, True
    if isinstance(expr, ast.FunctionCall):
        fn = expr.name
        if fn == "count" and len(expr.args) == 1 and isinstance(expr.args[0], ast.ColumnRef):
            return f"system.count({expr.args[0].name})", BIGINT, lambda row, n: n, True
        if fn in ("writetime", "ttl") and len(expr.args) == 1 and isinstance(expr.args[0], ast.ColumnRef):
            name = expr.args[0].name
            col = info.column(name)
            if col.kind in (PARTITION_KEY, CLUSTERING):
                raise InvalidRequest(f"Cannot use selection function {'writeTime' if fn == 'writetime' else 'ttl'} "
                                     f"on PRIMARY KEY part {name}")
            if info.is_multicell(name):
                raise InvalidRequest(f"Cannot use selection function {'writeTime' if fn == 'writetime' else 'ttl'} "
                                     f"on non-frozen collection {name}")
            if fn == "writetime":
                return f"writetime({name})", BIGINT, lambda row, n: _cell(row, name, 0), False
            return f"ttl({name})", INT, lambda row, n: _cell(row, name, 1), False
        if fn == "token":
            names = [a.name for a in expr.args if isinstance(a, ast.ColumnRef)]
            if names != [c.name for c in info.partition_key]:
                raise InvalidRequest("The token function arguments must be in the partition key order: "
                                     + ", ".join(c.name for c in info.partition_key))
            return (f"system.token({', '.join(names)})", BIGINT,
                    lambda row, n: token(row[0]) if row else None, False)
        raise InvalidRequest(f"Unknown function '{fn}'")
    if isinstance(expr, ast.Cast):
        label, source, get, counting = _selector(info, expr.value, distinct)
        if counting:
            raise InvalidRequest("CAST of an aggregate is not supported yet")
        target = parse_type(expr.type)
        convert = cast_function(source.cql_name, target.cql_name)

        def cast(row: tuple | None, n: int) -> Any:
            value = get(row, n)
            return None if value is None else convert(value)

        return f"cast({label} as {target.cql_name})", target, cast, False
    raise InvalidRequest("Only columns, COUNT, WRITETIME, TTL, token() and CAST selectors are supported yet")


def _cell(row: tuple | None, name: str, index: int) -> Any:
    if row is None:
        return None
    cell = row[3].get(name)
    return None if cell is None else cell[index]


