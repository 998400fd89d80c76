"""Statement objects produced by the CQL parser: frozen dataclasses, one per statement kind.

Values (terms) are widecol.schema.literals Literal / CollectionLiteral, BindMarker, FunctionCall or TypeHint.
Names are already normalised: unquoted identifiers lowercased, quoted ones as written. CQL types are kept as
normalised type text (e.g. "map<text, frozen<list<int>>>"). Table options are plain Python values
(str, int, float, bool, or dict of those). Every statement's `bind_markers` lists its markers in text order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from widecol.schema.literals import CollectionLiteral, Literal

__all__ = ["Literal", "CollectionLiteral"]


@dataclass(frozen=True)
class BindMarker:
    index: int  # 0-based position among the statement's markers
    name: str | None = None  # for :name markers


@dataclass(frozen=True)
class FunctionCall:
    """name(args) in a term or selector; name is lowercased (token, now, writetime, ttl, count, ...)."""

    name: str
    args: tuple = ()


@dataclass(frozen=True)
class TypeHint:
    """(type) term."""

    type: str
    value: Any


@dataclass(frozen=True)
class ColumnRef:
    name: str


@dataclass(frozen=True)
class CountRows:
    """COUNT(*) or COUNT(1)."""


@dataclass(frozen=True)
class Cast:
    value: Any
    type: str


@dataclass(frozen=True)
class Selector:
    expr: Any  # ColumnRef | FunctionCall | CountRows | Cast | term
    alias: str | None = None


@dataclass(frozen=True)
class Relation:
    """A WHERE restriction. lhs: ColumnRef, tuple of column names (multi-column), or FunctionCall('token').

    op: '=', '<', '<=', '>', '>=', '!=', 'IN', 'CONTAINS', 'CONTAINS KEY', 'LIKE'. rhs: a term, or for IN a
    tuple of terms (or a single BindMarker); for multi-column a CollectionLiteral('tuple') or tuple of them.
    """

    lhs: Any
    op: str
    rhs: Any


@dataclass(frozen=True)
class Condition:
    """An LWT IF condition: column[key] op value (key None for a whole column)."""

    column: str
    op: str
    value: Any
    key: Any = None


@dataclass(frozen=True)
class Assignment:
    """An UPDATE SET item. op: 'set' (c = v), 'add' (c = c + v / c += v), 'prepend' (c = v + c),
    'remove' (c = c - v / c -= v), 'set_element' (c[key] = v)."""

    column: str
    op: str
    value: Any
    key: Any = None


@dataclass(frozen=True)
class DeleteTarget:
    column: str
    key: Any = None


@dataclass(frozen=True)
class ColumnDef:
    name: str
    type: str
    static: bool = False


@dataclass(frozen=True)
class Statement:
    pass


@dataclass(frozen=True)
class Use(Statement):
    keyspace: str
    bind_markers: tuple = ()


@dataclass(frozen=True)
class CreateKeyspace(Statement):
    name: str
    replication: dict = field(default_factory=dict)
    durable_writes: bool = True
    if_not_exists: bool = False
    options: dict = field(default_factory=dict)
    bind_markers: tuple = ()


@dataclass(frozen=True)
class AlterKeyspace(Statement):
    name: str
    replication: dict | None = None
    durable_writes: bool | None = None
    if_exists: bool = False
    options: dict = field(default_factory=dict)
    bind_markers: tuple = ()


@dataclass(frozen=True)
class DropKeyspace(Statement):
    name: str
    if_exists: bool = False
    bind_markers: tuple = ()


@dataclass(frozen=True)
class CreateTable(Statement):
    keyspace: str | None
    table: str
    columns: tuple = ()  # ColumnDef, in declaration order
    partition_key: tuple = ()
    clustering: tuple = ()
    clustering_order: tuple = ()  # (column, "ASC" | "DESC") pairs, as written
    options: dict = field(default_factory=dict)
    if_not_exists: bool = False
    compact_storage: bool = False
    bind_markers: tuple = ()
    primary_key_definitions: int = 1  # how many PRIMARY KEY clauses the text had (exactly one is valid)


@dataclass(frozen=True)
class AlterTable(Statement):
    keyspace: str | None
    table: str
    action: str  # "ADD" | "DROP" | "WITH" | "RENAME" | "ALTER"
    added: tuple = ()  # ColumnDef
    dropped: tuple = ()  # column names
    options: dict = field(default_factory=dict)
    renamed: tuple = ()  # (old, new) pairs
    altered: tuple = ()  # (column, type) pairs for ALTER col TYPE t
    if_exists: bool = False
    bind_markers: tuple = ()


@dataclass(frozen=True)
class DropTable(Statement):
    keyspace: str | None
    table: str
    if_exists: bool = False
    bind_markers: tuple = ()


@dataclass(frozen=True)
class Truncate(Statement):
    keyspace: str | None
    table: str
    bind_markers: tuple = ()


@dataclass(frozen=True)
class Insert(Statement):
    keyspace: str | None
    table: str
    columns: tuple = ()
    values: tuple = ()
    json: Any = None  # the JSON term for INSERT JSON
    if_not_exists: bool = False
    ttl: Any = None
    timestamp: Any = None
    json_default: str | None = None  # "NULL" | "UNSET" for DEFAULT NULL / DEFAULT UNSET
    bind_markers: tuple = ()


@dataclass(frozen=True)
class Update(Statement):
    keyspace: str | None
    table: str
    assignments: tuple = ()
    where: tuple = ()
    conditions: tuple = ()
    if_exists: bool = False
    ttl: Any = None
    timestamp: Any = None
    bind_markers: tuple = ()


@dataclass(frozen=True)
class Delete(Statement):
    keyspace: str | None
    table: str
    targets: tuple = ()  # DeleteTarget; empty = whole row(s)
    where: tuple = ()
    conditions: tuple = ()
    if_exists: bool = False
    timestamp: Any = None
    bind_markers: tuple = ()


@dataclass(frozen=True)
class Batch(Statement):
    kind: str  # "LOGGED" | "UNLOGGED" | "COUNTER"
    statements: tuple = ()
    timestamp: Any = None
    bind_markers: tuple = ()


@dataclass(frozen=True)
class Select(Statement):
    keyspace: str | None
    table: str
    selectors: tuple = ()  # Selector; empty means *
    distinct: bool = False
    json: bool = False
    where: tuple = ()
    group_by: tuple = ()
    order_by: tuple = ()  # (column, "ASC" | "DESC")
    per_partition_limit: Any = None
    limit: Any = None
    allow_filtering: bool = False
    bind_markers: tuple = ()


@dataclass(frozen=True)
class Unsupported(Statement):
    """A statement Cassandra accepts but widecol does not execute, e.g. what="CREATE INDEX"."""

    what: str
    bind_markers: tuple = ()
