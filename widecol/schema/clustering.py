"""Order-preserving byte encoding of clustering keys.

How this works: each component is its type's `sort_bytes` (whose unsigned order is Cassandra's order for the
type), escaped so it is prefix-free (0x00 -> 0x00 0xFF) and terminated with 0x00 0x01.  A DESC component has every
byte of its escaped, terminated form inverted (0x00 0x01 becomes 0xFF 0xFE).  Concatenating components therefore
sorts by the first component, then the second, and so on, and a key with fewer components (a prefix) sorts before
every key that extends it.  `prefix_upper_bound` increments the last byte of a complete-component prefix: no key
extending the prefix can reach it, since the next byte after a terminator's first byte is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from widecol.errors import InvalidRequest
from widecol.schema.collections import escape, unescape_next
from widecol.schema.scalars import CqlType

ASC = "ASC"
DESC = "DESC"


def _invert(data: bytes) -> bytes:
    return data.translate(_INVERT)


_INVERT = bytes(range(255, -1, -1))


def encode_component(t: CqlType, value: Any) -> bytes:
    """Unsigned byte order of the result equals Cassandra's order of values of type `t` (unescaped)."""
    return t.sort_bytes(value)


def encode_clustering(types: Sequence[CqlType], orders: Sequence[str], values: Sequence[Any]) -> bytes:
    """The key for `values` (which may be a prefix of `types`): sorts by each component in turn, ASC or DESC."""
    if len(values) > len(types):
        raise InvalidRequest(f"Too many clustering values: {len(values)} for {len(types)} columns")
    out = bytearray()
    for t, order, v in zip(types, orders, values, strict=False):
        if v is None:
            raise InvalidRequest("Invalid null value for clustering key part")
        piece = escape(t.sort_bytes(v))
        out += _invert(piece) if order.upper() == DESC else piece
    return bytes(out)


def decode_clustering(types: Sequence[CqlType], orders: Sequence[str], encoded: bytes) -> tuple:
    """The values of `encoded` (as many components as it holds), inverse of `encode_clustering`."""
    out, pos = [], 0
    for t, order in zip(types, orders, strict=False):
        if pos >= len(encoded):
            break
        if order.upper() == DESC:
            raw, end = unescape_next(_invert(encoded[pos:]), 0)
            pos += end
        else:
            raw, pos = unescape_next(encoded, pos)
        out.append(t.unsort_bytes(raw))
    if pos != len(encoded):
        raise InvalidRequest("Extraneous bytes after clustering key")
    return tuple(out)


def prefix_upper_bound(encoded_prefix: bytes) -> bytes:
    """The smallest byte string greater than every key starting with `encoded_prefix` (complete components).
    The empty prefix has no bound: every key starts with it, so b"" is returned to mean "unbounded"."""
    if not encoded_prefix:
        return b""
    last = encoded_prefix[-1]
    if last not in (0x01, 0xFE):
        raise InvalidRequest("Clustering prefix does not end on a component terminator")
    return encoded_prefix[:-1] + bytes([last + 1])
