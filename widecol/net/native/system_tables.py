"""The virtual system tables drivers read when they connect: system.local, system.peers and system_schema.*.

How this works: `SystemTables.select(stmt)` answers a parsed SELECT on one of these tables, or returns None when
the statement is for some other table (the executor then handles it). Each table is a list of column
(name, type) pairs and a function producing its rows as dicts, built fresh from the live schema on every query;
WHERE restrictions of the form `column = literal` (and IN) are applied as filters, and the selected columns are
projected. system.peers_v2 (Cassandra 4's, with ports) is system.peers plus each peer's native and internode port.
The node's host id and tokens are chosen once and kept in the data directory (`identity.json`).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from widecol.cql import ast, describe
from widecol.cql.executor import Executor, Rows
from widecol.errors import InvalidRequest
from widecol.schema.model import CLUSTERING, DEFAULT_TABLE_OPTIONS, PARTITION_KEY, STATIC, Schema
from widecol.schema.types import parse_type

PARTITIONER = "org.apache.cassandra.dht.Murmur3Partitioner"
RELEASE_VERSION = "4.0.11"  # 4.0: cqlsh leaves DESCRIBE to the server, which we answer
CQL_VERSION = "3.4.5"

_T = parse_type
_TEXT, _MAP, _SET = "text", "frozen<map<text, text>>", "frozen<set<text>>"


def read_identity(data_dir: Path) -> tuple[uuid.UUID, list[int]] | None:
    """This node's host id and tokens as kept in DATA_DIR/identity.json, or None before they are chosen."""
    path = data_dir / "identity.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    return uuid.UUID(data["host_id"]), [int(t) for t in data["tokens"]]


def save_identity(data_dir: Path, host_id: uuid.UUID, tokens: list[int]) -> None:
    """Keep HOST_ID and TOKENS in DATA_DIR/identity.json (written whole, then renamed, then fsynced)."""
    path = data_dir / "identity.json"
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        f.write(json.dumps({"host_id": str(host_id), "tokens": [str(t) for t in tokens]}))
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def load_identity(data_dir: Path, num_tokens: int) -> tuple[uuid.UUID, list[int]]:
    """This node's host id and tokens: read from DATA_DIR/identity.json, or chosen (a random uuid and NUM_TOKENS
    Murmur3 tokens spread evenly over the ring) and kept there the first time."""
    identity = read_identity(data_dir)
    if identity is not None:
        return identity
    host_id = uuid.uuid4()
    step = 2**64 // num_tokens
    offset = uuid.uuid4().int % step
    tokens = [-(2**63) + offset + i * step for i in range(num_tokens)]
    save_identity(data_dir, host_id, tokens)
    return host_id, tokens


_KIND = {PARTITION_KEY: "partition_key", CLUSTERING: "clustering", STATIC: "static"}

_TABLE_OPTION_COLUMNS = [
    ("bloom_filter_fp_chance", "double"), ("caching", _MAP), ("comment", _TEXT), ("compaction", _MAP),
    ("compression", _MAP), ("crc_check_chance", "double"), ("dclocal_read_repair_chance", "double"),
    ("default_time_to_live", "int"), ("extensions", "frozen<map<text, blob>>"), ("gc_grace_seconds", "int"),
    ("max_index_interval", "int"), ("memtable_flush_period_in_ms", "int"), ("min_index_interval", "int"),
    ("read_repair_chance", "double"), ("speculative_retry", _TEXT),
]
# Options widecol keeps (comment, compaction, default_time_to_live, gc_grace_seconds) default as the schema model
# says; the rest are Cassandra's defaults, shown so that drivers see a complete row.
_TABLE_OPTION_DEFAULTS: dict[str, Any] = {
    "bloom_filter_fp_chance": 0.01, "caching": {"keys": "ALL", "rows_per_partition": "NONE"},
    "compression": {"chunk_length_in_kb": "64", "class": "org.apache.cassandra.io.compress.LZ4Compressor"},
    "crc_check_chance": 1.0, "dclocal_read_repair_chance": 0.1, "extensions": {}, "max_index_interval": 2048,
    "memtable_flush_period_in_ms": 0, "min_index_interval": 128, "read_repair_chance": 0.0,
    "speculative_retry": "99PERCENTILE",
    **DEFAULT_TABLE_OPTIONS,
}


def _option(name: str, value: Any) -> Any:
    """A table option as system_schema.tables stores it: maps with text values, numbers as numbers."""
    if isinstance(value, dict):
        return {str(k): (json.dumps(v) if isinstance(v, dict) else str(v)) for k, v in value.items()}
    if name in ("bloom_filter_fp_chance", "crc_check_chance", "dclocal_read_repair_chance", "read_repair_chance"):
        return float(value)
    if name in ("default_time_to_live", "gc_grace_seconds", "max_index_interval", "memtable_flush_period_in_ms",
                "min_index_interval"):
        return int(value)
    return value if isinstance(value, str) else str(value)


class SystemTables:
    """Answers SELECTs on the virtual tables from the executor's live schema and this node's identity."""

    def __init__(self, executor: Executor, *, cluster_name: str, address: str, dc: str, rack: str,
                 host_id: uuid.UUID, tokens: list[int]) -> None:
        self.executor = executor
        self.cluster_name, self.address, self.dc, self.rack = cluster_name, address, dc, rack
        self.host_id, self.tokens = host_id, tokens
        self.peers: Callable[[], list[dict]] = lambda: []  # a cluster node sets this from its membership
        empty: Callable[[Schema], list[dict]] = lambda _s: []  # noqa: E731
        self.tables: dict[tuple[str, str], tuple[list[tuple[str, str]], Callable[[Schema], list[dict]]]] = {
            ("system", "local"): (_LOCAL_COLUMNS, self._local),
            ("system", "peers"): (_PEERS_COLUMNS, lambda _s: self.peers()),
            ("system", "peers_v2"): (_PEERS_V2_COLUMNS, lambda _s: [_peer_v2(row) for row in self.peers()]),
            ("system_schema", "keyspaces"): (_KEYSPACES_COLUMNS, lambda s: _keyspaces(s) + self._virtual_keyspaces()),
            ("system_schema", "tables"): (_TABLES_COLUMNS, lambda s: _tables(s) + self._virtual_tables()),
            ("system_schema", "columns"): (_COLUMNS_COLUMNS, lambda s: _columns(s) + self._virtual_columns()),
            ("system_schema", "types"): (_ks_cols("type_name", "field_names", "field_types"), empty),
            ("system_schema", "functions"): (_ks_cols("function_name", "argument_types"), empty),
            ("system_schema", "aggregates"): (_ks_cols("aggregate_name", "argument_types"), empty),
            ("system_schema", "triggers"): (_ks_cols("table_name", "trigger_name"), empty),
            ("system_schema", "indexes"): (_ks_cols("table_name", "index_name"), empty),
            ("system_schema", "views"): (_ks_cols("view_name", "base_table_name"), empty),
        }

    def handles(self, stmt: object, session: str | None) -> bool:
        """True when STMT is a SELECT this module answers (or must refuse, like system.peers_v2)."""
        if not isinstance(stmt, ast.Select):
            return False
        ks = stmt.keyspace or session
        return ks in ("system", "system_schema", "system_views")

    def register(self, keyspace: str, table: str, columns: list[tuple[str, str]],
                 produce: Callable[[Schema], list[dict]]) -> None:
        """Add a virtual table: COLUMNS (name, CQL type) and a function producing its rows as dicts."""
        self.tables[(keyspace, table)] = (columns, produce)

    def select(self, stmt: ast.Select, session: str | None = None) -> Rows:
        """The rows of STMT, all in one page. InvalidRequest for tables that do not exist or unsupported
        restrictions."""
        ks = stmt.keyspace or session or ""
        entry = self.tables.get((ks, stmt.table))
        if entry is None:
            raise InvalidRequest(f"unconfigured table {stmt.table}")
        columns, produce = entry
        types = {name: _T(t) for name, t in columns}
        rows = produce(self.executor.store.schema)
        for rel in stmt.where:
            rows = [r for r in rows if _matches(r, rel, types)]
        if stmt.selectors:
            names = []
            for sel in stmt.selectors:
                if not isinstance(sel.expr, ast.ColumnRef) or sel.expr.name not in types:
                    raise InvalidRequest(f"Undefined column name {getattr(sel.expr, 'name', sel.expr)}")
                names.append((sel.alias or sel.expr.name, sel.expr.name))
        else:
            names = [(n, n) for n, _ in columns]
        out_cols = [(alias, types[name]) for alias, name in names]
        return Rows(out_cols, [tuple(r.get(name) for _, name in names) for r in rows], None)

    # The virtual tables describe themselves in system_schema, as Cassandra's system keyspaces do, so that tools
    # that check a table against the schema metadata (cqlsh) accept queries on them. Each is keyed by its first
    # column.

    def _virtual_keyspaces(self) -> list[dict]:
        local = {"class": "org.apache.cassandra.locator.LocalStrategy"}
        return [{"keyspace_name": ks, "durable_writes": True, "replication": local}
                for ks in sorted({ks for ks, _ in self.tables})]

    def _virtual_tables(self) -> list[dict]:
        rows = []
        for ks, table in sorted(self.tables):
            row = {"keyspace_name": ks, "table_name": table, "id": uuid.uuid5(uuid.NAMESPACE_OID, f"{ks}.{table}"),
                   "flags": {"compound"}}
            for name, _ in _TABLE_OPTION_COLUMNS:
                row[name] = _option(name, _TABLE_OPTION_DEFAULTS[name])
            rows.append(row)
        return rows

    def _virtual_columns(self) -> list[dict]:
        rows = []
        for (ks, table), (columns, _) in sorted(self.tables.items(), key=lambda item: item[0]):
            for i, (name, cql_type) in enumerate(columns):
                rows.append({
                    "keyspace_name": ks, "table_name": table, "column_name": name, "clustering_order": "none",
                    "column_name_bytes": name.encode(), "kind": "partition_key" if i == 0 else "regular",
                    "position": 0 if i == 0 else -1, "type": cql_type,
                })
        return rows

    def describe(self, args: str, session: str | None) -> Rows:
        """The server's answer to `DESCRIBE ARGS` (the words after DESCRIBE), as Cassandra 4 gives it."""
        schema = self.executor.store.schema
        words = args.strip().rstrip(";").split()
        if [w.lower() for w in words] == ["cluster"]:
            return Rows([("cluster", _T(_TEXT)), ("partitioner", _T(_TEXT)), ("snitch", _T(_TEXT))],
                        [(self.cluster_name, PARTITIONER, "org.apache.cassandra.locator.GossipingPropertyFileSnitch")],
                        None)
        info = describe.SchemaInfo.from_rows(self.tables[("system_schema", "keyspaces")][1](schema),
                                             self.tables[("system_schema", "tables")][1](schema),
                                             self.tables[("system_schema", "columns")][1](schema))
        names, rows = describe.describe_rows(info, args, session)
        return Rows([(name, _T(_TEXT)) for name in names], rows, None)

    def _local(self, schema: Schema) -> list[dict]:
        return [{
            "key": "local", "bootstrapped": "COMPLETED", "broadcast_address": self.address,
            "listen_address": self.address, "rpc_address": self.address, "cluster_name": self.cluster_name,
            "cql_version": CQL_VERSION, "data_center": self.dc, "rack": self.rack, "host_id": self.host_id,
            "native_protocol_version": "4", "partitioner": PARTITIONER, "release_version": RELEASE_VERSION,
            "schema_version": schema.version(), "tokens": {str(t) for t in self.tokens},
        }]


def _matches(row: dict, rel: Any, types: dict) -> bool:
    if not isinstance(rel.lhs, ast.ColumnRef) or rel.lhs.name not in types or rel.op not in ("=", "IN"):
        raise InvalidRequest("Only = and IN restrictions are supported on system tables")
    t = types[rel.lhs.name]
    terms = rel.rhs if rel.op == "IN" else (rel.rhs,)
    try:
        wanted = [t.from_literal(term, rel.lhs.name) for term in terms]
    except AttributeError:
        raise InvalidRequest("Bind markers are not supported on system tables") from None
    return row.get(rel.lhs.name) in wanted


def _ks_cols(*names: str) -> list[tuple[str, str]]:
    return [("keyspace_name", _TEXT)] + [(n, _TEXT) for n in names]


def _keyspaces(schema: Schema) -> list[dict]:
    return [{"keyspace_name": ks.name, "durable_writes": ks.durable_writes, "replication": dict(ks.replication)}
            for ks in schema.keyspaces.values()]


def _tables(schema: Schema) -> list[dict]:
    rows = []
    for ks in schema.keyspaces.values():
        for t in ks.tables.values():
            row = {"keyspace_name": ks.name, "table_name": t.name, "id": t.id, "flags": {"compound"}}
            for name, _ in _TABLE_OPTION_COLUMNS:
                row[name] = _option(name, t.options.get(name, _TABLE_OPTION_DEFAULTS[name]))
            rows.append(row)
    return rows


def _columns(schema: Schema) -> list[dict]:
    rows = []
    for ks in schema.keyspaces.values():
        for t in ks.tables.values():
            for c in t.columns:
                order = "none" if c.kind != CLUSTERING else ("desc" if c.descending else "asc")
                rows.append({
                    "keyspace_name": ks.name, "table_name": t.name, "column_name": c.name,
                    "clustering_order": order, "column_name_bytes": c.name.encode(),
                    "kind": _KIND.get(c.kind, "regular"), "position": c.position, "type": c.type,
                })
    return rows


_LOCAL_COLUMNS = [
    ("key", _TEXT), ("bootstrapped", _TEXT), ("broadcast_address", "inet"), ("cluster_name", _TEXT),
    ("cql_version", _TEXT), ("data_center", _TEXT), ("host_id", "uuid"), ("listen_address", "inet"),
    ("native_protocol_version", _TEXT), ("partitioner", _TEXT), ("rack", _TEXT), ("release_version", _TEXT),
    ("rpc_address", "inet"), ("schema_version", "uuid"), ("tokens", _SET),
]
_PEERS_COLUMNS = [
    ("peer", "inet"), ("data_center", _TEXT), ("host_id", "uuid"), ("preferred_ip", "inet"), ("rack", _TEXT),
    ("release_version", _TEXT), ("rpc_address", "inet"), ("schema_version", "uuid"), ("tokens", _SET),
]
_PEERS_V2_COLUMNS = [
    ("peer", "inet"), ("peer_port", "int"), ("data_center", _TEXT), ("host_id", "uuid"), ("native_address", "inet"),
    ("native_port", "int"), ("preferred_ip", "inet"), ("preferred_port", "int"), ("rack", _TEXT),
    ("release_version", _TEXT), ("schema_version", "uuid"), ("tokens", _SET),
]


def _peer_v2(row: dict) -> dict:
    """A system.peers row (with the extra keys peer_port and native_port) as system.peers_v2 shows it."""
    return {**row, "native_address": row.get("rpc_address"), "preferred_port": row.get("peer_port")}


_KEYSPACES_COLUMNS = [("keyspace_name", _TEXT), ("durable_writes", "boolean"), ("replication", _MAP)]
_TABLES_COLUMNS = [("keyspace_name", _TEXT), ("table_name", _TEXT), *_TABLE_OPTION_COLUMNS,
                   ("flags", _SET), ("id", "uuid")]
_COLUMNS_COLUMNS = [
    ("keyspace_name", _TEXT), ("table_name", _TEXT), ("column_name", _TEXT), ("clustering_order", _TEXT),
    ("column_name_bytes", "blob"), ("kind", _TEXT), ("position", "int"), ("type", _TEXT),
]
