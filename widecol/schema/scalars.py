"""CQL scalar types (the base class and the non-temporal scalars): Cassandra's byte forms, Python values, literal conversion and order-preserving keys.

How this works: each CQL type is a small object (`CqlType`) holding its CQL name, the Java marshal class the
drivers know, and its native protocol option id.  `serialize`/`deserialize` produce exactly the bytes the native
protocol carries (protocol spec v4, section 6).  `from_literal` turns a parser `Literal` into a validated Python
value, raising InvalidRequest with Cassandra's wording.  `sort_bytes`/`unsort_bytes` give a byte string whose
unsigned lexicographic order equals Cassandra's comparator order for the type; `widecol.schema.clustering` wraps
those with escaping, terminators and DESC inversion.  Time types live in
`widecol.schema.temporal`, collections and tuples (and `parse_type`) in `widecol.schema.collections`;
`widecol.schema.types` gathers them all.
"""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import math
import struct
import uuid
from typing import Any

from widecol.errors import InvalidRequest
from widecol.schema.literals import CollectionLiteral, Literal

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
EPOCH_DATE = datetime.date(1970, 1, 1)
DATE_CENTER = 1 << 31
NANOS_PER_DAY = 86_400 * 10**9
# 100-ns intervals between the UUID epoch (1582-10-15) and the Unix epoch.
UUID_EPOCH_OFFSET = 0x01B21DD213814000

_KIND_WORDS = {
    "string": "STRING", "integer": "INTEGER", "float": "FLOAT", "boolean": "BOOLEAN", "uuid": "UUID",
    "blob": "HEX", "duration": "DURATION", "nan": "FLOAT", "infinity": "FLOAT",
}


def literal_error(lit: Literal, column: str, t: CqlType) -> InvalidRequest:
    """The InvalidRequest Cassandra raises when a constant cannot be assigned to a column."""
    return InvalidRequest(f'Invalid {_KIND_WORDS.get(lit.kind, lit.kind.upper())} constant ({lit.text}) '
                          f'for "{column}" of type {t.cql_name}')


def check_scalar_literal(lit: Any, column: str, t: CqlType) -> Literal | None:
    """Reject collection literals for scalar types; return None for null, else the Literal."""
    if isinstance(lit, CollectionLiteral):
        raise InvalidRequest(f'Invalid {lit.kind} literal for "{column}" of type {t.cql_name}')
    if lit.kind == "null":
        return None
    return lit


class CqlType:
    """Base of every CQL type.  Subclasses define the byte form, literal kinds and ordering."""

    cql_name: str = ""
    java_class: str = ""
    option_id: int = 0
    literal_kinds: frozenset[str] = frozenset()
    is_collection = False
    frozen = True

    def __repr__(self) -> str:
        return f"<CqlType {self.cql_name}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CqlType) and other.cql_name == self.cql_name

    def __hash__(self) -> int:
        return hash(self.cql_name)

    def validate(self, value: Any) -> Any:
        """Return the canonical Python value or raise InvalidRequest."""
        return value

    def serialize(self, value: Any) -> bytes:
        """Cassandra's byte form of `value` (never None: nulls are a length of -1 in the enclosing frame)."""
        raise NotImplementedError

    def deserialize(self, data: bytes) -> Any:
        """Inverse of `serialize`; raises InvalidRequest on malformed bytes."""
        raise NotImplementedError

    def sort_bytes(self, value: Any) -> bytes:
        """Bytes whose unsigned order is Cassandra's order for this type (not yet escaped)."""
        raise NotImplementedError

    def unsort_bytes(self, data: bytes) -> Any:
        """Inverse of `sort_bytes`."""
        raise NotImplementedError

    def from_literal(self, lit: Any, column: str) -> Any:
        """The validated Python value of a parser literal, or InvalidRequest in Cassandra's words."""
        checked = check_scalar_literal(lit, column, self)
        if checked is None:
            return None
        if checked.kind not in self.literal_kinds:
            raise literal_error(checked, column, self)
        return self.convert_literal(checked, column)

    def convert_literal(self, lit: Literal, column: str) -> Any:
        raise NotImplementedError


def _bad(t: CqlType, value: Any) -> InvalidRequest:
    return InvalidRequest(f"Invalid value {value!r} for type {t.cql_name}")


# ---------------------------------------------------------------- text and bytes

class AsciiType(CqlType):
    cql_name = "ascii"
    java_class = "org.apache.cassandra.db.marshal.AsciiType"
    option_id = 0x0001
    literal_kinds = frozenset({"string"})

    def validate(self, value: Any) -> str:
        if not isinstance(value, str) or not value.isascii():
            raise _bad(self, value)
        return value

    def serialize(self, value: Any) -> bytes:
        return self.validate(value).encode("ascii")

    def deserialize(self, data: bytes) -> str:
        try:
            return bytes(data).decode("ascii")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("Invalid byte for ascii") from exc

    def sort_bytes(self, value: Any) -> bytes:
        return self.serialize(value)

    def unsort_bytes(self, data: bytes) -> str:
        return self.deserialize(data)

    def convert_literal(self, lit: Literal, column: str) -> str:
        if not lit.text.isascii():
            raise InvalidRequest(f"Invalid ASCII character in string literal {lit.text!r}")
        return lit.text


class TextType(AsciiType):
    cql_name = "text"
    java_class = "org.apache.cassandra.db.marshal.UTF8Type"
    option_id = 0x000D

    def validate(self, value: Any) -> str:
        if not isinstance(value, str):
            raise _bad(self, value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidRequest("String is not valid UTF-8") from exc
        return value

    def serialize(self, value: Any) -> bytes:
        return self.validate(value).encode("utf-8")

    def deserialize(self, data: bytes) -> str:
        try:
            return bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest("String didn't validate.") from exc

    def convert_literal(self, lit: Literal, column: str) -> str:
        return lit.text


class BlobType(CqlType):
    cql_name = "blob"
    java_class = "org.apache.cassandra.db.marshal.BytesType"
    option_id = 0x0003
    literal_kinds = frozenset({"blob"})

    def validate(self, value: Any) -> bytes:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise _bad(self, value)
        return bytes(value)

    def serialize(self, value: Any) -> bytes:
        return self.validate(value)

    def deserialize(self, data: bytes) -> bytes:
        return bytes(data)

    def sort_bytes(self, value: Any) -> bytes:
        return self.validate(value)

    def unsort_bytes(self, data: bytes) -> bytes:
        return bytes(data)

    def convert_literal(self, lit: Literal, column: str) -> bytes:
        text = lit.text[2:] if lit.text[:2].lower() == "0x" else lit.text
        try:
            return bytes.fromhex(text)
        except ValueError as exc:
            raise InvalidRequest(f"Invalid hex string for blob: {lit.text}") from exc


# ---------------------------------------------------------------- fixed-width integers

class _FixedInt(CqlType):
    bits = 32
    literal_kinds = frozenset({"integer"})

    def validate(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(self, value)
        lim = 1 << (self.bits - 1)
        if not -lim <= value < lim:
            raise InvalidRequest(f"Value {value} out of range for type {self.cql_name}")
        return value

    def serialize(self, value: Any) -> bytes:
        return self.validate(value).to_bytes(self.bits // 8, "big", signed=True)

    def deserialize(self, data: bytes) -> int:
        if len(data) != self.bits // 8:
            raise InvalidRequest(f"Expected {self.bits // 8} bytes for {self.cql_name}, got {len(data)}")
        return int.from_bytes(data, "big", signed=True)

    def sort_bytes(self, value: Any) -> bytes:
        return (self.validate(value) + (1 << (self.bits - 1))).to_bytes(self.bits // 8, "big")

    def unsort_bytes(self, data: bytes) -> int:
        return int.from_bytes(data, "big") - (1 << (self.bits - 1))

    def convert_literal(self, lit: Literal, column: str) -> int:
        try:
            return self.validate(int(lit.text))
        except (ValueError, InvalidRequest) as exc:
            raise InvalidRequest(f"Unable to make {self.cql_name} from '{lit.text}'") from exc


class IntType(_FixedInt):
    cql_name = "int"
    java_class = "org.apache.cassandra.db.marshal.Int32Type"
    option_id = 0x0009
    bits = 32


class BigintType(_FixedInt):
    cql_name = "bigint"
    java_class = "org.apache.cassandra.db.marshal.LongType"
    option_id = 0x0002
    bits = 64


class SmallintType(_FixedInt):
    cql_name = "smallint"
    java_class = "org.apache.cassandra.db.marshal.ShortType"
    option_id = 0x0013
    bits = 16


class TinyintType(_FixedInt):
    cql_name = "tinyint"
    java_class = "org.apache.cassandra.db.marshal.ByteType"
    option_id = 0x0014
    bits = 8


class VarintType(CqlType):
    cql_name = "varint"
    java_class = "org.apache.cassandra.db.marshal.IntegerType"
    option_id = 0x000E
    literal_kinds = frozenset({"integer"})

    def validate(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad(self, value)
        return value

    def serialize(self, value: Any) -> bytes:
        return varint_bytes(self.validate(value))

    def deserialize(self, data: bytes) -> int:
        if not data:
            raise InvalidRequest("Empty varint")
        return int.from_bytes(data, "big", signed=True)

    def sort_bytes(self, value: Any) -> bytes:
        n = self.validate(value)
        mag = abs(n).to_bytes((abs(n).bit_length() + 7) // 8, "big")
        if n >= 0:
            return b"\x01" + len(mag).to_bytes(4, "big") + mag
        return b"\x00" + _invert(len(mag).to_bytes(4, "big") + mag)

    def unsort_bytes(self, data: bytes) -> int:
        if data[0] == 1:
            return int.from_bytes(data[5:], "big")
        return -int.from_bytes(_invert(data[5:]), "big")

    def convert_literal(self, lit: Literal, column: str) -> int:
        try:
            return int(lit.text)
        except ValueError as exc:
            raise InvalidRequest(f"Unable to make varint from '{lit.text}'") from exc


def varint_bytes(n: int) -> bytes:
    """Minimal two's complement big-endian bytes of `n` (one byte for zero)."""
    magnitude = n if n >= 0 else ~n  # -128 fits one byte, +128 needs two
    return n.to_bytes(magnitude.bit_length() // 8 + 1, "big", signed=True)


def _invert(data: bytes) -> bytes:
    return bytes(255 - b for b in data)


# ---------------------------------------------------------------- floating point and decimal

class _FloatBase(CqlType):
    fmt = ">f"
    width = 4
    literal_kinds = frozenset({"integer", "float", "nan", "infinity"})

    def validate(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(self, value)
        value = float(value)
        if self.width == 4 and math.isfinite(value) and abs(value) > 3.4028234663852886e38:
            raise InvalidRequest(f"Value {value} out of range for type float")
        return value

    def serialize(self, value: Any) -> bytes:
        return struct.pack(self.fmt, self.validate(value))

    def deserialize(self, data: bytes) -> float:
        if len(data) != self.width:
            raise InvalidRequest(f"Expected {self.width} bytes for {self.cql_name}, got {len(data)}")
        return struct.unpack(self.fmt, data)[0]

    def sort_bytes(self, value: Any) -> bytes:
        # Java's Float.compare / Double.compare order: -0.0 < 0.0, every NaN equal and above +Infinity.
        v = self.validate(value)
        raw = struct.pack(self.fmt, math.nan if math.isnan(v) else v)
        bits = int.from_bytes(raw, "big")
        top = 1 << (self.width * 8 - 1)
        bits = (bits ^ ((1 << (self.width * 8)) - 1)) if bits & top else bits | top
        return bits.to_bytes(self.width, "big")

    def unsort_bytes(self, data: bytes) -> float:
        bits = int.from_bytes(data, "big")
        top = 1 << (self.width * 8 - 1)
        bits = bits & ~top if bits & top else bits ^ ((1 << (self.width * 8)) - 1)
        return struct.unpack(self.fmt, bits.to_bytes(self.width, "big"))[0]

    def convert_literal(self, lit: Literal, column: str) -> float:
        text = lit.text.strip()
        if lit.kind == "nan":
            return math.nan
        if lit.kind == "infinity":
            return -math.inf if text.startswith("-") else math.inf
        try:
            return self.validate(float(text))
        except (ValueError, InvalidRequest) as exc:
            raise InvalidRequest(f"Unable to make {self.cql_name} from '{lit.text}'") from exc


class FloatType(_FloatBase):
    cql_name = "float"
    java_class = "org.apache.cassandra.db.marshal.FloatType"
    option_id = 0x0008


class DoubleType(_FloatBase):
    cql_name = "double"
    java_class = "org.apache.cassandra.db.marshal.DoubleType"
    option_id = 0x0007
    fmt = ">d"
    width = 8


class DecimalType(CqlType):
    cql_name = "decimal"
    java_class = "org.apache.cassandra.db.marshal.DecimalType"
    option_id = 0x0006
    literal_kinds = frozenset({"integer", "float"})

    def validate(self, value: Any) -> decimal.Decimal:
        if isinstance(value, bool) or not isinstance(value, (int, decimal.Decimal)):
            raise _bad(self, value)
        value = decimal.Decimal(value)
        if not value.is_finite():
            raise InvalidRequest("decimal does not accept NaN or Infinity")
        return value

    def serialize(self, value: Any) -> bytes:
        sign, digits, exp = self.validate(value).as_tuple()
        assert isinstance(exp, int)  # validate() refused NaN and Infinity
        unscaled = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
        return (-exp).to_bytes(4, "big", signed=True) + varint_bytes(unscaled)

    def deserialize(self, data: bytes) -> decimal.Decimal:
        if len(data) < 5:
            raise InvalidRequest("decimal needs at least 5 bytes")
        scale = int.from_bytes(data[:4], "big", signed=True)
        unscaled = int.from_bytes(data[4:], "big", signed=True)
        return decimal.Decimal(unscaled).scaleb(-scale, decimal.Context(prec=len(str(abs(unscaled))) + 1))

    def sort_bytes(self, value: Any) -> bytes:
        # Numeric order (1.0 == 1.00, as BigDecimal.compareTo): sign, then the exponent of the leading digit,
        # then the digits; for negatives the exponent and digits are inverted and a 0xFF terminator added.
        v = self.validate(value)
        if v == 0:
            return b"\x01"
        sign, digits, exp = v.normalize(decimal.Context(prec=10**6)).as_tuple()
        assert isinstance(exp, int)  # finite
        lead = exp + len(digits)
        if not sign:
            return b"\x02" + (lead + DATE_CENTER).to_bytes(4, "big") + bytes(d + 1 for d in digits)
        return (b"\x00" + _invert((lead + DATE_CENTER).to_bytes(4, "big"))
                + bytes(0xFE - d for d in digits) + b"\xff")

    def unsort_bytes(self, data: bytes) -> decimal.Decimal:
        if data[0] == 1:
            return decimal.Decimal(0)
        if data[0] == 2:
            lead = int.from_bytes(data[1:5], "big") - DATE_CENTER
            digits = tuple(b - 1 for b in data[5:])
            sign = 0
        else:
            lead = int.from_bytes(_invert(data[1:5]), "big") - DATE_CENTER
            digits = tuple(0xFE - b for b in data[5:-1])
            sign = 1
        return decimal.Decimal((sign, digits, lead - len(digits)))

    def convert_literal(self, lit: Literal, column: str) -> decimal.Decimal:
        try:
            return decimal.Decimal(lit.text)
        except decimal.InvalidOperation as exc:
            raise InvalidRequest(f"Unable to make decimal from '{lit.text}'") from exc


# ---------------------------------------------------------------- boolean, uuid, inet

class BooleanType(CqlType):
    cql_name = "boolean"
    java_class = "org.apache.cassandra.db.marshal.BooleanType"
    option_id = 0x0004
    literal_kinds = frozenset({"boolean"})

    def validate(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise _bad(self, value)
        return value

    def serialize(self, value: Any) -> bytes:
        return b"\x01" if self.validate(value) else b"\x00"

    def deserialize(self, data: bytes) -> bool:
        if len(data) != 1:
            raise InvalidRequest("Expected 1 byte for a boolean value")
        return data[0] != 0

    def sort_bytes(self, value: Any) -> bytes:
        return self.serialize(value)

    def unsort_bytes(self, data: bytes) -> bool:
        return data[0] != 0

    def convert_literal(self, lit: Literal, column: str) -> bool:
        return lit.text.lower() == "true"


class UuidType(CqlType):
    cql_name = "uuid"
    java_class = "org.apache.cassandra.db.marshal.UUIDType"
    option_id = 0x000C
    literal_kinds = frozenset({"uuid"})

    def validate(self, value: Any) -> uuid.UUID:
        if not isinstance(value, uuid.UUID):
            raise _bad(self, value)
        return value

    def serialize(self, value: Any) -> bytes:
        return self.validate(value).bytes

    def deserialize(self, data: bytes) -> uuid.UUID:
        if len(data) != 16:
            raise InvalidRequest(f"Expected 16 bytes for a uuid, got {len(data)}")
        return uuid.UUID(bytes=bytes(data))

    def sort_bytes(self, value: Any) -> bytes:
        # UUIDType: version first; version 1 by timestamp then the low half as signed bytes; others by bytes.
        u = self.validate(value)
        version = u.bytes[6] >> 4
        if version == 1:
            return b"\x01" + _time_order(u)
        return bytes([version]) + u.bytes

    def unsort_bytes(self, data: bytes) -> uuid.UUID:
        if data[0] == 1:
            return _from_time_order(data[1:])
        return uuid.UUID(bytes=bytes(data[1:]))

    def convert_literal(self, lit: Literal, column: str) -> uuid.UUID:
        try:
            return self.validate(uuid.UUID(lit.text))
        except ValueError as exc:
            raise InvalidRequest(f"Unable to make UUID from '{lit.text}'") from exc


def _time_order(u: uuid.UUID) -> bytes:
    b = u.bytes
    return u.time.to_bytes(8, "big") + bytes([b[6] & 0xF0]) + bytes(x ^ 0x80 for x in b[8:])


def _from_time_order(data: bytes) -> uuid.UUID:
    ts = int.from_bytes(data[:8], "big")
    version = data[8] >> 4
    low = bytes(x ^ 0x80 for x in data[9:17])
    hi = ((ts & 0xFFFFFFFF) << 32) | (((ts >> 32) & 0xFFFF) << 16) | (version << 12) | ((ts >> 48) & 0x0FFF)
    return uuid.UUID(bytes=hi.to_bytes(8, "big") + low)


class TimeuuidType(UuidType):
    cql_name = "timeuuid"
    java_class = "org.apache.cassandra.db.marshal.TimeUUIDType"
    option_id = 0x000F

    def validate(self, value: Any) -> uuid.UUID:
        u = super().validate(value)
        if u.version != 1:
            raise InvalidRequest(f"Unsupported UUID version for timeuuid: {u.bytes[6] >> 4}")
        return u

    def deserialize(self, data: bytes) -> uuid.UUID:
        return self.validate(super().deserialize(data))

    def sort_bytes(self, value: Any) -> bytes:
        return _time_order(self.validate(value))

    def unsort_bytes(self, data: bytes) -> uuid.UUID:
        return _from_time_order(data)

    def convert_literal(self, lit: Literal, column: str) -> uuid.UUID:
        u = super().convert_literal(lit, column)
        if u.version != 1:
            raise InvalidRequest(f"Unsupported UUID version for timeuuid: {lit.text}")
        return u


class InetType(CqlType):
    cql_name = "inet"
    java_class = "org.apache.cassandra.db.marshal.InetAddressType"
    option_id = 0x0010
    literal_kinds = frozenset({"string"})

    def validate(self, value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        if isinstance(value, str):
            value = ipaddress.ip_address(value)
        if not isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            raise _bad(self, value)
        return value

    def serialize(self, value: Any) -> bytes:
        return self.validate(value).packed

    def deserialize(self, data: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        if len(data) not in (4, 16):
            raise InvalidRequest(f"Invalid length for inet: {len(data)}")
        return ipaddress.ip_address(bytes(data))

    def sort_bytes(self, value: Any) -> bytes:
        packed = self.validate(value).packed
        return bytes([len(packed)]) + packed

    def unsort_bytes(self, data: bytes) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        return ipaddress.ip_address(bytes(data[1:]))

    def convert_literal(self, lit: Literal, column: str) -> Any:
        try:
            return ipaddress.ip_address(lit.text)
        except ValueError as exc:
            raise InvalidRequest(f"Unable to make inet address from '{lit.text}'") from exc
