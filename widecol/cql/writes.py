"""INSERT, UPDATE, DELETE and BATCH: statements turned into engine mutations, applied as one engine batch.

How this works. Each statement is checked and turned into cells of `Mutation`s (one per partition, shared by the
statements of a batch) before anything is applied, so a failing statement changes nothing. Cells follow the
layout in docs/cql.md: a simple column is one cell keyed by its name; an element of a non-frozen collection is a
cell keyed name + 0x00 + path (set: the element's order-preserving bytes, value empty; map: the key's bytes;
list: a 16-byte time-ordered path, 0x01 + (timestamp << 16 | counter) for appends and 0x00 + the complement of
that for prepends, so later prepends sort first). Overwriting a whole non-frozen collection writes a collection
tombstone at timestamp - 1 and the new elements at timestamp. INSERT writes the row marker (column key b"");
UPDATE does not. Static columns live in the row with clustering b"". Operations that need the current value of a
list (element set or delete by index, removal of values) read it first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from widecol.cql import ast
from widecol.cql.terms import (
    INT,
    UNSET,
    TableInfo,
    Values,
    Where,
    clustering_ranges,
    eq_prefix,
    missing_partition_key,
    partition_keys,
)
from widecol.errors import InvalidRequest
from widecol.schema.clustering import encode_component
from widecol.schema.model import CLUSTERING, PARTITION_KEY, STATIC
from widecol.schema.types import SetType
from widecol.storage.mutation import Mutation

if TYPE_CHECKING:
    from widecol.cql.executor import Executor

MAX_TTL = 630_720_000
SEP = b"\x00"
_PATH_MAX = (1 << 120) - 1

MutationFor = Callable[[str, bytes], Mutation]


def execute_write(ex: Executor, stmt: Any, params: Any, session: str | None, consistency: str = "ONE") -> None:
    """Apply one INSERT, UPDATE or DELETE at CONSISTENCY; nothing is applied if it fails validation."""
    muts: dict[tuple[str, bytes], Mutation] = {}
    build(ex, stmt, ex.values(params), session, _collector(muts), None, consistency)
    if muts:
        ex.data.apply(list(muts.values()), consistency)


def execute_batch(ex: Executor, stmt: ast.Batch, params: Any, session: str | None,
                  consistency: str = "ONE") -> None:
    """Apply every statement of a BATCH as one engine batch, one mutation per partition, at one timestamp."""
    if stmt.kind == "COUNTER":
        raise InvalidRequest("Counter batches are not supported yet")
    values = ex.values(params)
    ts = values.integer(stmt.timestamp, "timestamp")
    for s in stmt.statements:
        if ts is not None and s.timestamp is not None:
            raise InvalidRequest("Timestamp must be set either on BATCH or individual statements")
    batch_ts = ts if ts is not None else ex.timestamp()
    muts: dict[tuple[str, bytes], Mutation] = {}
    collect = _collector(muts)
    for s in stmt.statements:
        if not isinstance(s, (ast.Insert, ast.Update, ast.Delete)):
            raise InvalidRequest("Only INSERT, UPDATE and DELETE statements are allowed in a BATCH")
        build(ex, s, values, session, collect, batch_ts, consistency)
    if muts:
        ex.data.apply(list(muts.values()), consistency)


def _collector(muts: dict[tuple[str, bytes], Mutation]) -> MutationFor:
    def mutation_for(table_id: str, key: bytes) -> Mutation:
        m = muts.get((table_id, key))
        if m is None:
            m = muts[(table_id, key)] = Mutation(table_id, key)
        return m
    return mutation_for


def build(ex: Executor, stmt: Any, values: Values, session: str | None, mutation_for: MutationFor,
          default_ts: int | None, consistency: str = "ONE") -> None:
    """Add the cells of STMT to the mutations given by MUTATION_FOR."""
    info = ex.table_info(stmt.keyspace, stmt.table, session)
    if getattr(stmt, "conditions", ()) or getattr(stmt, "if_exists", False) or getattr(stmt, "if_not_exists", False):
        raise InvalidRequest("Conditional updates (lightweight transactions, IF ...) are not supported yet")
    ts = values.integer(stmt.timestamp, "timestamp")
    if ts is None:
        ts = default_ts if default_ts is not None else ex.timestamp()
    now = ex.engine.now()
    if isinstance(stmt, ast.Delete):
        _delete(ex, info, stmt, values, mutation_for, ts, now, consistency)
        return
    ttl = values.integer(stmt.ttl, "ttl")
    if ttl is None:
        ttl = info.ttl
    if ttl < 0:
        raise InvalidRequest(f"A TTL must be greater or equal to 0, but was {ttl}")
    if ttl > MAX_TTL:
        raise InvalidRequest(f"ttl is too large. requested ({ttl}) maximum ({MAX_TTL})")
    w = _Writer(ex, info, ts, now, ttl, consistency)
    if isinstance(stmt, ast.Insert):
        _insert(w, stmt, values, mutation_for)
    else:
        _update(w, stmt, values, mutation_for)


class _Writer:
    """Writes column values into a mutation at one timestamp, TTL and local time."""

    def __init__(self, ex: Executor, info: TableInfo, ts: int, now: int, ttl: int, consistency: str) -> None:
        self.ex, self.info, self.ts, self.now, self.ttl = ex, info, ts, now, ttl
        self.consistency = consistency

    def put(self, m: Mutation, ck: bytes, name: str, value: Any) -> None:
        """Overwrite column NAME with VALUE (None deletes it)."""
        if self.info.is_multicell(name):
            m.delete_collection(ck, name.encode(), self.ts - 1, self.now)
            if value is not None:
                self.add(m, ck, name, value)
        elif value is None:
            m.delete_cell(ck, name.encode(), self.ts, self.now)
        else:
            m.set(ck, name.encode(), self.info.types[name].serialize(value), self.ts, self.now, self.ttl)

    def add(self, m: Mutation, ck: bytes, name: str, value: Any, prepend: bool = False) -> None:
        """Add the elements of VALUE to non-frozen collection NAME."""
        t = self.info.types[name]
        base = name.encode() + SEP
        if t.kind == "map":
            for k, v in value.items():
                if v is None:
                    raise InvalidRequest("null is not supported inside collections")
                m.set(ck, base + encode_component(t.key, k), t.value.serialize(v), self.ts, self.now, self.ttl)
        elif t.kind == "set":
            for e in value:
                m.set(ck, base + encode_component(t.element, e), b"", self.ts, self.now, self.ttl)
        else:
            if any(e is None for e in value):
                raise InvalidRequest("null is not supported inside collections")
            counters = [self.ex.list_counter() for _ in value]
            for i, e in enumerate(value):
                stamp = (max(self.ts, 0) << 16) | (counters[len(value) - 1 - i] if prepend else counters[i])
                path = b"\x00" + (_PATH_MAX - stamp).to_bytes(15, "big") if prepend else \
                    b"\x01" + stamp.to_bytes(15, "big")
                m.set(ck, base + path, t.element.serialize(e), self.ts, self.now, self.ttl)

    def list_paths(self, key: bytes, ck: bytes, name: str) -> list[tuple[bytes, Any]]:
        """The current elements of list NAME in row (KEY, CK): (column key, value) in list order."""
        base = name.encode() + SEP
        rows = self.ex.data.table(self.info.storage_id, self.consistency).read(key, ck, ck + b"\x00")
        if not rows:
            return []
        t = self.info.types[name]
        cells = rows[0][1]
        return [(k, t.element.deserialize(cells[k][1])) for k in sorted(cells) if k.startswith(base) and k != base]


def _insert(w: _Writer, stmt: ast.Insert, values: Values, mutation_for: MutationFor) -> None:
    info = w.info
    if stmt.json is not None:
        raise InvalidRequest("INSERT JSON is not supported yet")
    if len(stmt.columns) != len(stmt.values):
        raise InvalidRequest("Unmatched column names/values")
    given: dict[str, Any] = {}
    for name, term in zip(stmt.columns, stmt.values, strict=True):
        info.column(name)
        if name in given:
            raise InvalidRequest(f"Multiple definitions found for column {name}")
        given[name] = values.value(term, info.types[name], name, unset_ok=info.columns[name].kind not in
                                   (PARTITION_KEY, CLUSTERING))
    missing = [c.name for c in info.partition_key if c.name not in given]
    if missing:
        raise InvalidRequest("Some partition key parts are missing: " + ", ".join(missing))
    only_static = all(info.columns[n].kind in (PARTITION_KEY, STATIC) for n in given)
    missing = [c.name for c in info.clustering if c.name not in given]
    if missing and not (only_static and len(missing) == len(info.clustering)):
        raise InvalidRequest("Some clustering keys are missing: " + ", ".join(missing))
    for c in info.table.primary_key:
        if c.name in given and given[c.name] is None:
            raise InvalidRequest(f"Invalid null value in condition for column {c.name}")
    key = info.encode_key([given[c.name] for c in info.partition_key])
    ck = b"" if missing else info.encode_clustering([given[c.name] for c in info.clustering])
    m = mutation_for(info.storage_id, key)
    if not missing:
        m.set(ck, b"", b"", w.ts, w.now, w.ttl)
    for name, value in given.items():
        kind = info.columns[name].kind
        if kind in (PARTITION_KEY, CLUSTERING) or value is UNSET:  # an unset value leaves the column as it is
            continue
        w.put(m, b"" if kind == STATIC else ck, name, value)


def _row_keys(info: TableInfo, where: Where, values: Values, statics_only: bool) -> tuple[list[bytes], list[bytes]]:
    """The partition keys and clustering keys an UPDATE or column DELETE names (all = / IN)."""
    _check_others(info, where)
    if where.tokens:
        raise InvalidRequest("The token function cannot be used in WHERE clauses for UPDATE and DELETE statements")
    missing_partition_key(info, where)
    keys = partition_keys(info, where, values) or []
    if any(r.op not in ("=", "IN") for rels in where.clustering.values() for r in rels) or \
            any(r.op not in ("=", "IN") for r in where.multi):
        raise InvalidRequest("Slice restrictions are not supported on the clustering columns in UPDATE statements")
    k, prefix = eq_prefix(info, where, values)
    if statics_only and not k:
        return keys, [b""]
    missing = [c.name for c in info.clustering[k:]]
    if missing:
        raise InvalidRequest("Some clustering keys are missing: " + ", ".join(missing))
    cks = [info.encode_clustering(combo) for combo in prefix] if info.clustering else [b""]
    return keys, cks


def _check_others(info: TableInfo, where: Where) -> None:
    """Writes name their rows by primary key alone."""
    for r in where.others:
        if info.columns[r.lhs.name].kind == PARTITION_KEY:
            raise InvalidRequest("Only EQ and IN relation are supported on the partition key (unless you use the "
                                 "token() function)")
    if where.others:
        names = ", ".join(r.lhs.name for r in where.others)
        raise InvalidRequest(f"Non PRIMARY KEY columns found in where clause: {names}")


def _update(w: _Writer, stmt: ast.Update, values: Values, mutation_for: MutationFor) -> None:
    info = w.info
    where = Where.of(info, stmt.where)
    ops = []
    for a in stmt.assignments:
        col = info.column(a.column)
        if col.kind in (PARTITION_KEY, CLUSTERING):
            raise InvalidRequest(f"PRIMARY KEY part {a.column} found in SET part")
        t = info.types[a.column]
        if a.op == "set":
            v = values.value(a.value, t, a.column, unset_ok=True)
            if v is not UNSET:  # an unset value leaves the column as it is
                ops.append((a, None, v))
            continue
        if not t.is_collection:
            raise InvalidRequest(f"Invalid operation ({a.column} = {a.column} {'-' if a.op == 'remove' else '+'} "
                                 f"...) for non counter column {a.column}")
        if t.frozen:
            raise InvalidRequest(f"Invalid operation for frozen collection column {a.column}")
        if a.op == "set_element":
            if t.kind == "set":
                raise InvalidRequest(f"Invalid operation ({a.column}[...] = ...) for set column {a.column}")
            key_type = t.key if t.kind == "map" else INT
            k = values.value(a.key, key_type, f"key({a.column})" if t.kind == "map" else f"idx({a.column})")
            v = values.value(a.value, t.value if t.kind == "map" else t.element, f"value({a.column})")
            if k is None:
                raise InvalidRequest(f"Invalid null value for {'map key' if t.kind == 'map' else 'list index'}")
            ops.append((a, k, v))
        elif a.op == "prepend" and t.kind != "list":
            raise InvalidRequest(f"Invalid operation (prepend) for non-list column {a.column}")
        elif a.op == "remove" and t.kind == "map":
            ops.append((a, None, values.value(a.value, SetType(t.key), a.column)))
        else:
            ops.append((a, None, values.value(a.value, t, a.column)))
    statics_only = all(info.is_static(a.column) for a in stmt.assignments)
    keys, cks = _row_keys(info, where, values, statics_only)
    for key in keys:
        m = mutation_for(info.storage_id, key)
        for ck in cks:
            for a, k, v in ops:
                _apply(w, m, key, b"" if info.is_static(a.column) else ck, a, k, v)


def _apply(w: _Writer, m: Mutation, key: bytes, ck: bytes, a: ast.Assignment, k: Any, v: Any) -> None:
    t = w.info.types[a.column]
    base = a.column.encode() + SEP
    if a.op == "set":
        w.put(m, ck, a.column, v)
    elif a.op in ("add", "prepend"):
        if v is not None:
            w.add(m, ck, a.column, v, prepend=a.op == "prepend")
    elif a.op == "remove":
        if v is None:
            return
        if t.kind == "list":
            drop = list(v)
            for path, current in w.list_paths(key, ck, a.column):
                if current in drop:
                    m.delete_cell(ck, path, w.ts, w.now)
        else:
            elem = t.key if t.kind == "map" else t.element
            for e in v:
                m.delete_cell(ck, base + encode_component(elem, e), w.ts, w.now)
    elif t.kind == "map":
        path = base + encode_component(t.key, k)
        if v is None:
            m.delete_cell(ck, path, w.ts, w.now)
        else:
            m.set(ck, path, t.value.serialize(v), w.ts, w.now, w.ttl)
    else:
        current = w.list_paths(key, ck, a.column)
        if not 0 <= k < len(current):
            raise InvalidRequest(f"List index {k} out of bound, list has size {len(current)}")
        if v is None:
            m.delete_cell(ck, current[k][0], w.ts, w.now)
        else:
            m.set(ck, current[k][0], t.element.serialize(v), w.ts, w.now, w.ttl)


def _delete(ex: Executor, info: TableInfo, stmt: ast.Delete, values: Values, mutation_for: MutationFor,
            ts: int, now: int, consistency: str) -> None:
    where = Where.of(info, stmt.where)
    if not stmt.targets:
        _check_others(info, where)
        if where.tokens:
            raise InvalidRequest("The token function cannot be used in WHERE clauses for UPDATE and DELETE "
                                 "statements")
        missing_partition_key(info, where)
        keys = partition_keys(info, where, values) or []
        if not where.clustering and not where.multi:
            for key in keys:
                mutation_for(info.storage_id, key).delete_partition(ts, now)
            return
        ranges, leftover = clustering_ranges(info, where, values)
        if leftover:
            raise InvalidRequest("PRIMARY KEY column \"" + leftover[0].lhs.name + "\" cannot be restricted as "
                                 "preceding column is not restricted")
        full = eq_prefix(info, where, values)[0] == len(info.clustering)
        for key in keys:
            m = mutation_for(info.storage_id, key)
            for start, end in ranges:
                if full:
                    m.delete_row(start, ts, now)
                else:
                    m.delete_range(start, end, ts, now)
        return
    w = _Writer(ex, info, ts, now, 0, consistency)
    targets = []
    for target in stmt.targets:
        col = info.column(target.column)
        if col.kind in (PARTITION_KEY, CLUSTERING):
            raise InvalidRequest(f"Invalid identifier {target.column} for deletion (should not be a PRIMARY KEY "
                                 "part)")
        t = info.types[target.column]
        k = None
        if target.key is not None:
            if not t.is_collection or t.frozen or t.kind == "set":
                raise InvalidRequest(f"Invalid element deletion on column {target.column} of type {t.cql_name}")
            k = values.value(target.key, t.key if t.kind == "map" else INT, f"key({target.column})")
            if k is None:
                raise InvalidRequest("Invalid null value for collection element deletion")
        targets.append((target.column, k))
    statics_only = all(info.is_static(name) for name, _ in targets)
    try:
        keys, cks = _row_keys(info, where, values, statics_only)
    except InvalidRequest as e:
        if "Slice" in e.message:
            raise InvalidRequest("Range deletions are not supported for specific columns") from None
        raise
    for key in keys:
        m = mutation_for(info.storage_id, key)
        for ck in cks:
            for name, k in targets:
                row = b"" if info.is_static(name) else ck
                t = info.types[name]
                if k is None:
                    if info.is_multicell(name):
                        m.delete_collection(row, name.encode(), ts, now)
                    else:
                        m.delete_cell(row, name.encode(), ts, now)
                elif t.kind == "map":
                    m.delete_cell(row, name.encode() + SEP + encode_component(t.key, k), ts, now)
                else:
                    current = w.list_paths(key, row, name)
                    if not 0 <= k < len(current):
                        raise InvalidRequest(f"List index {k} out of bound, list has size {len(current)}")
                    m.delete_cell(row, current[k][0], ts, now)
