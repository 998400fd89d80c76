"""Body primitives of the CQL native protocol (spec section 3), both directions.

How this works: writers are small functions returning bytes, joined by the message encoders. Reading goes
through `Reader`, a cursor over one frame body; every read checks the remaining length first, so a truncated
or lying body raises `widecol.errors.ProtocolError` and never IndexError, struct.error or UnicodeDecodeError.
Values stay bytes: this layer knows CQL types only as option ids, e.g. (0x0009,) or (0x0020, (0x000D,)).
"""

from __future__ import annotations

import builtins
import ipaddress
import struct
import uuid

from widecol.errors import ProtocolError

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_SHORT = struct.Struct(">H")


class _NotSet:
    """The [value] of length -2: the bound variable is not set (v4+), so the column is left untouched."""

    _instance: _NotSet | None = None

    def __new__(cls) -> _NotSet:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NOT_SET"


NOT_SET = _NotSet()
Value = bytes | None | _NotSet

CONSISTENCY_CODES = {
    "ANY": 0x0000,
    "ONE": 0x0001,
    "TWO": 0x0002,
    "THREE": 0x0003,
    "QUORUM": 0x0004,
    "ALL": 0x0005,
    "LOCAL_QUORUM": 0x0006,
    "EACH_QUORUM": 0x0007,
    "SERIAL": 0x0008,
    "LOCAL_SERIAL": 0x0009,
    "LOCAL_ONE": 0x000A,
}
CONSISTENCY_NAMES = {code: name for name, code in CONSISTENCY_CODES.items()}

# Option ids whose sub-options follow them on the wire (spec 4.2.5.2).
TYPE_CUSTOM, TYPE_LIST, TYPE_MAP, TYPE_SET, TYPE_UDT, TYPE_TUPLE = (
    0x0000,
    0x0020,
    0x0021,
    0x0022,
    0x0030,
    0x0031,
)
_MAX_TYPE_DEPTH = 64


# ---------------------------------------------------------------------------------------------------------------
# Writers


def write_byte(n: int) -> bytes:
    return bytes((n & 0xFF,))


def write_short(n: int) -> bytes:
    if not 0 <= n <= 0xFFFF:
        raise ProtocolError(f"[short] out of range: {n}")
    return _SHORT.pack(n)


def write_int(n: int) -> bytes:
    return _INT.pack(n)


def write_long(n: int) -> bytes:
    return _LONG.pack(n)


def write_string(s: str) -> bytes:
    data = s.encode("utf-8")
    return write_short(len(data)) + data


def write_long_string(s: str) -> bytes:
    data = s.encode("utf-8")
    return _INT.pack(len(data)) + data


def write_uuid(u: uuid.UUID) -> bytes:
    return u.bytes


def write_string_list(items: list[str]) -> bytes:
    return write_short(len(items)) + b"".join(write_string(s) for s in items)


def write_bytes(b: bytes | None) -> bytes:
    """[bytes]: int length then bytes; None is length -1."""
    if b is None:
        return _INT.pack(-1)
    return _INT.pack(len(b)) + b


def write_value(v: Value) -> bytes:
    """[value]: like [bytes], plus NOT_SET as length -2."""
    if v is NOT_SET:
        return _INT.pack(-2)
    return write_bytes(v)  # type: ignore[arg-type]


def write_short_bytes(b: bytes) -> bytes:
    return write_short(len(b)) + b


def write_option(option: tuple) -> bytes:
    """[option] for a column type: (id,) or (id, sub-options...) as described at the top of the module."""
    kind = option[0]
    out = [write_short(kind)]
    if kind == TYPE_CUSTOM:
        out.append(write_string(option[1]))
    elif kind in (TYPE_LIST, TYPE_SET):
        out.append(write_option(option[1]))
    elif kind == TYPE_MAP:
        out += [write_option(option[1]), write_option(option[2])]
    elif kind == TYPE_UDT:
        fields = option[3]
        out += [write_string(option[1]), write_string(option[2]), write_short(len(fields))]
        for name, sub in fields:
            out += [write_string(name), write_option(sub)]
    elif kind == TYPE_TUPLE:
        subs = option[1:]
        out.append(write_short(len(subs)))
        out += [write_option(sub) for sub in subs]
    return b"".join(out)


def write_inetaddr(address: str) -> bytes:
    packed = ipaddress.ip_address(address).packed
    return write_byte(len(packed)) + packed


def write_inet(inet: tuple[str, int]) -> bytes:
    return write_inetaddr(inet[0]) + _INT.pack(inet[1])


def write_consistency(name: str) -> bytes:
    try:
        return write_short(CONSISTENCY_CODES[name])
    except KeyError:
        raise ProtocolError(f"unknown consistency level {name!r}") from None


def write_string_map(m: dict[str, str]) -> bytes:
    return write_short(len(m)) + b"".join(write_string(k) + write_string(v) for k, v in m.items())


def write_string_multimap(m: dict[str, list[str]]) -> bytes:
    return write_short(len(m)) + b"".join(write_string(k) + write_string_list(v) for k, v in m.items())


def write_bytes_map(m: dict[str, bytes | None]) -> bytes:
    return write_short(len(m)) + b"".join(write_string(k) + write_bytes(v) for k, v in m.items())


# ---------------------------------------------------------------------------------------------------------------
# Reader


class Reader:
    """A cursor over one body. Every method raises ProtocolError (never anything else) on malformed input."""

    __slots__ = ("data", "pos")

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def remaining(self) -> builtins.int:
        return len(self.data) - self.pos

    def take(self, n: builtins.int) -> builtins.bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ProtocolError(
                f"truncated body: need {n} bytes at offset {self.pos}, have {self.remaining()}"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return bytes(chunk)

    def byte(self) -> builtins.int:
        return self.take(1)[0]

    def short(self) -> builtins.int:
        return _SHORT.unpack(self.take(2))[0]

    def int(self) -> builtins.int:
        return _INT.unpack(self.take(4))[0]

    def long(self) -> builtins.int:
        return _LONG.unpack(self.take(8))[0]

    def _text(self, n: builtins.int) -> str:
        raw = self.take(n)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError("string is not valid UTF-8") from None

    def string(self) -> str:
        return self._text(self.short())

    def long_string(self) -> str:
        n = self.int()
        if n < 0:
            raise ProtocolError(f"negative [long string] length {n}")
        return self._text(n)

    def uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=self.take(16))

    def string_list(self) -> list[str]:
        return [self.string() for _ in range(self.short())]

    def bytes(self) -> builtins.bytes | None:
        n = self.int()
        if n < 0:
            return None
        return self.take(n)

    def value(self) -> Value:
        n = self.int()
        if n == -1:
            return None
        if n == -2:
            return NOT_SET
        if n < 0:
            raise ProtocolError(f"invalid [value] length {n}")
        return self.take(n)

    def short_bytes(self) -> builtins.bytes:
        return self.take(self.short())

    def option(self, depth: builtins.int = 0) -> tuple:
        if depth > _MAX_TYPE_DEPTH:
            raise ProtocolError("type options nested too deeply")
        kind = self.short()
        if kind == TYPE_CUSTOM:
            return (kind, self.string())
        if kind in (TYPE_LIST, TYPE_SET):
            return (kind, self.option(depth + 1))
        if kind == TYPE_MAP:
            return (kind, self.option(depth + 1), self.option(depth + 1))
        if kind == TYPE_UDT:
            keyspace, name = self.string(), self.string()
            fields = tuple((self.string(), self.option(depth + 1)) for _ in range(self.short()))
            return (kind, keyspace, name, fields)
        if kind == TYPE_TUPLE:
            return (kind, *(self.option(depth + 1) for _ in range(self.short())))
        return (kind,)

    def inetaddr(self) -> str:
        n = self.byte()
        if n not in (4, 16):
            raise ProtocolError(f"invalid [inetaddr] length {n}")
        return str(ipaddress.ip_address(self.take(n)))

    def inet(self) -> tuple[str, builtins.int]:
        return (self.inetaddr(), self.int())

    def consistency(self) -> str:
        code = self.short()
        try:
            return CONSISTENCY_NAMES[code]
        except KeyError:
            raise ProtocolError(f"unknown consistency level code 0x{code:04x}") from None

    def string_map(self) -> dict[str, str]:
        return {self.string(): self.string() for _ in range(self.short())}

    def string_multimap(self) -> dict[str, list[str]]:
        return {self.string(): self.string_list() for _ in range(self.short())}

    def bytes_map(self) -> dict[str, builtins.bytes | None]:
        return {self.string(): self.bytes() for _ in range(self.short())}
