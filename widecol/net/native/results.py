"""The data-bearing responses of the CQL native protocol: ERROR, RESULT (every kind) and EVENT, both directions.

How this works: like messages.py, each class encodes itself for a version and decodes from a Reader. ERROR is
built from a widecol.errors exception (`ErrorResponse.from_exception`) using the exception's `code` and fields,
and turns back into one (`to_exception`), so the server needs no table of its own. Rows metadata writes the
global-tables-spec flag whenever every column shares one keyspace and table, as Cassandra does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from widecol import errors
from widecol.errors import ProtocolError
from widecol.net.native import codec
from widecol.net.native.codec import Reader
from widecol.net.native.messages import (
    AuthChallenge,
    Authenticate,
    AuthSuccess,
    Ready,
    Supported,
    decode_request,
    decode_with,
)

# ---------------------------------------------------------------------------------------------------------------
# ERROR


@dataclass
class ErrorResponse:
    """ERROR: `code`, `message` and the code's extra fields by their spec names."""

    OPCODE = 0x00
    code: int
    message: str
    details: dict = field(default_factory=dict)

    @classmethod
    def from_exception(cls, exc: Exception) -> ErrorResponse:
        """The ERROR for any exception: widecol errors keep their code and fields, others become Server_error."""
        if not isinstance(exc, errors.WidecolError):
            return cls(errors.ServerError.code, f"{type(exc).__name__}: {exc}")
        d: dict = {}
        if isinstance(exc, errors.Unavailable):
            d = {"consistency": exc.consistency, "required": exc.required, "alive": exc.alive}
        elif isinstance(exc, errors.WriteTimeout):
            d = {
                "consistency": exc.consistency,
                "received": exc.received,
                "blockfor": exc.required,
                "write_type": exc.write_type,
            }
        elif isinstance(exc, errors.WriteFailure):
            d = {"consistency": exc.consistency, "received": exc.received, "blockfor": exc.required,
                 "numfailures": exc.failures, "write_type": exc.write_type}
        elif isinstance(exc, errors.ReadFailure):
            d = {"consistency": exc.consistency, "received": exc.received, "blockfor": exc.required,
                 "numfailures": exc.failures, "data_present": exc.data_present}
        elif isinstance(exc, errors.ReadTimeout):
            d = {
                "consistency": exc.consistency,
                "received": exc.received,
                "blockfor": exc.required,
                "data_present": exc.data_present,
            }
        elif isinstance(exc, errors.AlreadyExists):
            d = {"keyspace": exc.keyspace, "table": exc.table}
        elif isinstance(exc, errors.Unprepared):
            d = {"id": exc.statement_id}
        return cls(exc.code, exc.message, d)

    def to_exception(self) -> errors.WidecolError:
        """The widecol.errors exception this ERROR stands for (WidecolError with the code when none fits)."""
        d = self.details
        if self.code == errors.Unavailable.code:
            return errors.Unavailable(d["consistency"], d["required"], d["alive"])
        if self.code == errors.WriteTimeout.code:
            return errors.WriteTimeout(d["consistency"], d["received"], d["blockfor"], d["write_type"])
        if self.code == errors.ReadTimeout.code:
            return errors.ReadTimeout(d["consistency"], d["received"], d["blockfor"], d["data_present"])
        if self.code == errors.WriteFailure.code:
            return errors.WriteFailure(d["consistency"], d["received"], d["blockfor"], d["numfailures"],
                                       d["write_type"])
        if self.code == errors.ReadFailure.code:
            return errors.ReadFailure(d["consistency"], d["received"], d["blockfor"], d["numfailures"],
                                      d["data_present"])
        if self.code == errors.AlreadyExists.code:
            return errors.AlreadyExists(d["keyspace"], d["table"])
        if self.code == errors.Unprepared.code:
            return errors.Unprepared(d["id"])
        for cls in _SIMPLE_ERRORS:
            if cls.code == self.code:
                return cls(self.message)
        exc = errors.WidecolError(self.message)
        exc.code = self.code
        return exc

    def encode(self, version: int) -> bytes:
        d = self.details
        out = [codec.write_int(self.code), codec.write_string(self.message)]
        if self.code == 0x1000:
            out += [
                codec.write_consistency(d["consistency"]),
                codec.write_int(d["required"]),
                codec.write_int(d["alive"]),
            ]
        elif self.code in (0x1100, 0x1200, 0x1300, 0x1500):
            out += [
                codec.write_consistency(d["consistency"]),
                codec.write_int(d["received"]),
                codec.write_int(d["blockfor"]),
            ]
            if self.code in (0x1300, 0x1500):
                out.append(codec.write_int(d.get("numfailures", 0)))
            if self.code in (0x1100, 0x1500):
                out.append(codec.write_string(d["write_type"]))
            else:
                out.append(codec.write_byte(1 if d["data_present"] else 0))
        elif self.code == 0x1400:
            out += [
                codec.write_string(d["keyspace"]),
                codec.write_string(d["function"]),
                codec.write_string_list(d["arg_types"]),
            ]
        elif self.code == 0x2400:
            out += [codec.write_string(d["keyspace"]), codec.write_string(d["table"])]
        elif self.code == 0x2500:
            out.append(codec.write_short_bytes(d["id"]))
        return b"".join(out)

    @classmethod
    def decode(cls, r: Reader, version: int) -> ErrorResponse:
        code, message = r.int(), r.string()
        d: dict = {}
        if code == 0x1000:
            d = {"consistency": r.consistency(), "required": r.int(), "alive": r.int()}
        elif code in (0x1100, 0x1200, 0x1300, 0x1500):
            d = {"consistency": r.consistency(), "received": r.int(), "blockfor": r.int()}
            if code in (0x1300, 0x1500):
                d["numfailures"] = r.int()
            if code in (0x1100, 0x1500):
                d["write_type"] = r.string()
            else:
                d["data_present"] = r.byte() != 0
        elif code == 0x1400:
            d = {"keyspace": r.string(), "function": r.string(), "arg_types": r.string_list()}
        elif code == 0x2400:
            d = {"keyspace": r.string(), "table": r.string()}
        elif code == 0x2500:
            d = {"id": r.short_bytes()}
        return cls(code, message, d)


_SIMPLE_ERRORS = (
    errors.ProtocolError,
    errors.ServerError,
    errors.Overloaded,
    errors.IsBootstrapping,
    errors.TruncateError,
    errors.SyntaxException,
    errors.Unauthorized,
    errors.InvalidRequest,
    errors.ConfigurationException,
)

# ---------------------------------------------------------------------------------------------------------------
# RESULT

KIND_VOID, KIND_ROWS, KIND_SET_KEYSPACE, KIND_PREPARED, KIND_SCHEMA_CHANGE = 1, 2, 3, 4, 5
_MAX_EMPTY_ROWS = 65536
M_GLOBAL_TABLES_SPEC, M_HAS_MORE_PAGES, M_NO_METADATA, M_METADATA_CHANGED = 0x01, 0x02, 0x04, 0x08


@dataclass
class ColumnSpec:
    keyspace: str
    table: str
    name: str
    type: tuple


@dataclass
class RowsMetadata:
    """Rows metadata. With `no_metadata`, `columns` is empty and `column_count` alone is sent."""

    columns: list[ColumnSpec] = field(default_factory=list)
    paging_state: bytes | None = None
    no_metadata: bool = False
    column_count: int | None = None
    new_metadata_id: bytes | None = None  # v5

    def count(self) -> int:
        return len(self.columns) if self.column_count is None else self.column_count

    def encode(self, version: int) -> bytes:
        flags = 0
        tail: list[bytes] = []
        if self.paging_state is not None:
            flags |= M_HAS_MORE_PAGES
            tail.append(codec.write_bytes(self.paging_state))
        if version >= 5 and self.new_metadata_id is not None:
            flags |= M_METADATA_CHANGED
            tail.append(codec.write_short_bytes(self.new_metadata_id))
        if self.no_metadata:
            flags |= M_NO_METADATA
        else:
            tail += _encode_specs(self.columns)
            if len({(c.keyspace, c.table) for c in self.columns}) == 1:
                flags |= M_GLOBAL_TABLES_SPEC
        return codec.write_int(flags) + codec.write_int(self.count()) + b"".join(tail)

    @classmethod
    def decode(cls, r: Reader, version: int) -> RowsMetadata:
        flags, count = r.int(), r.int()
        if count < 0:
            raise ProtocolError(f"negative column count {count}")
        m = cls()
        if flags & M_HAS_MORE_PAGES:
            m.paging_state = r.bytes()
        if version >= 5 and flags & M_METADATA_CHANGED:
            m.new_metadata_id = r.short_bytes()
        if flags & M_NO_METADATA:
            m.no_metadata, m.column_count = True, count
        else:
            m.columns = _decode_specs(r, count, bool(flags & M_GLOBAL_TABLES_SPEC))
        return m


def _encode_specs(columns: list[ColumnSpec]) -> list[bytes]:
    out: list[bytes] = []
    shared = len({(c.keyspace, c.table) for c in columns}) == 1
    if shared:
        out += [codec.write_string(columns[0].keyspace), codec.write_string(columns[0].table)]
    for c in columns:
        if not shared:
            out += [codec.write_string(c.keyspace), codec.write_string(c.table)]
        out += [codec.write_string(c.name), codec.write_option(c.type)]
    return out


def _decode_specs(r: Reader, count: int, shared: bool) -> list[ColumnSpec]:
    keyspace = table = ""
    if shared and count:
        keyspace, table = r.string(), r.string()
    columns = []
    for _ in range(count):
        if not shared:
            keyspace, table = r.string(), r.string()
        columns.append(ColumnSpec(keyspace, table, r.string(), r.option()))
    return columns


@dataclass
class VoidResult:
    KIND = KIND_VOID


@dataclass
class RowsResult:
    KIND = KIND_ROWS
    metadata: RowsMetadata
    rows: list[list[bytes | None]] = field(default_factory=list)


@dataclass
class SetKeyspaceResult:
    KIND = KIND_SET_KEYSPACE
    keyspace: str


@dataclass
class PreparedResult:
    """PREPARED: bind markers as `bind_columns` with `pk_indexes` (v4+), and the rows' metadata."""

    KIND = KIND_PREPARED
    statement_id: bytes
    bind_columns: list[ColumnSpec] = field(default_factory=list)
    pk_indexes: list[int] = field(default_factory=list)
    result_metadata: RowsMetadata = field(default_factory=RowsMetadata)
    result_metadata_id: bytes | None = None  # v5


@dataclass
class SchemaChange:
    """SCHEMA_CHANGE body: change CREATED|UPDATED|DROPPED, target KEYSPACE|TABLE|TYPE|FUNCTION|AGGREGATE."""

    change: str
    target: str
    keyspace: str
    name: str = ""
    arg_types: list[str] = field(default_factory=list)

    def encode(self, version: int) -> bytes:
        out = [
            codec.write_string(self.change),
            codec.write_string(self.target),
            codec.write_string(self.keyspace),
        ]
        if self.target != "KEYSPACE":
            out.append(codec.write_string(self.name))
        if self.target in ("FUNCTION", "AGGREGATE"):
            out.append(codec.write_string_list(self.arg_types))
        return b"".join(out)

    @classmethod
    def decode(cls, r: Reader, version: int) -> SchemaChange:
        s = cls(r.string(), r.string(), r.string())
        if s.target != "KEYSPACE":
            s.name = r.string()
        if s.target in ("FUNCTION", "AGGREGATE"):
            s.arg_types = r.string_list()
        return s


@dataclass
class SchemaChangeResult:
    KIND = KIND_SCHEMA_CHANGE
    change: SchemaChange


Result = VoidResult | RowsResult | SetKeyspaceResult | PreparedResult | SchemaChangeResult


@dataclass
class ResultResponse:
    OPCODE = 0x08
    result: Result

    def encode(self, version: int) -> bytes:
        res = self.result
        out = [codec.write_int(res.KIND)]
        if isinstance(res, RowsResult):
            out.append(res.metadata.encode(version))
            out.append(codec.write_int(len(res.rows)))
            width = res.metadata.count()
            for row in res.rows:
                if len(row) != width:
                    raise ProtocolError(f"row has {len(row)} cells, metadata says {width}")
                out += [codec.write_bytes(cell) for cell in row]
        elif isinstance(res, SetKeyspaceResult):
            out.append(codec.write_string(res.keyspace))
        elif isinstance(res, PreparedResult):
            out.append(codec.write_short_bytes(res.statement_id))
            if version >= 5:
                out.append(codec.write_short_bytes(res.result_metadata_id or b""))
            cols = res.bind_columns
            shared = len({(c.keyspace, c.table) for c in cols}) == 1
            out += [codec.write_int(M_GLOBAL_TABLES_SPEC if shared else 0), codec.write_int(len(cols))]
            if version >= 4:
                out.append(codec.write_int(len(res.pk_indexes)))
                out += [codec.write_short(i) for i in res.pk_indexes]
            out += _encode_specs(cols)
            out.append(res.result_metadata.encode(version))
        elif isinstance(res, SchemaChangeResult):
            out.append(res.change.encode(version))
        return b"".join(out)

    @classmethod
    def decode(cls, r: Reader, version: int) -> ResultResponse:
        kind = r.int()
        if kind == KIND_VOID:
            return cls(VoidResult())
        if kind == KIND_ROWS:
            metadata = RowsMetadata.decode(r, version)
            width, count = metadata.count(), r.int()
            # each cell costs at least 4 bytes; rows without columns are capped so a lying count stays cheap
            if count < 0 or count * width * 4 > r.remaining() or (width == 0 and count > _MAX_EMPTY_ROWS):
                raise ProtocolError(f"row count {count} does not fit the body")
            rows = [[r.bytes() for _ in range(width)] for _ in range(count)]
            return cls(RowsResult(metadata, rows))
        if kind == KIND_SET_KEYSPACE:
            return cls(SetKeyspaceResult(r.string()))
        if kind == KIND_PREPARED:
            res = PreparedResult(r.short_bytes())
            if version >= 5:
                res.result_metadata_id = r.short_bytes() or None
            flags, count = r.int(), r.int()
            if count < 0:
                raise ProtocolError(f"negative bind column count {count}")
            if version >= 4:
                res.pk_indexes = [r.short() for _ in range(r.int())]
            res.bind_columns = _decode_specs(r, count, bool(flags & M_GLOBAL_TABLES_SPEC))
            res.result_metadata = RowsMetadata.decode(r, version)
            return cls(res)
        if kind == KIND_SCHEMA_CHANGE:
            return cls(SchemaChangeResult(SchemaChange.decode(r, version)))
        raise ProtocolError(f"unknown RESULT kind {kind}")


# ---------------------------------------------------------------------------------------------------------------
# EVENT


@dataclass
class Event:
    """EVENT: TOPOLOGY_CHANGE / STATUS_CHANGE carry `change` and `address` (ip, port); SCHEMA_CHANGE `schema`."""

    OPCODE = 0x0C
    event_type: str
    change: str = ""
    address: tuple[str, int] | None = None
    schema: SchemaChange | None = None

    def encode(self, version: int) -> bytes:
        out = codec.write_string(self.event_type)
        if self.event_type == "SCHEMA_CHANGE":
            assert self.schema is not None
            return out + self.schema.encode(version)
        assert self.address is not None
        return out + codec.write_string(self.change) + codec.write_inet(self.address)

    @classmethod
    def decode(cls, r: Reader, version: int) -> Event:
        event_type = r.string()
        if event_type == "SCHEMA_CHANGE":
            return cls(event_type, schema=SchemaChange.decode(r, version))
        if event_type in ("TOPOLOGY_CHANGE", "STATUS_CHANGE"):
            return cls(event_type, change=r.string(), address=r.inet())
        raise ProtocolError(f"unknown event type {event_type!r}")


RESPONSES: dict[int, type] = {
    cls.OPCODE: cls
    for cls in (
        ErrorResponse,
        Ready,
        Authenticate,
        Supported,
        ResultResponse,
        Event,
        AuthChallenge,
        AuthSuccess,
    )
}


def decode_response(opcode: int, body: bytes, version: int):  # noqa: ANN201 - one of the response classes
    """The response for this opcode and body. ProtocolError for an unknown (or request) opcode or bad body."""
    cls = RESPONSES.get(opcode)
    if cls is None:
        raise ProtocolError(f"unknown or unexpected response opcode 0x{opcode:02x}")
    return decode_with(cls, body, version)


def decode_message(opcode: int, body: bytes, version: int, is_response: bool):  # noqa: ANN201
    """Either direction: the request or response this opcode and body stand for."""
    if is_response:
        return decode_response(opcode, body, version)
    return decode_request(opcode, body, version)
