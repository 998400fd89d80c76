"""Every CQL type in one place: import types, `parse_type` and `protocol_option` from here.

The implementations live in `scalars` (base class, text, numbers, uuid, inet), `temporal` (timestamp, date, time,
duration) and `collections` (list, set, map, tuple, and the type-string parser).
"""

from widecol.schema.collections import (
    SCALARS,
    ListType,
    MapType,
    SetType,
    TupleType,
    parse_type,
    protocol_option,
)
from widecol.schema.scalars import CqlType, varint_bytes
from widecol.schema.temporal import DateType, Duration, DurationType, TimestampType, TimeType

__all__ = [
    "SCALARS", "CqlType", "DateType", "Duration", "DurationType", "ListType", "MapType", "SetType",
    "TimeType", "TimestampType", "TupleType", "parse_type", "protocol_option", "varint_bytes",
]
