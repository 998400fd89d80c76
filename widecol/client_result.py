"""What the client hands back and takes in: Result, PreparedStatement, consistency names, wire types <-> values.

How this works: the native codec knows column types only as [option] tuples, e.g. (0x0020, (0x000D,)) for
list<text>; `type_from_option` turns one into our widecol.schema type object, whose `serialize`/`deserialize`
are the Cassandra byte forms, so the client decodes row cells and encodes bound values with the same code the
server uses. The wire does not say whether a collection is frozen: a top-level collection is taken as not
frozen, nested ones as frozen (the only legal nesting). Nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from widecol.errors import InvalidRequest, ProtocolError
from widecol.net.native import codec
from widecol.net.native.results import (
    PreparedResult,
    ResultResponse,
    RowsResult,
    SchemaChangeResult,
    SetKeyspaceResult,
    VoidResult,
)
from widecol.schema.types import SCALARS, CqlType, ListType, MapType, SetType, TupleType

_SCALARS_BY_ID: dict[int, CqlType] = {}
for _t in SCALARS.values():
    _SCALARS_BY_ID.setdefault(_t.option_id, _t)
_SCALARS_BY_ID[0x000A] = SCALARS["text"]  # varchar: the same as text
_SCALARS_BY_ID[0x0005] = SCALARS["bigint"]  # counter: a bigint on the wire


def type_from_option(option: tuple, nested: bool = False) -> CqlType:
    """Our type object for a wire [option] tuple as the codec decodes it. ProtocolError for ids we lack."""
    kind = option[0]
    if kind == codec.TYPE_LIST:
        return ListType(type_from_option(option[1], True), frozen=nested)
    if kind == codec.TYPE_SET:
        return SetType(type_from_option(option[1], True), frozen=nested)
    if kind == codec.TYPE_MAP:
        return MapType(type_from_option(option[1], True), type_from_option(option[2], True), frozen=nested)
    if kind == codec.TYPE_TUPLE:
        return TupleType([type_from_option(o, True) for o in option[1:]])
    if kind == codec.TYPE_CUSTOM:
        return SCALARS["blob"]  # unknown custom types come back as their raw bytes
    t = _SCALARS_BY_ID.get(kind)
    if t is None:
        raise ProtocolError(f"column type option 0x{kind:04x} is not supported by the client")
    return t


def consistency_name(level: str | int) -> str:
    """The protocol name of a consistency level given by name (any case) or by its numeric code."""
    if isinstance(level, int) and not isinstance(level, bool):
        if level in codec.CONSISTENCY_NAMES:
            return codec.CONSISTENCY_NAMES[level]
    elif isinstance(level, str) and level.upper() in codec.CONSISTENCY_CODES:
        return level.upper()
    names = ", ".join(codec.CONSISTENCY_CODES)
    raise ValueError(f"unknown consistency level {level!r}; use one of {names} or its code")


@dataclass(frozen=True)
class Result:
    """One answer. `kind` is "void", "rows", "set_keyspace" or "schema_change". For rows: `columns` are
    (name, type object) pairs, `rows` tuples of Python values, `paging_state` the token for the next page
    (None on the last page). `keyspace` is set for set_keyspace; `change` is (change_type, target, keyspace,
    name) for schema_change. The caller owns the lists."""

    kind: str
    columns: list[tuple[str, CqlType]] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    paging_state: bytes | None = None
    keyspace: str | None = None
    change: tuple[str, str, str, str] | None = None

    def one(self) -> tuple | None:
        """The first row, or None when there is none."""
        return self.rows[0] if self.rows else None

    def as_dicts(self) -> list[dict[str, Any]]:
        """Every row as a dict from column name to value."""
        names = [name for name, _ in self.columns]
        return [dict(zip(names, row, strict=True)) for row in self.rows]

    def __iter__(self):  # noqa: ANN204 - iterating a Result iterates its rows
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class PreparedStatement:
    """A statement the server has prepared: pass it to `execute` with its values. `bind_columns` are the bind
    markers as (name, type) pairs, `pk_indexes` which markers give the partition key (routing)."""

    query: str
    keyspace: str | None  # the session keyspace it was prepared under (ids depend on it)
    statement_id: bytes
    bind_columns: list[tuple[str, CqlType]]
    pk_indexes: list[int]


def prepared_from(query: str, keyspace: str | None, result: PreparedResult) -> PreparedStatement:
    binds = [(c.name, type_from_option(c.type)) for c in result.bind_columns]
    return PreparedStatement(query, keyspace, result.statement_id, binds, list(result.pk_indexes))


def bind_values(prepared: PreparedStatement, params: Any) -> tuple[list[codec.Value], list[str] | None]:
    """The wire values (and names, for a dict) of PARAMS for PREPARED. Raises InvalidRequest for a wrong count,
    an unknown name or a value its column's type refuses; nothing is sent then."""
    columns = prepared.bind_columns
    if params is None:
        params = []
    if isinstance(params, dict):
        types = {name: t for name, t in columns}
        unknown = [name for name in params if name not in types]
        if unknown:
            raise InvalidRequest(f"no bind marker named {', '.join(map(str, unknown))} in: {prepared.query}")
        names = list(params)
        return [_encode(types[n], params[n], n) for n in names], names
    params = list(params)
    if len(params) != len(columns):
        raise InvalidRequest(f"There were {len(columns)} markers(?) in CQL but {len(params)} bound variables")
    return [_encode(t, v, name) for (name, t), v in zip(columns, params, strict=True)], None


def _encode(t: CqlType, value: Any, name: str) -> bytes | None:
    if value is None:
        return None
    try:
        return t.serialize(value)
    except InvalidRequest:
        raise
    except (TypeError, ValueError, OverflowError, AttributeError) as exc:
        raise InvalidRequest(f"Invalid value {value!r} for {name} of type {t.cql_name}: {exc}") from None


def result_from(response: ResultResponse) -> Result:
    """The Result for a RESULT message (not PREPARED, which `prepared_from` handles)."""
    res = response.result
    if isinstance(res, RowsResult):
        columns = [(c.name, type_from_option(c.type)) for c in res.metadata.columns]
        return Result("rows", columns, decode_rows(columns, res.rows), res.metadata.paging_state)
    if isinstance(res, SetKeyspaceResult):
        return Result("set_keyspace", keyspace=res.keyspace)
    if isinstance(res, SchemaChangeResult):
        c = res.change
        return Result("schema_change", change=(c.change, c.target, c.keyspace, c.name))
    if isinstance(res, VoidResult):
        return Result("void")
    raise ProtocolError(f"unexpected RESULT {type(res).__name__}")


def decode_rows(columns: list[tuple[str, CqlType]], rows: list[list[bytes | None]]) -> list[tuple]:
    types = [t for _, t in columns]
    if any(len(row) != len(types) for row in rows):
        raise ProtocolError("rows have no metadata or a different width")
    return [tuple(None if cell is None else t.deserialize(cell) for t, cell in zip(types, row, strict=True))
            for row in rows]


def quote(name: str) -> str:
    """NAME as a quoted CQL identifier (case and reserved words kept as they are)."""
    return '"' + name.replace('"', '""') + '"'
