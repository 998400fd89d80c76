"""SELECT JSON: each result row as one JSON object text, as Cassandra's toJson writes values.

How this works: every value is turned into a JSON-ready Python value by its CQL type (strings for uuids, inets,
blobs as 0x..., timestamps as "yyyy-mm-dd hh:mm:ss.fffZ", dates and times in ISO form; numbers and booleans as
JSON numbers and booleans; lists, sets and tuples as arrays; maps as objects whose keys are the JSON text of
non-string keys), then the row is dumped with the result's column names (quoted when not all lower case, as
Cassandra does) as keys. The result has one text column named "[json]".
"""

from __future__ import annotations

import datetime
import decimal
import json
from typing import Any


def column_key(name: str) -> str:
    """Cassandra quotes names that would not survive as unquoted identifiers."""
    return name if name == name.lower() and name.replace("_", "a").isalnum() else f'"{name}"'


def to_json(t: Any, value: Any) -> Any:
    """The JSON-ready form of VALUE of type T."""
    if value is None:
        return None
    kind = getattr(t, "kind", "")
    if kind == "map":
        return {_key_text(t.key, k): to_json(t.value, v) for k, v in value.items()}
    if kind in ("list", "set"):
        return [to_json(t.element, v) for v in value]
    if hasattr(t, "elements"):
        return [to_json(et, v) for et, v in zip(t.elements, value, strict=False)]
    if isinstance(value, bool) or isinstance(value, int | float):
        return value
    if isinstance(value, decimal.Decimal):
        return float(value) if value != value.to_integral_value() else int(value)
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, datetime.datetime):
        value = value.astimezone(datetime.UTC)
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return str(value)


def _key_text(t: Any, key: Any) -> str:
    v = to_json(t, key)
    return v if isinstance(v, str) else json.dumps(v)


def row_json(columns: list, row: tuple) -> str:
    return json.dumps({column_key(name): to_json(t, v) for (name, t), v in zip(columns, row, strict=True)},
                      separators=(", ", ": "))
