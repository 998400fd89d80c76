"""CAST(selector AS type) for the simple cases Cassandra supports between native types.

Numbers convert to every other number type (integer targets truncate and then wrap on overflow, as Java's
narrowing casts do); every type converts to text and ascii (Cassandra's text forms); timestamp, date and timeuuid
convert among themselves (a timeuuid to the time it carries). Anything else is refused with InvalidRequest.
"""

from __future__ import annotations

import datetime
import decimal
import math
import uuid
from collections.abc import Callable
from typing import Any

from widecol.errors import InvalidRequest

_INTEGERS = {"tinyint": 8, "smallint": 16, "int": 32, "bigint": 64, "varint": 0}
_NUMBERS = {*_INTEGERS, "float", "double", "decimal", "counter"}
_TEXT = {"text", "varchar", "ascii"}
_GREGORIAN_OFFSET = 0x01B21DD213814000  # 100-ns intervals between 1582-10-15 and 1970-01-01


def cast_function(source: str, target: str) -> Callable[[Any], Any]:
    """A function converting a value of CQL type SOURCE to TARGET (both cql names), or InvalidRequest."""
    if source == target:
        return lambda v: v
    if target in _TEXT:
        return _to_text
    if source in _NUMBERS and target in _NUMBERS:
        return _to_number(target)
    if source in ("timestamp", "date", "timeuuid") and target in ("timestamp", "date"):
        return _to_time(source, target)
    raise InvalidRequest(f"{source} cannot be cast to {target}")


def _to_number(target: str) -> Callable[[Any], Any]:
    if target in ("float", "double"):
        return lambda v: float(v)
    if target == "decimal":
        return lambda v: v if isinstance(v, decimal.Decimal) else decimal.Decimal(repr(v) if isinstance(v, float) else v)
    bits = _INTEGERS[target]

    def to_int(v: Any) -> int:
        if isinstance(v, float) and not math.isfinite(v):
            raise InvalidRequest(f"Cannot cast {v} to {target}")
        n = int(v)  # truncates toward zero, as Java does
        if bits:
            n = (n + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))
        return n

    return to_int


def _to_time(source: str, target: str) -> Callable[[Any], Any]:
    def to_datetime(v: Any) -> datetime.datetime:
        if source == "timeuuid":
            assert isinstance(v, uuid.UUID)
            micros = (v.time - _GREGORIAN_OFFSET) // 10
            return datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(microseconds=micros)
        if source == "date":
            return datetime.datetime(v.year, v.month, v.day, tzinfo=datetime.UTC)
        return v

    if target == "date":
        return lambda v: to_datetime(v).date()
    return to_datetime


def _to_text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, bytes):
        return "0x" + v.hex()
    if isinstance(v, datetime.datetime):
        return v.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond // 1000:03d}Z"
    return str(v)
