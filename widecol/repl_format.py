"""Rows as cqlsh shows them: values formatted per CQL type, aligned tables and the expanded (vertical) form.

How this works: `format_value(value, type_name)` turns one Python value into cqlsh's text for it. The type name
(a column type's CQL name, such as "map<text, frozen<list<int>>>") is parsed once into a small tree so that
collection elements are formatted by their own types: text is bare at the top level and quoted inside collections,
blobs are 0x..., timestamps `2024-01-02 03:04:05.000000+0000`, floats use cqlsh's precision (5 digits for float,
12 for double), time is nanoseconds as HH:MM:SS.nnnnnnnnn. A type name that does not parse falls back to
formatting by the Python value alone. `table` and `expanded` lay out formatted cells, measuring display width
(wide characters count two columns).
"""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import math
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from wcwidth import wcswidth

FLOAT_PRECISION = 5
DOUBLE_PRECISION = 12
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


@dataclass(frozen=True)
class TypeTree:
    """A parsed CQL type name: its base name (lowercase) and its parameters."""

    name: str
    params: tuple[TypeTree, ...] = ()


def parse_type_name(text: str) -> TypeTree:
    """The tree of a CQL type name; frozen<...> is unwrapped. Unknown names are kept as they are."""
    tree, rest = _parse(text.strip())
    if rest.strip():
        return TypeTree(text.strip().lower())
    return tree


def _parse(text: str) -> tuple[TypeTree, str]:
    i = 0
    while i < len(text) and text[i] not in "<>,":
        i += 1
    name = text[:i].strip().lower()
    rest = text[i:]
    params: list[TypeTree] = []
    if rest.startswith("<"):
        rest = rest[1:]
        while True:
            sub, rest = _parse(rest)
            params.append(sub)
            rest = rest.lstrip()
            if rest.startswith(","):
                rest = rest[1:]
                continue
            if rest.startswith(">"):
                rest = rest[1:]
            break
    if name == "frozen" and len(params) == 1:
        return params[0], rest
    return TypeTree(name, tuple(params)), rest


def type_name(type_obj: Any) -> str:
    """The CQL name of a column type object: its `cql_name` attribute, or the result of calling it."""
    name = getattr(type_obj, "cql_name", None)
    if callable(name):
        name = name()
    if isinstance(name, str):
        return name
    return str(type_obj)


def format_value(value: Any, type_text: str | TypeTree = "") -> str:
    """cqlsh's text for VALUE of the given CQL type; `null` for None."""
    tree = parse_type_name(type_text) if isinstance(type_text, str) else type_text
    return _format(value, tree, top=True)


def _format(value: Any, t: TypeTree, top: bool) -> str:
    if value is None:
        return "null"
    name = t.name
    if name in ("text", "varchar", "ascii") or isinstance(value, str) and name not in ("inet", "time"):
        text = str(value)
        return _escape(text) if top else "'" + _escape(text).replace("'", "''") + "'"
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return "True" if value else "False"
    if name == "time" and isinstance(value, int):
        return format_time(value)
    if isinstance(value, datetime.datetime):
        return format_timestamp(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, datetime.time):
        return value.strftime("%H:%M:%S.%f") + "000"
    if name == "timestamp" and isinstance(value, int):
        return str(value)  # outside the range Python's datetime can show
    if isinstance(value, float):
        return format_float(value, FLOAT_PRECISION if name == "float" else DOUBLE_PRECISION)
    if isinstance(value, (int, decimal.Decimal, uuid.UUID, ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return str(value)
    if _is_duration(value):
        return format_duration(value.months, value.days, value.nanoseconds)
    if isinstance(value, dict) or hasattr(value, "items") and not isinstance(value, (list, tuple)):
        kt = t.params[0] if len(t.params) == 2 else TypeTree("")
        vt = t.params[1] if len(t.params) == 2 else TypeTree("")
        inner = ", ".join(f"{_format(k, kt, False)}: {_format(v, vt, False)}" for k, v in value.items())
        return "{" + inner + "}"
    if name == "tuple" or isinstance(value, tuple) and name not in ("list", "set"):
        types = list(t.params) + [TypeTree("")] * (len(value) - len(t.params))
        return "(" + ", ".join(_format(v, et, False) for v, et in zip(value, types, strict=False)) + ")"
    if isinstance(value, Iterable):
        et = t.params[0] if t.params else TypeTree("")
        items = ", ".join(_format(v, et, False) for v in value)
        if name == "list" or name != "set" and isinstance(value, list):
            return "[" + items + "]"
        return "{" + items + "}"
    return str(value)


def _escape(text: str) -> str:
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif not ch.isprintable() and ch != " ":
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def _is_duration(value: Any) -> bool:
    return all(hasattr(value, a) for a in ("months", "days", "nanoseconds"))


def format_timestamp(value: datetime.datetime) -> str:
    """`2024-01-02 03:04:05.000000+0000`, in UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.UTC)
    value = value.astimezone(datetime.UTC)
    return value.strftime("%Y-%m-%d %H:%M:%S.%f") + "+0000"


def format_time(nanos: int) -> str:
    """Nanoseconds since midnight as `HH:MM:SS.nnnnnnnnn`."""
    seconds, frac = divmod(nanos, 10**9)
    minutes, sec = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours:02d}:{minute:02d}:{sec:02d}.{frac:09d}"


def format_float(value: float, precision: int) -> str:
    """As cqlsh: NaN, Infinity, or %g with PRECISION significant digits plus the integer digits."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "0"
    exponent = int(math.log10(abs(value)))
    if -4 <= exponent < precision:
        precision += exponent + 1  # %g keeps fixed notation here; count the integer digits too
    return f"{value:.{precision}g}"


def format_duration(months: int, days: int, nanos: int) -> str:
    """cqlsh's duration text: 1y2mo3d4h5m6s7ms8us9ns, leaving out zero units."""
    sign = "-" if months < 0 or days < 0 or nanos < 0 else ""
    months, days, nanos = abs(months), abs(days), abs(nanos)
    parts = []
    for amount, unit in ((months // 12, "y"), (months % 12, "mo"), (days, "d")):
        if amount:
            parts.append(f"{amount}{unit}")
    for size, unit in ((3600 * 10**9, "h"), (60 * 10**9, "m"), (10**9, "s"), (10**6, "ms"), (1000, "us"),
                       (1, "ns")):
        amount, nanos = divmod(nanos, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return sign + ("".join(parts) or "0s")


# ---------------------------------------------------------------------------------------------------------------
# Layout


def width(text: str) -> int:
    """Display width of TEXT in terminal columns (wide characters count two)."""
    w = wcswidth(text)
    return w if w >= 0 else len(text)


def _rjust(text: str, w: int) -> str:
    return " " * (w - width(text)) + text


def _ljust(text: str, w: int) -> str:
    return text + " " * (w - width(text))


def format_rows(columns: Sequence[tuple[str, Any]], rows: Iterable[Sequence[Any]]) -> list[list[str]]:
    """Each row's cells as text, formatted by the column types (type objects or CQL type names)."""
    trees = [parse_type_name(t if isinstance(t, str) else type_name(t)) for _, t in columns]
    return [[_format(v, tree, True) for v, tree in zip(row, trees, strict=False)] for row in rows]


def table(names: Sequence[str], cells: Sequence[Sequence[str]]) -> list[str]:
    """cqlsh's table: a header (names left-aligned), a separator, then the rows (cells right-aligned).
    Returns the lines, without the blank lines and row count around them."""
    widths = [width(n) for n in names]
    for row in cells:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], width(cell))
    lines = [" " + " | ".join(_ljust(n, w) for n, w in zip(names, widths, strict=True)),
             "-" + "-+-".join("-" * w for w in widths) + "-"]
    for row in cells:
        lines.append(" " + " | ".join(_rjust(c, w) for c, w in zip(row, widths, strict=True)))
    return [line.rstrip() for line in lines]


def expanded(names: Sequence[str], cells: Sequence[Sequence[str]], first_row: int = 1) -> list[str]:
    """cqlsh's EXPAND ON form: for each row `@ Row N`, a separator, then one `name | value` line per column,
    and a blank line."""
    name_w = max((width(n) for n in names), default=0)
    value_w = max((width(c) for row in cells for c in row), default=0)
    lines: list[str] = []
    for number, row in enumerate(cells, start=first_row):
        lines.append(f"@ Row {number}")
        lines.append("-" + "-" * name_w + "-+-" + "-" * value_w + "-")
        for name, cell in zip(names, row, strict=True):
            lines.append((" " + _ljust(name, name_w) + " | " + cell).rstrip())
        lines.append("")
    return lines


def row_count(n: int) -> str:
    """`(N rows)`, as cqlsh words it (also for one row)."""
    return f"({n} rows)"
