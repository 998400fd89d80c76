"""The CQL executor on one node: statements in, results out, over the storage engine.

How this works. `Executor.execute` parses the query (or takes a parsed statement), resolves the keyspace and
table against the SchemaStore, and hands the statement to its handler: the schema statements are here, the
writes (INSERT, UPDATE, DELETE, BATCH) in `writes`, SELECT in `reads`. Every handler validates everything first
and touches the engine last, with one engine batch, so a failing statement changes nothing. Write timestamps
come from the executor's clock in microseconds, made strictly increasing; TTLs and deletion times use the
engine's local time (`engine.now()`). Results are small frozen dataclasses: Void, Rows, SetKeyspace, SchemaChange.

Data goes through a `DataAccess`: on a single node `LocalData`, the engine itself; in a cluster the coordinator's
proxy, which sends mutations and reads to a partition's replicas at the statement's consistency level. The schema
is always the local SchemaStore; `schema_listeners` are called after each schema change (the cluster spreads it).
The executor may be called from several threads at once: timestamps are taken under a lock and schema changes are
serialized.
"""

from __future__ import annotations

import logging
import random
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any, Protocol

from widecol.cql import ast
from widecol.cql.parser import parse
from widecol.cql.terms import TableInfo, Values
from widecol.errors import AlreadyExists, ConfigurationException, InvalidRequest, SyntaxException
from widecol.schema import model
from widecol.schema.model import (
    CLUSTERING,
    DEFAULT_TABLE_OPTIONS,
    PARTITION_KEY,
    REGULAR,
    STATIC,
    SYSTEM_KEYSPACES,
    KeyspaceDef,
    SchemaStore,
    TableDef,
    check_replication,
)
from widecol.schema.scalars import UUID_EPOCH_OFFSET
from widecol.schema.types import parse_type
from widecol.storage.engine import Engine
from widecol.storage.mutation import Mutation

log = logging.getLogger(__name__)

TABLE_OPTIONS = frozenset({
    "default_time_to_live", "gc_grace_seconds", "comment", "compaction", "compression", "caching",
    "bloom_filter_fp_chance", "crc_check_chance", "dclocal_read_repair_chance", "read_repair_chance",
    "memtable_flush_period_in_ms", "min_index_interval", "max_index_interval", "speculative_retry",
    "additional_write_policy", "read_repair", "extensions", "cdc",
})


@dataclass(frozen=True)
class Void:
    pass


@dataclass(frozen=True)
class Rows:
    columns: list  # (name, CqlType) pairs
    rows: list  # tuples of Python values
    paging_state: bytes | None = None


@dataclass(frozen=True)
class SetKeyspace:
    name: str


@dataclass(frozen=True)
class SchemaChange:
    change: str  # "CREATED" | "UPDATED" | "DROPPED"
    target: str  # "KEYSPACE" | "TABLE"
    keyspace: str
    name: str = ""


Result = Void | Rows | SetKeyspace | SchemaChange


CONSISTENCY_LEVELS = ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL",
                      "LOCAL_SERIAL", "LOCAL_ONE")


class TableReader(Protocol):
    """What reads need of a table: `widecol.storage.table.Table` has these, and so does a cluster's proxy."""

    def read(self, key: bytes, start: bytes | None = None, end: bytes | None = None, reverse: bool = False,
             limit: int | None = None, now: int | None = None) -> list[tuple[bytes, dict]]: ...

    def scan(self, start_token: int | None = None, end_token: int | None = None, after_key: bytes | None = None,
             now: int | None = None) -> Iterator[tuple[bytes, list[tuple[bytes, dict]]]]: ...


class DataAccess(Protocol):
    """Where statements read and write user data, at a consistency level."""

    def apply(self, mutations: list[Mutation], consistency: str) -> None: ...

    def table(self, storage_id: str, consistency: str) -> TableReader: ...

    def truncate(self, storage_id: str) -> None: ...


class LocalData:
    """A single node's data: its own engine, whatever the consistency level."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def apply(self, mutations: list[Mutation], consistency: str) -> None:
        self.engine.apply_batch(mutations)

    def table(self, storage_id: str, consistency: str) -> TableReader:
        return self.engine.table(storage_id)

    def truncate(self, storage_id: str) -> None:
        self.engine.truncate(storage_id)


class Executor:
    """Executes CQL statements against one engine's schema and a DataAccess (by default the engine itself)."""

    def __init__(self, engine: Engine, clock_us: Callable[[], int] | None = None,
                 store: SchemaStore | None = None, data: DataAccess | None = None) -> None:
        self.engine = engine
        self.store = store if store is not None else SchemaStore(engine)
        self.data: DataAccess = data if data is not None else LocalData(engine)
        self.clock_us = clock_us if clock_us is not None else (lambda: int(engine.clock() * 1_000_000))
        self.keyspace: str | None = None
        self.schema_listeners: list[Callable[[], None]] = []
        self._last_ts = 0
        self._infos: dict[str, TableInfo] = {}
        self._list_counter = 0
        self._lock = threading.Lock()
        self.schema_lock = self.store.lock

    # -- helpers shared with reads and writes ------------------------------------------------------------------

    def timestamp(self) -> int:
        """A write timestamp in microseconds, strictly greater than every one this executor gave before."""
        with self._lock:
            self._last_ts = max(self._last_ts + 1, int(self.clock_us()))
            return self._last_ts

    def values(self, params: list | tuple | dict | None) -> Values:
        """An evaluator of statement terms with PARAMS bound and this executor's now() and uuid()."""
        return Values(params, {"now": lambda: (self._timeuuid(), "timeuuid"), "uuid": lambda: (uuid.uuid4(), "uuid")})

    def _timeuuid(self) -> uuid.UUID:
        """A version-1 UUID at this executor's next timestamp (100-ns intervals since 1582-10-15)."""
        t = self.timestamp() * 10 + UUID_EPOCH_OFFSET
        return uuid.UUID(fields=(t & 0xFFFFFFFF, (t >> 32) & 0xFFFF, ((t >> 48) & 0x0FFF) | 0x1000,
                                 0x80 | random.getrandbits(6), random.getrandbits(8), random.getrandbits(48)))

    def list_counter(self) -> int:
        with self._lock:
            self._list_counter = (self._list_counter + 1) & 0xFFFF
            return self._list_counter

    def resolve_keyspace(self, keyspace: str | None, session: str | None) -> str:
        ks = keyspace or session or self.keyspace
        if ks is None:
            raise InvalidRequest("No keyspace has been specified. USE a keyspace, or explicitly specify "
                                 "keyspace.tablename")
        return ks

    def table_info(self, keyspace: str | None, table: str, session: str | None) -> TableInfo:
        """The parsed table KEYSPACE.TABLE, or InvalidRequest as Cassandra words it."""
        ks = self.resolve_keyspace(keyspace, session)
        ksdef = self.store.schema.keyspaces.get(ks)
        if ksdef is None:
            raise InvalidRequest(f"Keyspace '{ks}' does not exist")
        tdef = ksdef.tables.get(table)
        if tdef is None:
            raise InvalidRequest(f"unconfigured table {table}")
        cached = self._infos.get(tdef.storage_id)
        if cached is None or cached.table is not tdef:
            cached = self._infos[tdef.storage_id] = TableInfo(tdef)
        return cached

    # -- entry point -----------------------------------------------------------------------------------------------

    def execute(
        self,
        query: str | ast.Statement,
        params: list | tuple | dict | None = None,
        keyspace: str | None = None,
        page_size: int | None = None,
        paging_state: bytes | None = None,
        consistency: str = "ONE",
    ) -> Result:
        """Run one statement at CONSISTENCY (a level name). Either it takes full effect and its result is
        returned, or it raises a WidecolError; on one node a failed statement changes nothing (in a cluster a
        timed-out write may have reached some replicas, as in Cassandra)."""
        from widecol.cql import reads, writes

        if consistency not in CONSISTENCY_LEVELS:
            raise InvalidRequest(f"Unknown consistency level {consistency}")
        stmt = parse(query) if isinstance(query, str) else query
        if isinstance(stmt, ast.Select):
            if consistency == "ANY":
                raise InvalidRequest("ANY ConsistencyLevel is only supported for writes")
            return reads.select(self, stmt, params, keyspace, page_size, paging_state, consistency)
        if isinstance(stmt, (ast.Insert, ast.Update, ast.Delete)):
            writes.execute_write(self, stmt, params, keyspace, consistency)
            return Void()
        if isinstance(stmt, ast.Batch):
            writes.execute_batch(self, stmt, params, keyspace, consistency)
            return Void()
        if isinstance(stmt, ast.Use):
            if stmt.keyspace not in self.store.schema.keyspaces:
                _no_keyspace(stmt.keyspace)
            self.keyspace = stmt.keyspace
            return SetKeyspace(stmt.keyspace)
        if isinstance(stmt, ast.Unsupported):
            raise InvalidRequest(f"{stmt.what} is not supported yet")
        handler = _DDL.get(type(stmt))
        if handler is None:
            raise InvalidRequest(f"{type(stmt).__name__} is not supported yet")
        if isinstance(stmt, ast.Truncate):
            return _truncate(self, stmt, keyspace)
        with self.schema_lock:
            result = handler(self, stmt, keyspace)
        if isinstance(result, SchemaChange):
            for listener in self.schema_listeners:
                listener()
        return result

    def _commit(self, schema: model.Schema) -> None:
        self.store.commit(schema, self.timestamp())


def _no_keyspace(name: str) -> None:
    raise InvalidRequest(f"Keyspace '{name}' does not exist")


def _check_user_keyspace(name: str) -> None:
    if name in SYSTEM_KEYSPACES:
        raise InvalidRequest(f"{name} keyspace is not user-modifiable")


# -- keyspaces --------------------------------------------------------------------------------------------------


def _create_keyspace(ex: Executor, stmt: ast.CreateKeyspace, _ks: str | None) -> Result:
    _check_user_keyspace(stmt.name)
    replication = check_replication(stmt.replication)
    schema = ex.store.schema
    if stmt.name in schema.keyspaces:
        if stmt.if_not_exists:
            return Void()
        raise AlreadyExists(stmt.name)
    ex._commit(schema.with_keyspace(KeyspaceDef(stmt.name, replication, stmt.durable_writes)))
    return SchemaChange("CREATED", "KEYSPACE", stmt.name)


def _alter_keyspace(ex: Executor, stmt: ast.AlterKeyspace, _ks: str | None) -> Result:
    _check_user_keyspace(stmt.name)
    schema = ex.store.schema
    if stmt.name not in schema.keyspaces:
        if stmt.if_exists:
            return Void()
        _no_keyspace(stmt.name)
    replication = check_replication(stmt.replication) if stmt.replication is not None else None
    ex._commit(schema.altered_keyspace(stmt.name, replication, stmt.durable_writes))
    return SchemaChange("UPDATED", "KEYSPACE", stmt.name)


def _drop_keyspace(ex: Executor, stmt: ast.DropKeyspace, _ks: str | None) -> Result:
    _check_user_keyspace(stmt.name)
    schema = ex.store.schema
    if stmt.name not in schema.keyspaces:
        if stmt.if_exists:
            return Void()
        _no_keyspace(stmt.name)
    ex._commit(schema.without_keyspace(stmt.name))
    if ex.keyspace == stmt.name:
        ex.keyspace = None
    return SchemaChange("DROPPED", "KEYSPACE", stmt.name)


# -- tables -----------------------------------------------------------------------------------------------------


def _options(given: dict, base: dict) -> dict:
    options = dict(base)
    for name, value in given.items():
        if name not in TABLE_OPTIONS:
            raise SyntaxException(f"Unknown property '{name}'")
        if name in ("default_time_to_live", "gc_grace_seconds"):
            try:
                value = int(value)
            except (TypeError, ValueError):
                raise ConfigurationException(f"Invalid value for {name}: {value}") from None
            if value < 0:
                what = "default_time_to_live" if name == "default_time_to_live" else name
                raise ConfigurationException(f"{what} must be greater than or equal to 0 (got {value})")
            if name == "default_time_to_live" and value > 630720000:
                raise ConfigurationException(f"default_time_to_live must be less than or equal to 630720000 (got "
                                             f"{value})")
        if name == "compaction":
            if not isinstance(value, dict) or "class" not in value:
                raise ConfigurationException("Missing sub-option 'class' for the 'compaction' option.")
            value = {str(k): str(v) for k, v in value.items()}
        options[name] = value
    return options


def _create_table(ex: Executor, stmt: ast.CreateTable, session: str | None) -> Result:
    ks = ex.resolve_keyspace(stmt.keyspace, session)
    _check_user_keyspace(ks)
    schema = ex.store.schema
    ksdef = schema.keyspaces.get(ks)
    if ksdef is None:
        raise InvalidRequest(f"Keyspace '{ks}' does not exist")
    if stmt.table in ksdef.tables:
        if stmt.if_not_exists:
            return Void()
        raise AlreadyExists(ks, stmt.table)
    if stmt.primary_key_definitions > 1:
        raise InvalidRequest("Multiple PRIMARY KEYs specified (exactly one required)")
    if stmt.compact_storage:
        raise InvalidRequest("COMPACT STORAGE tables are not supported")
    declared = {}
    for c in stmt.columns:
        if c.name in declared:
            raise InvalidRequest(f"Duplicate column name {c.name}")
        declared[c.name] = c
    for name in (*stmt.partition_key, *stmt.clustering):
        if name not in declared:
            raise InvalidRequest(f"Unknown definition {name} referenced in PRIMARY KEY")
    if len(set(stmt.partition_key) | set(stmt.clustering)) != len(stmt.partition_key) + len(stmt.clustering):
        raise InvalidRequest("Duplicate column in PRIMARY KEY")
    orders = dict(stmt.clustering_order)
    for name in orders:
        if name not in stmt.clustering:
            raise InvalidRequest("Only clustering key columns can be defined in CLUSTERING ORDER directive")
    if orders and list(orders) != list(stmt.clustering[:len(orders)]):
        raise InvalidRequest("The order of columns in the CLUSTERING ORDER directive must be the one of the "
                             "clustering key")
    columns = []
    for c in stmt.columns:
        t = parse_type(c.type)
        in_key = c.name in stmt.partition_key or c.name in stmt.clustering
        if in_key and c.static:
            raise InvalidRequest(f"Static column {c.name} cannot be part of the PRIMARY KEY")
        if in_key and t.is_collection and not t.frozen:
            raise InvalidRequest(f"Invalid non-frozen collection type for PRIMARY KEY component {c.name}")
        if c.name in stmt.partition_key:
            col = model.ColumnDef(c.name, c.type, PARTITION_KEY, stmt.partition_key.index(c.name))
        elif c.name in stmt.clustering:
            desc = orders.get(c.name, "ASC").upper() == "DESC"
            col = model.ColumnDef(c.name, c.type, CLUSTERING, stmt.clustering.index(c.name), desc)
        else:
            col = model.ColumnDef(c.name, c.type, STATIC if c.static else REGULAR)
        columns.append(col)
    options = _options(stmt.options, dict(DEFAULT_TABLE_OPTIONS))
    table = TableDef(ks, stmt.table, uuid.uuid4(), tuple(columns), options)
    ex._commit(schema.with_table(table))
    return SchemaChange("CREATED", "TABLE", ks, stmt.table)


def _table_def(ex: Executor, keyspace: str | None, table: str, session: str | None,
               if_exists: bool = False) -> TableDef | None:
    ks = ex.resolve_keyspace(keyspace, session)
    ksdef = ex.store.schema.keyspaces.get(ks)
    if ksdef is None:
        if if_exists:
            return None
        raise InvalidRequest(f"Keyspace '{ks}' does not exist")
    tdef = ksdef.tables.get(table)
    if tdef is None:
        if if_exists:
            return None
        raise InvalidRequest(f"Table '{ks}.{table}' doesn't exist")
    return tdef


def _alter_table(ex: Executor, stmt: ast.AlterTable, session: str | None) -> Result:
    tdef = _table_def(ex, stmt.keyspace, stmt.table, session, stmt.if_exists)
    if tdef is None:
        return Void()
    _check_user_keyspace(tdef.keyspace)
    names = {c.name: c for c in tdef.columns}
    if stmt.action == "ADD":
        columns = list(tdef.columns)
        for c in stmt.added:
            if c.name in names:
                raise InvalidRequest(f"Column with name '{c.name}' already exists")
            parse_type(c.type)
            if c.static and not tdef.clustering:
                raise InvalidRequest(f"Static columns are not allowed in COMPACT STORAGE tables or tables without "
                                     f"clustering columns ({c.name})")
            columns.append(model.ColumnDef(c.name, c.type, STATIC if c.static else REGULAR))
        new = replace(tdef, columns=tuple(columns))
    elif stmt.action == "DROP":
        for name in stmt.dropped:
            col = names.get(name)
            if col is None:
                raise InvalidRequest(f"Column {name} was not found in table {tdef.name}")
            if col.kind in (PARTITION_KEY, CLUSTERING):
                raise InvalidRequest(f"Cannot drop PRIMARY KEY column {name}")
        # Cells of a dropped column written before the drop stay hidden if a column of that name is re-added.
        dropped = dict(tdef.options.get("dropped_columns", {}))
        dropped.update({name: ex.timestamp() for name in stmt.dropped})
        new = replace(tdef, columns=tuple(c for c in tdef.columns if c.name not in stmt.dropped),
                      options={**tdef.options, "dropped_columns": dropped})
    elif stmt.action == "WITH":
        new = replace(tdef, options=_options(stmt.options, dict(tdef.options)))
    else:
        raise InvalidRequest(f"ALTER TABLE ... {stmt.action} is not supported yet")
    ex._commit(ex.store.schema.replaced_table(new))
    return SchemaChange("UPDATED", "TABLE", tdef.keyspace, tdef.name)


def _drop_table(ex: Executor, stmt: ast.DropTable, session: str | None) -> Result:
    tdef = _table_def(ex, stmt.keyspace, stmt.table, session, stmt.if_exists)
    if tdef is None:
        return Void()
    _check_user_keyspace(tdef.keyspace)
    ex._commit(ex.store.schema.without_table(tdef.keyspace, tdef.name))
    return SchemaChange("DROPPED", "TABLE", tdef.keyspace, tdef.name)


def _truncate(ex: Executor, stmt: ast.Truncate, session: str | None) -> Result:
    info = ex.table_info(stmt.keyspace, stmt.table, session)
    ex.data.truncate(info.storage_id)
    return Void()


_DDL: dict[type, Callable[[Executor, Any, str | None], Result]] = {
    ast.CreateKeyspace: _create_keyspace,
    ast.AlterKeyspace: _alter_keyspace,
    ast.DropKeyspace: _drop_keyspace,
    ast.CreateTable: _create_table,
    ast.AlterTable: _alter_table,
    ast.DropTable: _drop_table,
    ast.Truncate: _truncate,
}


# -- prepared statements -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    statement: ast.Statement
    bind_specs: list  # one (keyspace, table, name, CqlType) per bind marker, in marker order


def prepare(ex: Executor, query: str | ast.Statement, keyspace: str | None = None) -> Prepared:
    """Parse QUERY and name the receiver of each bind marker (as the native PREPARE's metadata lists them):
    a column, or Cassandra's pseudo-receivers "[limit]", "[ttl]", "[timestamp]", "in(c)", "key(m)", "value(m)",
    "idx(l)", "partition key token". Raises what execute would raise for an unknown keyspace, table or column."""
    from widecol.schema.types import ListType

    stmt = parse(query) if isinstance(query, str) else query
    specs: dict[int, tuple] = {}
    bigint, integer = parse_type("bigint"), parse_type("int")

    def visit(s: Any) -> None:
        if isinstance(s, ast.Batch):
            mark(s.timestamp, None, "[timestamp]", bigint)
            for inner in s.statements:
                visit(inner)
            return
        if not isinstance(s, (ast.Insert, ast.Update, ast.Delete, ast.Select)):
            return
        info = ex.table_info(s.keyspace, s.table, keyspace)

        def col(term: Any, name: str, t: Any = None) -> None:
            mark(term, info, name, t if t is not None else info.types[info.column(name).name])

        if isinstance(s, ast.Insert):
            for name, term in zip(s.columns, s.values, strict=False):
                col(term, name)
        if isinstance(s, ast.Update):
            for a in s.assignments:
                t = info.types[info.column(a.column).name]
                if a.op == "set_element":
                    is_map = t.kind == "map"
                    col(a.key, f"key({a.column})" if is_map else f"idx({a.column})", t.key if is_map else integer)
                    col(a.value, f"value({a.column})", t.value if is_map else t.element)
                else:
                    col(a.value, a.column, t)
        if isinstance(s, (ast.Insert, ast.Update)):
            mark(s.ttl, info, "[ttl]", integer)
        if isinstance(s, (ast.Insert, ast.Update, ast.Delete)):
            mark(s.timestamp, info, "[timestamp]", bigint)
        if isinstance(s, ast.Select):
            mark(s.limit, info, "[limit]", integer)
            mark(s.per_partition_limit, info, "[per_partition_limit]", integer)
        for r in getattr(s, "where", ()):
            if isinstance(r.lhs, ast.FunctionCall):
                mark(r.rhs, info, "partition key token", bigint)
            elif isinstance(r.lhs, ast.ColumnRef):
                t = info.types[info.column(r.lhs.name).name]
                if r.op == "IN" and isinstance(r.rhs, ast.BindMarker):
                    col(r.rhs, f"in({r.lhs.name})", ListType(t))
                elif r.op == "IN":
                    for term in r.rhs:
                        col(term, r.lhs.name, t)
                else:
                    col(r.rhs, r.lhs.name, t)

    def mark(term: Any, info: TableInfo | None, name: str, t: Any) -> None:
        if isinstance(term, ast.BindMarker):
            ks, table = (info.table.keyspace, info.table.name) if info is not None else ("", "")
            specs[term.index] = (ks, table, term.name or name, t)

    visit(stmt)
    markers = getattr(stmt, "bind_markers", ())
    return Prepared(stmt, [specs.get(m.index, ("", "", m.name or "?", None)) for m in markers])
