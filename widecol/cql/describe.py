"""DESCRIBE: CQL that recreates keyspaces and tables, built from system_schema rows (the shell and the server).

How this works: `SchemaInfo.from_rows` takes the rows of system_schema.keyspaces, .tables and .columns (as
dicts, the way the shell reads them through the client) and indexes them by keyspace and table. The describe_*
functions render from that index only, so they are plain functions of the rows: CREATE KEYSPACE with its
replication map and durable_writes; CREATE TABLE with its columns (partition key, clustering, then the rest by
name, as Cassandra lists them), PRIMARY KEY ((pk...), ck...), WITH CLUSTERING ORDER BY and every table option
of the row in name order. Identifiers that need it are double-quoted, so the output parses back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from widecol.cql.parser import RESERVED
from widecol.errors import InvalidRequest

SYSTEM_KEYSPACES = ("system", "system_schema", "system_auth", "system_distributed", "system_traces",
                    "system_views")
_NOT_OPTIONS = {"keyspace_name", "table_name", "id", "flags", "extensions"}
_PLAIN = re.compile(r"[a-z][a-z0-9_]*")


@dataclass
class SchemaInfo:
    """The schema as system_schema rows describe it. `keyspaces[ks]` is its row; `tables[ks][t]` the table row;
    `columns[(ks, t)]` the table's column rows."""

    keyspaces: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    tables: dict[str, dict[str, Mapping[str, Any]]] = field(default_factory=dict)
    columns: dict[tuple[str, str], list[Mapping[str, Any]]] = field(default_factory=dict)

    @classmethod
    def from_rows(cls, keyspaces: Iterable[Mapping[str, Any]], tables: Iterable[Mapping[str, Any]],
                  columns: Iterable[Mapping[str, Any]]) -> SchemaInfo:
        info = cls()
        for row in keyspaces:
            info.keyspaces[row["keyspace_name"]] = row
            info.tables.setdefault(row["keyspace_name"], {})
        for row in tables:
            info.tables.setdefault(row["keyspace_name"], {})[row["table_name"]] = row
        for row in columns:
            info.columns.setdefault((row["keyspace_name"], row["table_name"]), []).append(row)
        return info

    def keyspace_names(self) -> list[str]:
        return sorted(self.keyspaces)

    def table_names(self, keyspace: str) -> list[str]:
        return sorted(self.tables.get(keyspace, {}))

    def column_names(self, keyspace: str, table: str) -> list[str]:
        return [c["column_name"] for c in _ordered_columns(self.columns.get((keyspace, table), []))]


def quote(name: str) -> str:
    """NAME as a CQL identifier: bare when it is lowercase and not reserved, else double-quoted."""
    if _PLAIN.fullmatch(name) and name not in RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def literal(value: Any) -> str:
    """VALUE as a CQL constant for a WITH clause: strings quoted, maps with keys in order, numbers bare."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{literal(str(k))}: {literal(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, (set, frozenset, list, tuple)):
        return "{" + ", ".join(literal(v) for v in sorted(value)) + "}"
    if value is None:
        return "null"
    return str(value)


def _ordered_columns(rows: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    rank = {"partition_key": 0, "clustering": 1}

    def key(c: Mapping[str, Any]) -> tuple[int, int, str]:
        kind_rank = rank.get(c["kind"], 2)
        position = c["position"] if kind_rank < 2 else 0
        return kind_rank, position, c["column_name"]

    return sorted(rows, key=key)


def describe_keyspace_only(info: SchemaInfo, keyspace: str) -> str:
    """The CREATE KEYSPACE statement of KEYSPACE."""
    row = info.keyspaces.get(keyspace)
    if row is None:
        raise InvalidRequest(f"Keyspace '{keyspace}' not found")
    durable = row.get("durable_writes", True)
    return (f"CREATE KEYSPACE {quote(keyspace)} WITH replication = {literal(dict(row['replication']))}"
            f" AND durable_writes = {literal(bool(durable))};")


def describe_table(info: SchemaInfo, keyspace: str, table: str) -> str:
    """The CREATE TABLE statement of KEYSPACE.TABLE, with its clustering order and options."""
    row = info.tables.get(keyspace, {}).get(table)
    if row is None:
        if keyspace not in info.keyspaces:
            raise InvalidRequest(f"Keyspace '{keyspace}' not found")
        raise InvalidRequest(f"Table '{table}' not found in keyspace '{keyspace}'")
    cols = _ordered_columns(info.columns.get((keyspace, table), []))
    partition = [c for c in cols if c["kind"] == "partition_key"]
    clustering = [c for c in cols if c["kind"] == "clustering"]
    lines = [f"CREATE TABLE {quote(keyspace)}.{quote(table)} ("]
    inline_key = len(partition) == 1 and not clustering
    for c in cols:
        text = f"    {quote(c['column_name'])} {c['type']}"
        if c["kind"] == "static":
            text += " static"
        if inline_key and c["kind"] == "partition_key":
            text += " PRIMARY KEY"
        lines.append(text + ",")
    if inline_key:
        lines[-1] = lines[-1][:-1]
    else:
        pk = ", ".join(quote(c["column_name"]) for c in partition)
        if len(partition) > 1:
            pk = f"({pk})"
        key = ", ".join([pk] + [quote(c["column_name"]) for c in clustering])
        lines.append(f"    PRIMARY KEY ({key})")
    clauses = []
    if clustering:
        order = ", ".join(f"{quote(c['column_name'])} {'DESC' if c['clustering_order'] == 'desc' else 'ASC'}"
                          for c in clustering)
        clauses.append(f"CLUSTERING ORDER BY ({order})")
    for name in sorted(row):
        if name not in _NOT_OPTIONS and row[name] is not None:
            clauses.append(f"{name} = {literal(row[name])}")
    text = "\n".join(lines) + "\n)"
    if clauses:
        text += " WITH " + "\n    AND ".join(clauses)
    return text + ";"


def describe_keyspace(info: SchemaInfo, keyspace: str) -> str:
    """CREATE KEYSPACE, then CREATE TABLE for each of its tables, blank lines between."""
    parts = [describe_keyspace_only(info, keyspace)]
    parts += [describe_table(info, keyspace, t) for t in info.table_names(keyspace)]
    return "\n\n".join(parts)


def describe_schema(info: SchemaInfo) -> str:
    """Every user keyspace (the system ones left out) with its tables."""
    return "\n\n".join(describe_keyspace(info, ks) for ks in info.keyspace_names() if ks not in SYSTEM_KEYSPACES)


def describe_keyspaces(info: SchemaInfo) -> str:
    """The keyspace names, two spaces apart."""
    return "  ".join(quote(ks) for ks in info.keyspace_names())


def describe_tables(info: SchemaInfo, keyspace: str | None) -> str:
    """The table names of KEYSPACE, or of every keyspace under a `Keyspace NAME` heading when it is None."""
    if keyspace is not None:
        if keyspace not in info.keyspaces:
            raise InvalidRequest(f"Keyspace '{keyspace}' not found")
        return "  ".join(quote(t) for t in info.table_names(keyspace)) or "<empty>"
    blocks = []
    for ks in info.keyspace_names():
        heading = f"Keyspace {ks}"
        names = "  ".join(quote(t) for t in info.table_names(ks)) or "<empty>"
        blocks.append(f"{heading}\n{'-' * len(heading)}\n{names}")
    return "\n\n".join(blocks)


_NAME = re.compile(r'\s*("(?:[^"]|"")*"|[A-Za-z0-9_]+|\.)')


def _names(text: str) -> list[str]:
    """The identifiers and dots of TEXT: unquoted names lowercased, quoted ones as written."""
    out, pos = [], 0
    text = text.strip().rstrip(";").rstrip()
    while pos < len(text):
        m = _NAME.match(text, pos)
        if not m:
            raise InvalidRequest(f"Improper DESCRIBE command: cannot read {text[pos:].strip()!r}")
        token = m.group(1)
        out.append(token[1:-1].replace('""', '"') if token.startswith('"') else token.lower())
        pos = m.end()
    return out


def _qualified(parts: list[str], current: str | None, what: str) -> tuple[str, str]:
    if len(parts) == 3 and parts[1] == ".":
        return parts[0], parts[2]
    if len(parts) == 1 and parts[0] != ".":
        if current is None:
            raise InvalidRequest(f"No keyspace specified and no current keyspace for {what} {parts[0]}")
        return current, parts[0]
    raise InvalidRequest(f"Improper DESCRIBE command: expected a {what} name")


def describe(info: SchemaInfo, args: str, current: str | None) -> str:
    """The output of `DESCRIBE ARGS` with CURRENT as the session keyspace: KEYSPACES, TABLES, TABLE [ks.]t,
    KEYSPACE [k], SCHEMA, or a bare name (a keyspace if one has it, else a table of the current keyspace)."""
    words = _names(args)
    head = words[0] if words else ""
    rest = words[1:]
    if head == "keyspaces" and not rest:
        return describe_keyspaces(info)
    if head in ("tables", "columnfamilies") and not rest:
        return describe_tables(info, current)
    if head == "schema" and not rest:
        return describe_schema(info)
    if head in ("table", "columnfamily"):
        return describe_table(info, *_qualified(rest, current, "table"))
    if head == "keyspace":
        if not rest:
            if current is None:
                raise InvalidRequest("No keyspace specified and no current keyspace")
            return describe_keyspace(info, current)
        if len(rest) == 1:
            return describe_keyspace(info, rest[0])
        raise InvalidRequest("Improper DESCRIBE command: expected a keyspace name")
    if not words:
        raise InvalidRequest("DESCRIBE what? KEYSPACES, TABLES, TABLE name, KEYSPACE name or SCHEMA")
    if len(words) == 1 and words[0] in info.keyspaces:
        return describe_keyspace(info, words[0])
    keyspace, table = _qualified(words, current, "table")
    if table not in info.tables.get(keyspace, {}):
        raise InvalidRequest(f"'{' '.join(words)}' not found in keyspaces")
    return describe_table(info, keyspace, table)


# -- DESCRIBE as a server answers it (Cassandra 4.0 moved DESCRIBE server side; cqlsh 6 relies on it) ----------

ELEMENT_COLUMNS = ["keyspace_name", "type", "name", "create_statement"]
LIST_COLUMNS = ["keyspace_name", "type", "name"]


def describe_rows(info: SchemaInfo, args: str, current: str | None) -> tuple[list[str], list[tuple]]:
    """The result of the statement `DESCRIBE ARGS` as Cassandra 4 returns it: (column names, rows of text).
    Names: (keyspace_name, type, name); elements: (keyspace_name, type, name, create_statement), one row per
    keyspace or table. DESCRIBE CLUSTER is the caller's (it needs the cluster's name)."""
    words = _names(args)
    head = words[0] if words else ""
    rest = words[1:]
    if head == "keyspaces" and not rest:
        return LIST_COLUMNS, [(ks, "keyspace", ks) for ks in info.keyspace_names()]
    if head in ("tables", "columnfamilies") and not rest:
        keyspaces = [current] if current is not None else info.keyspace_names()
        return LIST_COLUMNS, [(ks, "table", t) for ks in keyspaces for t in info.table_names(ks)]
    full = head == "full" and rest == ["schema"]
    if (head == "schema" and not rest) or full:
        keyspaces = [ks for ks in info.keyspace_names() if full or ks not in SYSTEM_KEYSPACES]
        return ELEMENT_COLUMNS, [row for ks in keyspaces for row in _keyspace_rows(info, ks)]
    if head in ("table", "columnfamily"):
        ks, t = _qualified(rest, current, "table")
        return ELEMENT_COLUMNS, [(ks, "table", t, describe_table(info, ks, t))]
    if head == "keyspace":
        if len(rest) > 1:
            raise InvalidRequest("Improper DESCRIBE command: expected a keyspace name")
        name = rest[0] if rest else current
        if name is None:
            raise InvalidRequest("No keyspace specified and no current keyspace")
        return ELEMENT_COLUMNS, _keyspace_rows(info, name)
    if len(words) == 1 and words[0] in info.keyspaces:
        return ELEMENT_COLUMNS, _keyspace_rows(info, words[0])
    if not words:
        raise InvalidRequest("DESCRIBE what? KEYSPACES, TABLES, TABLE name, KEYSPACE name or SCHEMA")
    ks, t = _qualified(words, current, "table")
    if t not in info.tables.get(ks, {}):
        raise InvalidRequest(f"'{' '.join(words)}' not found in keyspaces")
    return ELEMENT_COLUMNS, [(ks, "table", t, describe_table(info, ks, t))]


def _keyspace_rows(info: SchemaInfo, keyspace: str) -> list[tuple]:
    rows = [(keyspace, "keyspace", keyspace, describe_keyspace_only(info, keyspace))]
    rows += [(keyspace, "table", t, describe_table(info, keyspace, t)) for t in info.table_names(keyspace)]
    return rows
