"""The literal values a CQL parser hands to the type layer.

The parser produces these; `widecol.schema.types.CqlType.from_literal` turns them into validated Python values.

- `Literal(kind, text)`: kind is one of LITERAL_KINDS; text is the source text without quotes for strings
  ('it''s' arrives as "it's"), the digits for integers/floats (with sign), "true"/"false", the uuid text,
  the hex blob including its "0x" prefix, the duration text (1h30m, P1DT2H, P0001-02-03T04:05:06), "NaN" or
  "Infinity"/"-Infinity", and "null".
- `CollectionLiteral(kind, items)`: kind is "list", "set", "map" or "tuple"; items are Literals or nested
  CollectionLiterals, and for "map" each item is a (key, value) pair.  `{}` arrives as kind "map" with no items
  (Cassandra lets it stand for an empty set too).
"""

from __future__ import annotations

from dataclasses import dataclass, field

LITERAL_KINDS = frozenset(
    {"string", "integer", "float", "boolean", "uuid", "blob", "duration", "null", "nan", "infinity"}
)
COLLECTION_KINDS = frozenset({"list", "set", "map", "tuple"})


@dataclass(frozen=True)
class Literal:
    """A scalar literal as written in CQL: its kind and its text."""

    kind: str
    text: str

    def __post_init__(self) -> None:
        if self.kind not in LITERAL_KINDS:
            raise ValueError(f"unknown literal kind {self.kind!r}")


@dataclass(frozen=True)
class CollectionLiteral:
    """A collection or tuple literal; map items are (key, value) pairs."""

    kind: str
    items: list = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in COLLECTION_KINDS:
            raise ValueError(f"unknown collection literal kind {self.kind!r}")


AnyLiteral = Literal | CollectionLiteral
