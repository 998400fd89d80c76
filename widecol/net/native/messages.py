"""Every message of the CQL native protocol (spec section 4), encode and decode, v3 to v5 bodies.

How this works: each message is a dataclass with an OPCODE, `encode(version) -> bytes` and a classmethod
`decode(reader, version)`. `decode_message(opcode, body, version)` picks the class and insists the body is used
up exactly. Results and errors have their own module (results.py) to keep modules small; both are reachable
through `decode_message`. Values stay bytes; column types are option tuples (see codec.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from widecol.errors import ProtocolError
from widecol.net.native import codec
from widecol.net.native.codec import Reader, Value

# QUERY / EXECUTE parameter flags (spec 4.1.4); v5 widens them to an [int].
Q_VALUES = 0x01
Q_SKIP_METADATA = 0x02
Q_PAGE_SIZE = 0x04
Q_PAGING_STATE = 0x08
Q_SERIAL_CONSISTENCY = 0x10
Q_DEFAULT_TIMESTAMP = 0x20
Q_NAMES_FOR_VALUES = 0x40
Q_KEYSPACE = 0x80
Q_NOW_IN_SECONDS = 0x100

BATCH_LOGGED, BATCH_UNLOGGED, BATCH_COUNTER = 0, 1, 2


@dataclass
class QueryParameters:
    """The shared tail of QUERY and EXECUTE. `names` set means values are named (same length as values)."""

    consistency: str = "ONE"
    values: list[Value] | None = None
    names: list[str] | None = None
    skip_metadata: bool = False
    page_size: int | None = None
    paging_state: bytes | None = None
    serial_consistency: str | None = None
    timestamp: int | None = None
    keyspace: str | None = None
    now_in_seconds: int | None = None

    def encode(self, version: int) -> bytes:
        flags = 0
        tail: list[bytes] = []
        if self.values is not None:
            flags |= Q_VALUES
            tail.append(codec.write_short(len(self.values)))
            if self.names is not None:
                flags |= Q_NAMES_FOR_VALUES
                if len(self.names) != len(self.values):
                    raise ProtocolError("named values: names and values differ in length")
                for name, value in zip(self.names, self.values, strict=True):
                    tail += [codec.write_string(name), codec.write_value(value)]
            else:
                tail += [codec.write_value(v) for v in self.values]
        if self.skip_metadata:
            flags |= Q_SKIP_METADATA
        if self.page_size is not None:
            flags |= Q_PAGE_SIZE
            tail.append(codec.write_int(self.page_size))
        if self.paging_state is not None:
            flags |= Q_PAGING_STATE
            tail.append(codec.write_bytes(self.paging_state))
        if self.serial_consistency is not None:
            flags |= Q_SERIAL_CONSISTENCY
            tail.append(codec.write_consistency(self.serial_consistency))
        if self.timestamp is not None:
            flags |= Q_DEFAULT_TIMESTAMP
            tail.append(codec.write_long(self.timestamp))
        if version >= 5 and self.keyspace is not None:
            flags |= Q_KEYSPACE
            tail.append(codec.write_string(self.keyspace))
        if version >= 5 and self.now_in_seconds is not None:
            flags |= Q_NOW_IN_SECONDS
            tail.append(codec.write_int(self.now_in_seconds))
        head = codec.write_consistency(self.consistency)
        head += codec.write_int(flags) if version >= 5 else codec.write_byte(flags)
        return head + b"".join(tail)

    @classmethod
    def decode(cls, r: Reader, version: int) -> QueryParameters:
        p = cls(consistency=r.consistency())
        flags = r.int() if version >= 5 else r.byte()
        if flags & Q_VALUES:
            count = r.short()
            if flags & Q_NAMES_FOR_VALUES:
                p.names, p.values = [], []
                for _ in range(count):
                    p.names.append(r.string())
                    p.values.append(r.value())
            else:
                p.values = [r.value() for _ in range(count)]
        p.skip_metadata = bool(flags & Q_SKIP_METADATA)
        if flags & Q_PAGE_SIZE:
            p.page_size = r.int()
        if flags & Q_PAGING_STATE:
            p.paging_state = r.bytes()
        if flags & Q_SERIAL_CONSISTENCY:
            p.serial_consistency = r.consistency()
        if flags & Q_DEFAULT_TIMESTAMP:
            p.timestamp = r.long()
        if version >= 5 and flags & Q_KEYSPACE:
            p.keyspace = r.string()
        if version >= 5 and flags & Q_NOW_IN_SECONDS:
            p.now_in_seconds = r.int()
        return p


# ---------------------------------------------------------------------------------------------------------------
# Requests


@dataclass
class Startup:
    OPCODE = 0x01
    options: dict[str, str] = field(default_factory=lambda: {"CQL_VERSION": "3.0.0"})

    def encode(self, version: int) -> bytes:
        return codec.write_string_map(self.options)

    @classmethod
    def decode(cls, r: Reader, version: int) -> Startup:
        return cls(r.string_map())


@dataclass
class AuthResponse:
    OPCODE = 0x0F
    token: bytes | None = None

    def encode(self, version: int) -> bytes:
        return codec.write_bytes(self.token)

    @classmethod
    def decode(cls, r: Reader, version: int) -> AuthResponse:
        return cls(r.bytes())


@dataclass
class Options:
    OPCODE = 0x05

    def encode(self, version: int) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader, version: int) -> Options:
        return cls()


@dataclass
class Query:
    OPCODE = 0x07
    query: str
    params: QueryParameters = field(default_factory=QueryParameters)

    def encode(self, version: int) -> bytes:
        return codec.write_long_string(self.query) + self.params.encode(version)

    @classmethod
    def decode(cls, r: Reader, version: int) -> Query:
        return cls(r.long_string(), QueryParameters.decode(r, version))


@dataclass
class Prepare:
    OPCODE = 0x09
    query: str
    keyspace: str | None = None  # v5 only

    def encode(self, version: int) -> bytes:
        out = codec.write_long_string(self.query)
        if version >= 5:
            if self.keyspace is None:
                out += codec.write_int(0)
            else:
                out += codec.write_int(0x01) + codec.write_string(self.keyspace)
        return out

    @classmethod
    def decode(cls, r: Reader, version: int) -> Prepare:
        query = r.long_string()
        keyspace = None
        if version >= 5 and r.int() & 0x01:
            keyspace = r.string()
        return cls(query, keyspace)


@dataclass
class Execute:
    OPCODE = 0x0A
    statement_id: bytes
    params: QueryParameters = field(default_factory=QueryParameters)
    result_metadata_id: bytes | None = None  # v5 only

    def encode(self, version: int) -> bytes:
        out = codec.write_short_bytes(self.statement_id)
        if version >= 5:
            out += codec.write_short_bytes(self.result_metadata_id or b"")
        return out + self.params.encode(version)

    @classmethod
    def decode(cls, r: Reader, version: int) -> Execute:
        statement_id = r.short_bytes()
        metadata_id = (r.short_bytes() or None) if version >= 5 else None
        return cls(statement_id, QueryParameters.decode(r, version), metadata_id)


@dataclass
class BatchStatement:
    """One statement of a BATCH: `query` (a string) or `statement_id` (prepared), with positional values."""

    query: str | None = None
    statement_id: bytes | None = None
    values: list[Value] = field(default_factory=list)


@dataclass
class Batch:
    OPCODE = 0x0D
    batch_type: int = BATCH_LOGGED
    statements: list[BatchStatement] = field(default_factory=list)
    consistency: str = "ONE"
    serial_consistency: str | None = None
    timestamp: int | None = None
    keyspace: str | None = None  # v5 only

    def encode(self, version: int) -> bytes:
        out = [codec.write_byte(self.batch_type), codec.write_short(len(self.statements))]
        for s in self.statements:
            if s.statement_id is not None:
                out += [codec.write_byte(1), codec.write_short_bytes(s.statement_id)]
            else:
                out += [codec.write_byte(0), codec.write_long_string(s.query or "")]
            out.append(codec.write_short(len(s.values)))
            out += [codec.write_value(v) for v in s.values]
        out.append(codec.write_consistency(self.consistency))
        flags, tail = 0, []
        if self.serial_consistency is not None:
            flags |= Q_SERIAL_CONSISTENCY
            tail.append(codec.write_consistency(self.serial_consistency))
        if self.timestamp is not None:
            flags |= Q_DEFAULT_TIMESTAMP
            tail.append(codec.write_long(self.timestamp))
        if version >= 5 and self.keyspace is not None:
            flags |= Q_KEYSPACE
            tail.append(codec.write_string(self.keyspace))
        out.append(codec.write_int(flags) if version >= 5 else codec.write_byte(flags))
        return b"".join(out + tail)

    @classmethod
    def decode(cls, r: Reader, version: int) -> Batch:
        batch = cls(batch_type=r.byte())
        if batch.batch_type not in (BATCH_LOGGED, BATCH_UNLOGGED, BATCH_COUNTER):
            raise ProtocolError(f"unknown batch type {batch.batch_type}")
        for _ in range(r.short()):
            kind = r.byte()
            if kind == 0:
                s = BatchStatement(query=r.long_string())
            elif kind == 1:
                s = BatchStatement(statement_id=r.short_bytes())
            else:
                raise ProtocolError(f"unknown batch statement kind {kind}")
            s.values = [r.value() for _ in range(r.short())]
            batch.statements.append(s)
        batch.consistency = r.consistency()
        flags = r.int() if version >= 5 else r.byte()
        if flags & Q_NAMES_FOR_VALUES:
            raise ProtocolError("named values are not supported in BATCH")
        if flags & Q_SERIAL_CONSISTENCY:
            batch.serial_consistency = r.consistency()
        if flags & Q_DEFAULT_TIMESTAMP:
            batch.timestamp = r.long()
        if version >= 5 and flags & Q_KEYSPACE:
            batch.keyspace = r.string()
        if version >= 5 and flags & Q_NOW_IN_SECONDS:
            r.int()
        return batch


@dataclass
class Register:
    OPCODE = 0x0B
    event_types: list[str] = field(default_factory=list)

    def encode(self, version: int) -> bytes:
        return codec.write_string_list(self.event_types)

    @classmethod
    def decode(cls, r: Reader, version: int) -> Register:
        return cls(r.string_list())


# ---------------------------------------------------------------------------------------------------------------
# Simple responses (RESULT, ERROR and EVENT live in results.py)


@dataclass
class Ready:
    OPCODE = 0x02

    def encode(self, version: int) -> bytes:
        return b""

    @classmethod
    def decode(cls, r: Reader, version: int) -> Ready:
        return cls()


@dataclass
class Authenticate:
    OPCODE = 0x03
    authenticator: str

    def encode(self, version: int) -> bytes:
        return codec.write_string(self.authenticator)

    @classmethod
    def decode(cls, r: Reader, version: int) -> Authenticate:
        return cls(r.string())


@dataclass
class Supported:
    OPCODE = 0x06
    options: dict[str, list[str]] = field(default_factory=dict)

    def encode(self, version: int) -> bytes:
        return codec.write_string_multimap(self.options)

    @classmethod
    def decode(cls, r: Reader, version: int) -> Supported:
        return cls(r.string_multimap())


@dataclass
class AuthChallenge:
    OPCODE = 0x0E
    token: bytes | None = None

    def encode(self, version: int) -> bytes:
        return codec.write_bytes(self.token)

    @classmethod
    def decode(cls, r: Reader, version: int) -> AuthChallenge:
        return cls(r.bytes())


@dataclass
class AuthSuccess:
    OPCODE = 0x10
    token: bytes | None = None

    def encode(self, version: int) -> bytes:
        return codec.write_bytes(self.token)

    @classmethod
    def decode(cls, r: Reader, version: int) -> AuthSuccess:
        return cls(r.bytes())


REQUESTS: dict[int, type] = {
    cls.OPCODE: cls for cls in (Startup, AuthResponse, Options, Query, Prepare, Execute, Batch, Register)
}


def decode_with(cls: Any, body: bytes, version: int):  # noqa: ANN201 - returns an instance of cls
    """Decode `body` as `cls`; raises ProtocolError if it is malformed or has bytes left over."""
    r = Reader(body)
    message = cls.decode(r, version)
    if r.remaining():
        raise ProtocolError(f"{r.remaining()} unexpected trailing bytes in {cls.__name__} body")
    return message


def decode_request(opcode: int, body: bytes, version: int):  # noqa: ANN201 - one of the request classes
    """The request for this opcode and body. ProtocolError for an unknown (or response) opcode."""
    cls = REQUESTS.get(opcode)
    if cls is None:
        raise ProtocolError(f"unknown or unexpected request opcode 0x{opcode:02x}")
    return decode_with(cls, body, version)
