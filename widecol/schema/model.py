"""The schema: keyspaces and tables, their schema version, and their durable home in the storage engine.

How this works. A Schema is an immutable value: a mapping of KeyspaceDef, each holding its TableDefs. Changes
return a new Schema, so a reader never sees a half-applied change. The schema version is a UUID derived from a
digest of the schema's canonical content (sorted, msgpack-encoded), so two nodes holding the same definitions
report the same version, as gossip's SCHEMA state needs; it does not depend on the order in which changes were
made.

SchemaStore keeps the schema in two engine tables, as Cassandra keeps system_schema: `system_schema.keyspaces`
(one partition per keyspace) and `system_schema.tables` (partition = keyspace, one row per table), each value the
msgpack of a definition. A change is written as one engine batch, so it is durable (and replayed after a crash)
as a unit. Column types are kept as their CQL type text; widecol.schema.types parses them.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import msgpack

from widecol.errors import AlreadyExists, ConfigurationException, InvalidRequest
from widecol.storage.engine import Engine
from widecol.storage.mutation import Mutation

PARTITION_KEY = "partition_key"
CLUSTERING = "clustering"
REGULAR = "regular"
STATIC = "static"
KINDS = (PARTITION_KEY, CLUSTERING, REGULAR, STATIC)
SYSTEM_KEYSPACES = frozenset({"system", "system_schema", "system_auth", "system_distributed", "system_traces"})
KEYSPACES_TABLE = "system_schema.keyspaces"
TABLES_TABLE = "system_schema.tables"
DEFAULT_TABLE_OPTIONS: Mapping[str, Any] = {
    "default_time_to_live": 0,
    "gc_grace_seconds": 864000,
    "comment": "",
    "compaction": {"class": "org.apache.cassandra.db.compaction.SizeTieredCompactionStrategy",
                   "min_threshold": "4", "max_threshold": "32"},
}


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type: str  # CQL type text, e.g. "int" or "map<text, frozen<list<int>>>"
    kind: str = REGULAR
    position: int = -1  # index within the partition key or clustering columns; -1 for the others
    descending: bool = False  # clustering order

    def to_wire(self) -> list:
        return [self.name, self.type, self.kind, self.position, self.descending]

    @classmethod
    def from_wire(cls, item: list) -> ColumnDef:
        return cls(*item)


@dataclass(frozen=True)
class TableDef:
    keyspace: str
    name: str
    id: uuid.UUID
    columns: tuple[ColumnDef, ...]
    options: Mapping[str, Any] = field(default_factory=lambda: dict(DEFAULT_TABLE_OPTIONS))

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise InvalidRequest(f"Duplicate column names in table {self.keyspace}.{self.name}")
        if not self.partition_key:
            raise InvalidRequest(f"No PRIMARY KEY specified for table '{self.name}' (exactly one required)")
        for kind, cols in ((PARTITION_KEY, self.partition_key), (CLUSTERING, self.clustering)):
            if [c.position for c in cols] != list(range(len(cols))):
                raise InvalidRequest(f"{kind} columns of {self.name} are not numbered 0..{len(cols) - 1}")
        if any(c.kind == STATIC for c in self.columns) and not self.clustering:
            raise InvalidRequest("Static columns are only useful (and thus allowed) if the table has at least one "
                                 "clustering column")

    @property
    def gc_grace_seconds(self) -> int:
        return int(self.options.get("gc_grace_seconds", DEFAULT_TABLE_OPTIONS["gc_grace_seconds"]))

    @property
    def storage_id(self) -> str:
        """The engine table that holds this table's data."""
        return f"{self.keyspace}.{self.name}-{self.id.hex}"

    @property
    def partition_key(self) -> tuple[ColumnDef, ...]:
        return tuple(sorted((c for c in self.columns if c.kind == PARTITION_KEY), key=lambda c: c.position))

    @property
    def clustering(self) -> tuple[ColumnDef, ...]:
        return tuple(sorted((c for c in self.columns if c.kind == CLUSTERING), key=lambda c: c.position))

    @property
    def primary_key(self) -> tuple[ColumnDef, ...]:
        return self.partition_key + self.clustering

    def column(self, name: str) -> ColumnDef:
        for c in self.columns:
            if c.name == name:
                return c
        raise InvalidRequest(f"Undefined column name {name} in table {self.keyspace}.{self.name}")

    def to_wire(self) -> list:
        return [self.keyspace, self.name, self.id.bytes, [c.to_wire() for c in self.columns], dict(self.options)]

    @classmethod
    def from_wire(cls, item: list) -> TableDef:
        keyspace, name, table_id, columns, options = item
        return cls(keyspace, name, uuid.UUID(bytes=table_id), tuple(ColumnDef.from_wire(c) for c in columns),
                   options)


@dataclass(frozen=True)
class KeyspaceDef:
    name: str
    replication: Mapping[str, str]
    durable_writes: bool = True
    tables: Mapping[str, TableDef] = field(default_factory=dict)

    def to_wire(self) -> list:
        return [self.name, dict(self.replication), self.durable_writes]

    @classmethod
    def from_wire(cls, item: list, tables: Mapping[str, TableDef]) -> KeyspaceDef:
        name, replication, durable_writes = item
        return cls(name, replication, durable_writes, tables)


def check_replication(replication: Mapping[str, str]) -> dict[str, str]:
    """Validate a keyspace's replication map as Cassandra does; return it normalised (full class name)."""
    options = {str(k): str(v) for k, v in replication.items()}
    cls = options.get("class")
    if cls is None:
        raise ConfigurationException("Missing replication strategy class")
    short = cls.rsplit(".", 1)[-1]
    if short == "SimpleStrategy":
        factor = options.get("replication_factor")
        if factor is None:
            raise ConfigurationException("SimpleStrategy requires a replication_factor strategy option.")
        if set(options) - {"class", "replication_factor"}:
            extra = sorted(set(options) - {"class", "replication_factor"})
            raise ConfigurationException(f"Unrecognized strategy option {{{', '.join(extra)}}} passed to SimpleStrategy")
        _replication_factor(factor)
    elif short == "NetworkTopologyStrategy":
        for dc, factor in options.items():
            if dc != "class":
                _replication_factor(factor)
    elif short == "LocalStrategy":
        pass
    else:
        raise ConfigurationException(f"Unable to find replication strategy class '{cls}'")
    options["class"] = f"org.apache.cassandra.locator.{short}"
    return options


def _replication_factor(value: str) -> int:
    try:
        factor = int(value)
    except ValueError:
        raise ConfigurationException(f"Replication factor must be numeric; found {value}") from None
    if factor < 0:
        raise ConfigurationException(f"Replication factor must be non-negative; found {value}")
    return factor


@dataclass(frozen=True)
class Schema:
    keyspaces: Mapping[str, KeyspaceDef] = field(default_factory=dict)

    # -- queries -----------------------------------------------------------------------------------------------------

    def keyspace(self, name: str) -> KeyspaceDef:
        try:
            return self.keyspaces[name]
        except KeyError:
            raise InvalidRequest(f"Keyspace '{name}' does not exist") from None

    def table(self, keyspace: str, name: str) -> TableDef:
        try:
            return self.keyspace(keyspace).tables[name]
        except KeyError:
            raise InvalidRequest(f"table {name} does not exist") from None

    def tables(self) -> Iterable[TableDef]:
        for ks in self.keyspaces.values():
            yield from ks.tables.values()

    def table_by_storage_id(self, storage_id: str) -> TableDef | None:
        for table in self.tables():
            if table.storage_id == storage_id:
                return table
        return None

    def version(self) -> uuid.UUID:
        """A UUID derived from the content alone: equal on every node that holds the same schema."""
        content = sorted(
            [ks.to_wire(), sorted(t.to_wire() for t in ks.tables.values())] for ks in self.keyspaces.values()
        )
        digest = hashlib.md5(msgpack.packb(content), usedforsecurity=False).digest()
        return uuid.UUID(bytes=digest, version=3)

    # -- changes (each returns a new Schema) --------------------------------------------------------------------------

    def with_keyspace(self, ks: KeyspaceDef, if_not_exists: bool = False) -> Schema:
        if ks.name in self.keyspaces:
            if if_not_exists:
                return self
            raise AlreadyExists(ks.name)
        return Schema({**self.keyspaces, ks.name: ks})

    def altered_keyspace(self, name: str, replication: Mapping[str, str] | None, durable_writes: bool | None) -> Schema:
        ks = self.keyspace(name)
        ks = replace(
            ks,
            replication=ks.replication if replication is None else replication,
            durable_writes=ks.durable_writes if durable_writes is None else durable_writes,
        )
        return Schema({**self.keyspaces, name: ks})

    def without_keyspace(self, name: str) -> Schema:
        self.keyspace(name)
        return Schema({k: v for k, v in self.keyspaces.items() if k != name})

    def with_table(self, table: TableDef, if_not_exists: bool = False) -> Schema:
        ks = self.keyspace(table.keyspace)
        if table.name in ks.tables:
            if if_not_exists:
                return self
            raise AlreadyExists(table.keyspace, table.name)
        return self._put_table(ks, table)

    def replaced_table(self, table: TableDef) -> Schema:
        ks = self.keyspace(table.keyspace)
        self.table(table.keyspace, table.name)
        return self._put_table(ks, table)

    def without_table(self, keyspace: str, name: str) -> Schema:
        ks = self.keyspace(keyspace)
        self.table(keyspace, name)
        tables = {k: v for k, v in ks.tables.items() if k != name}
        return Schema({**self.keyspaces, keyspace: replace(ks, tables=tables)})

    def _put_table(self, ks: KeyspaceDef, table: TableDef) -> Schema:
        return Schema({**self.keyspaces, ks.name: replace(ks, tables={**ks.tables, table.name: table})})


class SchemaStore:
    """The schema's durable home in the engine, and the engine tables that hold user data."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.RLock()  # held by every schema change, local or merged from a peer
        engine.create_table(KEYSPACES_TABLE)
        engine.create_table(TABLES_TABLE)
        self.schema = self._load()
        for table in self.schema.tables():
            engine.create_table(table.storage_id, gc_grace_seconds=table.gc_grace_seconds)

    def _load(self) -> Schema:
        tables: dict[str, dict[str, TableDef]] = {}
        for key, rows in self.engine.table(TABLES_TABLE).scan():
            for _ck, cells in rows:
                table = TableDef.from_wire(msgpack.unpackb(cells[b"def"][1]))
                tables.setdefault(key.decode(), {})[table.name] = table
        keyspaces = {}
        for key, rows in self.engine.table(KEYSPACES_TABLE).scan():
            for _ck, cells in rows:
                ks = KeyspaceDef.from_wire(msgpack.unpackb(cells[b"def"][1]), tables.get(key.decode(), {}))
                keyspaces[ks.name] = ks
        return Schema(keyspaces)

    def commit(self, new: Schema, timestamp: int) -> None:
        """Make NEW the schema, durably (one engine batch), creating and dropping engine tables as needed."""
        old = self.schema
        now = self.engine.now()
        mutations = []
        for name in set(old.keyspaces) | set(new.keyspaces):
            before, after = old.keyspaces.get(name), new.keyspaces.get(name)
            key = name.encode()
            if after is None:
                mutations.append(Mutation(KEYSPACES_TABLE, key).delete_partition(timestamp, now))
                mutations.append(Mutation(TABLES_TABLE, key).delete_partition(timestamp, now))
                continue
            if before is None or before.to_wire() != after.to_wire():
                mutations.append(Mutation(KEYSPACES_TABLE, key).set(b"", b"def", msgpack.packb(after.to_wire()), timestamp))
            before_tables = before.tables if before is not None else {}
            m = Mutation(TABLES_TABLE, key)
            for tname in set(before_tables) | set(after.tables):
                if tname not in after.tables:
                    m.delete_row(tname.encode(), timestamp, now)
                elif before_tables.get(tname) != after.tables[tname]:
                    m.set(tname.encode(), b"def", msgpack.packb(after.tables[tname].to_wire()), timestamp)
            if m.rows:
                mutations.append(m)
        self._sync_tables(old, new, mutations)
        self.schema = new

    def _sync_tables(self, old: Schema, new: Schema, mutations: list[Mutation]) -> None:
        """Create the engine tables NEW adds, apply MUTATIONS, then drop the tables NEW no longer has."""
        new_ids = {t.storage_id: t for t in new.tables()}
        old_ids = {t.storage_id for t in old.tables()}
        for storage_id, table in new_ids.items():
            gc = table.gc_grace_seconds
            if storage_id not in old_ids:
                self.engine.create_table(storage_id, gc_grace_seconds=gc)
            elif self.engine.table(storage_id).gc_grace_seconds != gc:
                self.engine.set_table_options(storage_id, gc_grace_seconds=gc)
        if mutations:
            self.engine.apply_batch(mutations)
        for storage_id in old_ids - set(new_ids):
            self.engine.drop_table(storage_id)

    # -- spreading the schema across a cluster ------------------------------------------------------------------

    def schema_mutations(self) -> list[Mutation]:
        """Every partition of the schema tables, tombstones included: what a peer merges to catch up with us."""
        out = []
        for table_id in (KEYSPACES_TABLE, TABLES_TABLE):
            for _sk, key, raw in self.engine.table(table_id).scan_raw():
                out.append(Mutation.from_raw(table_id, key, raw))
        return out

    def merge(self, mutations: list[Mutation]) -> bool:
        """Merge a peer's schema mutations into ours by the one merge rule (so concurrent changes on different
        nodes converge), then load the result. Returns True when our schema changed."""
        with self.lock:
            mutations = [m for m in mutations if m.table_id in (KEYSPACES_TABLE, TABLES_TABLE)]
            if mutations:
                self.engine.apply_batch(mutations)
            new = self._load()
            if new.version() == self.schema.version():
                return False
            self._sync_tables(self.schema, new, [])
            self.schema = new
            return True
