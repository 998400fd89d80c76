"""CQL time types: timestamp, date, time and duration, with their byte forms and literal formats.

How this works: timestamp is a signed 64-bit count of milliseconds since the Unix epoch (Python: an aware UTC
datetime); date is an unsigned 32-bit day count centred on 2^31 at 1970-01-01 (Python: datetime.date, or an int
day count outside date's range); time is signed 64-bit nanoseconds since midnight (Python: int); duration is three
zig-zag vints (months, days, nanoseconds) (Python: `Duration`).  Literal parsing follows Cassandra's accepted
formats, including the 1h30m, ISO 8601 (P1DT2H, P2W) and alternative (P0001-02-03T04:05:06) duration forms.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from widecol.errors import InvalidRequest
from widecol.schema.literals import Literal
from widecol.schema.scalars import (
    DATE_CENTER,
    EPOCH,
    EPOCH_DATE,
    NANOS_PER_DAY,
    CqlType,
    _bad,
    _FixedInt,
)


class TimestampType(_FixedInt):
    cql_name = "timestamp"
    java_class = "org.apache.cassandra.db.marshal.TimestampType"
    option_id = 0x000B
    bits = 64
    literal_kinds = frozenset({"integer", "string"})

    def validate(self, value: Any) -> Any:
        """Accept an aware or naive (taken as UTC) datetime, or int milliseconds; return the same kind."""
        if isinstance(value, datetime.datetime):
            return value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return super().validate(value)

    def millis(self, value: Any) -> int:
        v = self.validate(value)
        if isinstance(v, datetime.datetime):
            delta = v - EPOCH
            return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
        return v

    def serialize(self, value: Any) -> bytes:
        return super().serialize(self.millis(value))

    def deserialize(self, data: bytes) -> Any:
        return from_millis(super().deserialize(data))

    def sort_bytes(self, value: Any) -> bytes:
        return super().sort_bytes(self.millis(value))

    def unsort_bytes(self, data: bytes) -> Any:
        return from_millis(super().unsort_bytes(data))

    def convert_literal(self, lit: Literal, column: str) -> Any:
        if lit.kind == "integer":
            return super().convert_literal(lit, column)
        text = lit.text.strip().replace("T", " ", 1) if "T" in lit.text else lit.text.strip()
        text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)
        text = re.sub(r"Z$", "+00:00", text)
        try:
            return self.validate(datetime.datetime.fromisoformat(text))
        except ValueError as exc:
            raise InvalidRequest(f"Unable to coerce '{lit.text}' to a formatted date (long)") from exc


def from_millis(ms: int) -> Any:
    """An aware UTC datetime for `ms`, or `ms` itself when outside datetime's range."""
    try:
        return EPOCH + datetime.timedelta(milliseconds=ms)
    except OverflowError:
        return ms


class DateType(CqlType):
    cql_name = "date"
    java_class = "org.apache.cassandra.db.marshal.SimpleDateType"
    option_id = 0x0011
    literal_kinds = frozenset({"integer", "string"})

    def days(self, value: Any) -> int:
        """Signed days since 1970-01-01 for a date or a day count."""
        if isinstance(value, datetime.datetime):
            raise _bad(self, value)
        if isinstance(value, datetime.date):
            return (value - EPOCH_DATE).days
        if isinstance(value, bool) or not isinstance(value, int) or not -DATE_CENTER <= value < DATE_CENTER:
            raise _bad(self, value)
        return value

    def validate(self, value: Any) -> Any:
        self.days(value)
        return value

    def serialize(self, value: Any) -> bytes:
        return (self.days(value) + DATE_CENTER).to_bytes(4, "big")

    def deserialize(self, data: bytes) -> Any:
        if len(data) != 4:
            raise InvalidRequest(f"Expected 4 bytes for a date, got {len(data)}")
        return from_days(int.from_bytes(data, "big") - DATE_CENTER)

    def sort_bytes(self, value: Any) -> bytes:
        return self.serialize(value)

    def unsort_bytes(self, data: bytes) -> Any:
        return self.deserialize(data)

    def convert_literal(self, lit: Literal, column: str) -> Any:
        if lit.kind == "integer":
            raw = int(lit.text)
            if not 0 <= raw < 1 << 32:
                raise InvalidRequest(f"Unable to make unsigned int (for date) from: '{lit.text}'")
            return from_days(raw - DATE_CENTER)
        try:
            return datetime.date.fromisoformat(lit.text.strip())
        except ValueError as exc:
            raise InvalidRequest(f"Unable to coerce '{lit.text}' to a formatted date (long)") from exc


def from_days(days: int) -> Any:
    """A datetime.date for `days` since the epoch, or the int when outside date's range."""
    try:
        return EPOCH_DATE + datetime.timedelta(days=days)
    except OverflowError:
        return days


class TimeType(CqlType):
    cql_name = "time"
    java_class = "org.apache.cassandra.db.marshal.TimeType"
    option_id = 0x0012
    literal_kinds = frozenset({"integer", "string"})

    def validate(self, value: Any) -> int:
        if isinstance(value, datetime.time):
            value = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**9 + value.microsecond * 1000
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < NANOS_PER_DAY:
            raise _bad(self, value)
        return value

    def serialize(self, value: Any) -> bytes:
        return self.validate(value).to_bytes(8, "big", signed=True)

    def deserialize(self, data: bytes) -> int:
        if len(data) != 8:
            raise InvalidRequest(f"Expected 8 bytes for a time, got {len(data)}")
        return self.validate(int.from_bytes(data, "big", signed=True))

    def sort_bytes(self, value: Any) -> bytes:
        return self.serialize(value)

    def unsort_bytes(self, data: bytes) -> int:
        return int.from_bytes(data, "big")

    def convert_literal(self, lit: Literal, column: str) -> int:
        if lit.kind == "integer":
            try:
                return self.validate(int(lit.text))
            except InvalidRequest as exc:
                raise InvalidRequest("Invalid time: nanoseconds must be in [0, 86399999999999]") from exc
        m = re.fullmatch(r"\s*(\d{1,2}):(\d\d):(\d\d)(?:\.(\d{1,9}))?\s*", lit.text)
        if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3]) > 59:
            raise InvalidRequest(f"Unable to coerce '{lit.text}' to a formatted time (long)")
        frac = int((m[4] or "").ljust(9, "0"))
        return ((int(m[1]) * 60 + int(m[2])) * 60 + int(m[3])) * 10**9 + frac


@dataclass(frozen=True)
class Duration:
    """A CQL duration: months, days and nanoseconds, all of one sign (or zero)."""

    months: int = 0
    days: int = 0
    nanoseconds: int = 0


def encode_vint(n: int) -> bytes:
    """Cassandra's signed vint: zig-zag, then leading one-bits in the first byte count the extra bytes."""
    v = ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF
    for size in range(1, 9):
        if v < 1 << (7 * size):
            out = bytearray(v.to_bytes(size, "big"))
            out[0] |= (0xFF << (9 - size)) & 0xFF
            return bytes(out)
    return b"\xff" + v.to_bytes(8, "big")


def decode_vint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the signed vint at `pos`."""
    first = data[pos]
    extra = 8 - (~first & 0xFF).bit_length() if first != 0xFF else 8
    if pos + 1 + extra > len(data):
        raise InvalidRequest("Truncated vint")
    v = first & (0xFF >> (extra + 1)) if extra < 8 else 0
    for b in data[pos + 1:pos + 1 + extra]:
        v = (v << 8) | b
    return (v >> 1) ^ -(v & 1), pos + 1 + extra


_UNITS = {"y": (12, 0, 0), "mo": (1, 0, 0), "w": (0, 7, 0), "d": (0, 1, 0), "h": (0, 0, 3600 * 10**9),
          "m": (0, 0, 60 * 10**9), "s": (0, 0, 10**9), "ms": (0, 0, 10**6), "us": (0, 0, 1000),
          "µs": (0, 0, 1000), "ns": (0, 0, 1)}


def parse_duration(text: str) -> Duration:
    """Parse the duration forms Cassandra accepts; raises InvalidRequest otherwise."""
    s = text.strip()
    neg = s.startswith("-")
    body = s[1:] if neg else s
    months = days = nanos = 0
    if body[:1].upper() == "P":
        m = (re.fullmatch(r"P(\d+)W", body, re.I)
             or re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?",
                             body, re.I)
             or re.fullmatch(r"P(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)", body, re.I))
        if not m or body.upper() in ("P", "PT") or body.upper().endswith("T"):
            raise InvalidRequest(f"Unable to convert '{text}' to a duration")
        g = [int(x) if x else 0 for x in m.groups()]
        if len(g) == 1:
            days = g[0] * 7
        else:
            months, days = g[0] * 12 + g[1], g[2]
            nanos = ((g[3] * 60 + g[4]) * 60 + g[5]) * 10**9
    else:
        parts = re.findall(r"(\d+)(mo|ms|us|µs|ns|y|w|d|h|m|s)", body, re.I)
        if not parts or "".join(n + u for n, u in parts) != body:
            raise InvalidRequest(f"Unable to convert '{text}' to a duration")
        for num, unit in parts:
            mo, d, ns = _UNITS[unit.lower()]
            months, days, nanos = months + int(num) * mo, days + int(num) * d, nanos + int(num) * ns
    sign = -1 if neg else 1
    return DurationType().validate(Duration(sign * months, sign * days, sign * nanos))


class DurationType(CqlType):
    cql_name = "duration"
    java_class = "org.apache.cassandra.db.marshal.DurationType"
    option_id = 0x0015
    literal_kinds = frozenset({"duration"})

    def validate(self, value: Any) -> Duration:
        if not isinstance(value, Duration):
            raise _bad(self, value)
        parts = (value.months, value.days, value.nanoseconds)
        if not all(-(1 << 31) <= p < 1 << 31 for p in parts[:2]) or not -(1 << 63) <= parts[2] < 1 << 63:
            raise InvalidRequest(f"Duration out of range: {value}")
        if any(p < 0 for p in parts) and any(p > 0 for p in parts):
            raise InvalidRequest("The duration months, days and nanoseconds must be all of the same sign")
        return value

    def serialize(self, value: Any) -> bytes:
        d = self.validate(value)
        return encode_vint(d.months) + encode_vint(d.days) + encode_vint(d.nanoseconds)

    def deserialize(self, data: bytes) -> Duration:
        data = bytes(data)
        try:
            months, pos = decode_vint(data, 0)
            days, pos = decode_vint(data, pos)
            nanos, pos = decode_vint(data, pos)
        except IndexError as exc:
            raise InvalidRequest("Truncated duration") from exc
        if pos != len(data):
            raise InvalidRequest("Trailing bytes after duration")
        return self.validate(Duration(months, days, nanos))

    def sort_bytes(self, value: Any) -> bytes:
        raise InvalidRequest("duration type is not supported for PRIMARY KEY part")

    def convert_literal(self, lit: Literal, column: str) -> Duration:
        return parse_duration(lit.text)
