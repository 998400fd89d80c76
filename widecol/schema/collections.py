"""CQL collections (list, set, map, frozen or not) and tuples; the type-string parser; protocol [option]s.

How this works: a collection's byte form is the protocol v3+ one: an [int] count then each element as [bytes]
(an [int] length, -1 for null, then the element's own byte form); a map alternates key and value; a tuple is one
[bytes] per component with no count.  Sets and maps are written in the element type's Cassandra order (the order
of `sort_bytes`), as Cassandra stores them.  For clustering keys, frozen collections and tuples order component-
wise: each element's `sort_bytes` is escaped and terminated (see `escape`), so a shorter prefix sorts first.
`parse_type` reads strings such as "frozen<map<text, list<int>>>" and raises Cassandra's errors.
"""

from __future__ import annotations

import re
import struct
from typing import Any

from sortedcontainers import SortedSet

from widecol.errors import InvalidRequest, SyntaxException
from widecol.schema import scalars as sc
from widecol.schema.literals import CollectionLiteral, Literal
from widecol.schema.scalars import CqlType, literal_error
from widecol.schema.temporal import DateType, DurationType, TimestampType, TimeType

SCALARS: dict[str, CqlType] = {
    t.cql_name: t
    for t in (sc.AsciiType(), sc.TextType(), sc.BlobType(), sc.IntType(), sc.BigintType(), sc.SmallintType(),
              sc.TinyintType(), sc.VarintType(), sc.FloatType(), sc.DoubleType(), sc.DecimalType(),
              sc.BooleanType(), sc.UuidType(), sc.TimeuuidType(), sc.InetType(), TimestampType(), DateType(),
              TimeType(), DurationType())
}
SCALARS["varchar"] = SCALARS["text"]

_MARSHAL = "org.apache.cassandra.db.marshal."


def escape(raw: bytes) -> bytes:
    """Prefix-free form of one component: 0x00 becomes 0x00 0xFF, then the terminator 0x00 0x01."""
    return raw.replace(b"\x00", b"\x00\xff") + b"\x00\x01"


def unescape_next(data: bytes, pos: int) -> tuple[bytes, int]:
    """(raw component, position after its terminator) for the escaped component starting at `pos`."""
    out = bytearray()
    while True:
        i = data.find(b"\x00", pos)
        if i < 0 or i + 1 >= len(data):
            raise InvalidRequest("Truncated clustering component")
        out += data[pos:i]
        if data[i + 1] == 0xFF:
            out.append(0)
            pos = i + 2
        elif data[i + 1] == 0x01:
            return bytes(out), i + 2
        else:
            raise InvalidRequest("Corrupt clustering component")


def _write_bytes(b: bytes | None) -> bytes:
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def _read_bytes(data: bytes, pos: int) -> tuple[bytes | None, int]:
    if pos + 4 > len(data):
        raise InvalidRequest("Not enough bytes to read a collection element length")
    (n,) = struct.unpack_from(">i", data, pos)
    pos += 4
    if n < 0:
        return None, pos
    if pos + n > len(data):
        raise InvalidRequest("Not enough bytes to read a collection element")
    return bytes(data[pos:pos + n]), pos + n


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


class _Collection(CqlType):
    is_collection = True
    kind = ""

    def __init__(self, frozen: bool) -> None:
        self.frozen = frozen

    @property
    def inner_name(self) -> str:
        raise NotImplementedError

    @property
    def cql_name(self) -> str:  # type: ignore[override]
        return f"frozen<{self.inner_name}>" if self.frozen else self.inner_name

    def _elem_literal(self, t: CqlType, lit: Any, receiver: str) -> Any:
        if isinstance(lit, Literal) and lit.kind == "null":
            raise InvalidRequest("null is not supported inside collections")
        return t.from_literal(lit, receiver)

    def _check_kind(self, lit: Any, column: str, kinds: tuple[str, ...]) -> bool:
        """True for a usable collection literal, False for null; raises for anything else."""
        if isinstance(lit, Literal):
            if lit.kind == "null":
                return False
            raise literal_error(lit, column, self)
        if lit.kind not in kinds:
            raise InvalidRequest(f'Invalid {lit.kind} literal for "{column}" of type {self.cql_name}')
        return True


class ListType(_Collection):
    kind = "list"
    option_id = 0x0020

    def __init__(self, element: CqlType, frozen: bool = False) -> None:
        super().__init__(frozen)
        self.element = element

    @property
    def inner_name(self) -> str:
        return f"list<{self.element.cql_name}>"

    @property
    def java_class(self) -> str:  # type: ignore[override]
        inner = f"{_MARSHAL}ListType({self.element.java_class})"
        return f"{_MARSHAL}FrozenType({inner})" if self.frozen else inner

    def validate(self, value: Any) -> list:
        if not isinstance(value, (list, tuple)):
            raise InvalidRequest(f"Invalid value {value!r} for type {self.cql_name}")
        return [None if v is None else self.element.validate(v) for v in value]

    def _items(self, value: Any) -> list:
        return self.validate(value)

    def serialize(self, value: Any) -> bytes:
        items = self._items(value)
        body = b"".join(_write_bytes(None if v is None else self.element.serialize(v)) for v in items)
        return struct.pack(">i", len(items)) + body

    def _read(self, data: bytes, per_item: int) -> list:
        data = bytes(data)
        if len(data) < 4:
            raise InvalidRequest(f"Not enough bytes to read a {self.kind}")
        (count,) = struct.unpack_from(">i", data, 0)
        if count < 0:
            raise InvalidRequest(f"Negative element count in {self.kind}")
        pos, out = 4, []
        for _ in range(count * per_item):
            b, pos = _read_bytes(data, pos)
            out.append(b)
        if pos != len(data):
            raise InvalidRequest(f"Unexpected extraneous bytes after {self.kind} value")
        return out

    def deserialize(self, data: bytes) -> Any:
        return [None if b is None else self.element.deserialize(b) for b in self._read(data, 1)]

    def sort_bytes(self, value: Any) -> bytes:
        return b"".join(escape(self.element.sort_bytes(v)) for v in self._items(value))

    def unsort_bytes(self, data: bytes) -> Any:
        out, pos = [], 0
        while pos < len(data):
            raw, pos = unescape_next(data, pos)
            out.append(self.element.unsort_bytes(raw))
        return self._wrap(out)

    def _wrap(self, items: list) -> Any:
        return items

    def from_literal(self, lit: Any, column: str) -> Any:
        if not self._check_kind(lit, column, ("list",)):
            return None
        return [self._elem_literal(self.element, i, f"value({column})") for i in lit.items]


class SetType(ListType):
    kind = "set"
    option_id = 0x0022

    @property
    def inner_name(self) -> str:
        return f"set<{self.element.cql_name}>"

    @property
    def java_class(self) -> str:  # type: ignore[override]
        inner = f"{_MARSHAL}SetType({self.element.java_class})"
        return f"{_MARSHAL}FrozenType({inner})" if self.frozen else inner

    def validate(self, value: Any) -> Any:
        if not isinstance(value, (set, frozenset, list, tuple, SortedSet)):
            raise InvalidRequest(f"Invalid value {value!r} for type {self.cql_name}")
        return self._wrap([self.element.validate(v) for v in value])

    def _items(self, value: Any) -> list:
        """Distinct elements in Cassandra order (nulls are not allowed in sets)."""
        if any(v is None for v in value):
            raise InvalidRequest("null is not supported inside collections")
        keyed = {self.element.sort_bytes(v): v for v in value}
        return [keyed[k] for k in sorted(keyed)]

    def _wrap(self, items: list) -> Any:
        if all(_hashable(v) for v in items):
            return SortedSet(items, key=self.element.sort_bytes)
        return self._items(items)

    def deserialize(self, data: bytes) -> Any:
        return self._wrap([self.element.deserialize(b) for b in self._read(data, 1) if b is not None])

    def from_literal(self, lit: Any, column: str) -> Any:
        if isinstance(lit, CollectionLiteral) and lit.kind == "map" and not lit.items:
            return self._wrap([])
        if not self._check_kind(lit, column, ("set",)):
            return None
        return self._wrap([self._elem_literal(self.element, i, f"value({column})") for i in lit.items])


class MapType(_Collection):
    kind = "map"
    option_id = 0x0021

    def __init__(self, key: CqlType, value: CqlType, frozen: bool = False) -> None:
        super().__init__(frozen)
        self.key = key
        self.value = value

    @property
    def inner_name(self) -> str:
        return f"map<{self.key.cql_name}, {self.value.cql_name}>"

    @property
    def java_class(self) -> str:  # type: ignore[override]
        inner = f"{_MARSHAL}MapType({self.key.java_class},{self.value.java_class})"
        return f"{_MARSHAL}FrozenType({inner})" if self.frozen else inner

    def _pairs(self, value: Any) -> list[tuple[Any, Any]]:
        if not isinstance(value, dict):
            raise InvalidRequest(f"Invalid value {value!r} for type {self.cql_name}")
        keyed = {}
        for k, v in value.items():
            if k is None:
                raise InvalidRequest("null is not supported inside collections")
            keyed[self.key.sort_bytes(k)] = (self.key.validate(k), None if v is None else self.value.validate(v))
        return [keyed[k] for k in sorted(keyed)]

    def validate(self, value: Any) -> dict:
        return dict(self._pairs(value))

    def serialize(self, value: Any) -> bytes:
        pairs = self._pairs(value)
        body = b"".join(_write_bytes(self.key.serialize(k)) + _write_bytes(None if v is None
                                                                          else self.value.serialize(v))
                        for k, v in pairs)
        return struct.pack(">i", len(pairs)) + body

    def deserialize(self, data: bytes) -> dict:
        raw = ListType._read(self, data, 2)  # type: ignore[arg-type]
        out = {}
        for kb, vb in zip(raw[::2], raw[1::2], strict=False):
            if kb is None:
                raise InvalidRequest("null is not supported inside collections")
            out[self.key.deserialize(kb)] = None if vb is None else self.value.deserialize(vb)
        return out

    def sort_bytes(self, value: Any) -> bytes:
        return b"".join(escape(self.key.sort_bytes(k)) + escape(self.value.sort_bytes(v))
                        for k, v in self._pairs(value))

    def unsort_bytes(self, data: bytes) -> dict:
        out, pos = {}, 0
        while pos < len(data):
            kraw, pos = unescape_next(data, pos)
            vraw, pos = unescape_next(data, pos)
            out[self.key.unsort_bytes(kraw)] = self.value.unsort_bytes(vraw)
        return out

    def from_literal(self, lit: Any, column: str) -> Any:
        if not self._check_kind(lit, column, ("map",)):
            return None
        out: dict = {}
        for k_lit, v_lit in lit.items:
            k = self._elem_literal(self.key, k_lit, f"key({column})")
            v = self._elem_literal(self.value, v_lit, f"value({column})")
            if _hashable(k) and k in out:
                raise InvalidRequest(f"Invalid map literal for {column}: duplicate entry for key {k_lit.text}"
                                     if isinstance(k_lit, Literal) else
                                     f"Invalid map literal for {column}: duplicate entry for key")
            out[k] = v
        return self.validate(out)


class TupleType(CqlType):
    option_id = 0x0031

    def __init__(self, elements: list[CqlType]) -> None:
        self.elements = list(elements)

    @property
    def cql_name(self) -> str:  # type: ignore[override]
        return "frozen<tuple<" + ", ".join(t.cql_name for t in self.elements) + ">>"

    @property
    def java_class(self) -> str:  # type: ignore[override]
        return f"{_MARSHAL}TupleType(" + ",".join(t.java_class for t in self.elements) + ")"

    def validate(self, value: Any) -> tuple:
        if not isinstance(value, (tuple, list)) or len(value) > len(self.elements):
            raise InvalidRequest(f"Invalid value {value!r} for type {self.cql_name}")
        padded = list(value) + [None] * (len(self.elements) - len(value))
        return tuple(None if v is None else t.validate(v) for t, v in zip(self.elements, padded, strict=False))

    def serialize(self, value: Any) -> bytes:
        return b"".join(_write_bytes(None if v is None else t.serialize(v))
                        for t, v in zip(self.elements, self.validate(value), strict=False))

    def deserialize(self, data: bytes) -> tuple:
        data, pos = bytes(data), 0
        out: list = []
        for t in self.elements:
            if pos >= len(data):
                out.append(None)
                continue
            b, pos = _read_bytes(data, pos)
            out.append(None if b is None else t.deserialize(b))
        if pos != len(data):
            raise InvalidRequest("Unexpected extraneous bytes after tuple value")
        return tuple(out)

    def sort_bytes(self, value: Any) -> bytes:
        # A null component sorts before any value (marker 0x01 vs 0x02).
        return b"".join(escape(b"\x01" if v is None else b"\x02" + t.sort_bytes(v))
                        for t, v in zip(self.elements, self.validate(value), strict=False))

    def unsort_bytes(self, data: bytes) -> tuple:
        out, pos = [], 0
        for t in self.elements:
            raw, pos = unescape_next(data, pos)
            out.append(None if raw == b"\x01" else t.unsort_bytes(raw[1:]))
        return tuple(out)

    def from_literal(self, lit: Any, column: str) -> Any:
        if isinstance(lit, Literal):
            if lit.kind == "null":
                return None
            raise literal_error(lit, column, self)
        if lit.kind != "tuple":
            raise InvalidRequest(f'Invalid {lit.kind} literal for "{column}" of type {self.cql_name}')
        if len(lit.items) > len(self.elements):
            raise InvalidRequest(f"Invalid tuple literal for {column}: too many elements. Type "
                                 f"{self.cql_name} expects {len(self.elements)} but got {len(lit.items)}")
        return self.validate(tuple(t.from_literal(i, f"component({column}, {n})")
                                   for n, (t, i) in enumerate(zip(self.elements, lit.items, strict=False))))


def protocol_option(t: CqlType) -> tuple[int, Any]:
    """(option id, sub-options) as Rows metadata carries it: None for scalars, one option for list/set,
    (key option, value option) for map, a list of options for tuple."""
    if isinstance(t, MapType):
        return (t.option_id, (protocol_option(t.key), protocol_option(t.value)))
    if isinstance(t, ListType):
        return (t.option_id, protocol_option(t.element))
    if isinstance(t, TupleType):
        return (t.option_id, [protocol_option(e) for e in t.elements])
    return (t.option_id, None)


_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_.]*|\"[^\"]+\")|([<>,]))")


def parse_type(text: str) -> CqlType:
    """The type object for a CQL type string; SyntaxException for malformed text, InvalidRequest for unknown
    types or non-frozen collections nested in collections."""
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if not m:
            raise SyntaxException(f"line 1:{pos} no viable alternative at input '{text[pos:].strip()}'")
        tokens.append(m.group(1) or m.group(2))
        pos = m.end()
    t, i = _parse(tokens, 0, text, nested=False)
    if i != len(tokens):
        raise SyntaxException(f"line 1:0 extraneous input '{tokens[i]}' in type '{text}'")
    return t


def _expect(tokens: list[str], i: int, tok: str, text: str) -> int:
    if i >= len(tokens) or tokens[i] != tok:
        got = tokens[i] if i < len(tokens) else "<EOF>"
        raise SyntaxException(f"line 1:0 mismatched input '{got}' expecting '{tok}' in type '{text}'")
    return i + 1


def _args(tokens: list[str], i: int, text: str) -> tuple[list[CqlType], int]:
    i = _expect(tokens, i, "<", text)
    out = []
    while True:
        t, i = _parse(tokens, i, text, nested=True)
        out.append(t)
        if i < len(tokens) and tokens[i] == ",":
            i += 1
            continue
        return out, _expect(tokens, i, ">", text)


def _parse(tokens: list[str], i: int, text: str, nested: bool) -> tuple[CqlType, int]:
    if i >= len(tokens) or tokens[i] in "<>,":
        raise SyntaxException(f"line 1:0 no viable alternative at input '{text}'")
    name = tokens[i].lower()
    if name == "frozen":
        args, i = _args(tokens, i + 1, text)
        if len(args) != 1:
            raise SyntaxException(f"frozen<> takes exactly one type in '{text}'")
        inner = args[0]
        if isinstance(inner, _Collection):
            inner = _refreeze(inner)
        elif not isinstance(inner, TupleType):
            raise InvalidRequest(f"frozen<> is only allowed on collections, tuples, and user-defined types "
                                 f"(got {inner.cql_name})")
        return inner, i
    if name in ("list", "set", "map", "tuple"):
        args, i = _args(tokens, i + 1, text)
        want = {"list": 1, "set": 1, "map": 2}.get(name)
        if want is not None and len(args) != want:
            raise SyntaxException(f"{name} takes {want} type argument(s), got {len(args)} in '{text}'")
        for a in args:
            if isinstance(a, _Collection) and not a.frozen and name != "tuple":
                raise InvalidRequest("Non-frozen collections are not allowed inside collections: "
                                     f"{text.strip()}")
            if isinstance(a, _Collection) and not a.frozen:
                raise InvalidRequest(f"Non-frozen collections are not allowed inside tuples: {text.strip()}")
        if name == "counter" or any(getattr(a, "cql_name", "") == "counter" for a in args):
            raise InvalidRequest("Counters are not allowed inside collections")
        if name == "list":
            return ListType(args[0]), i
        if name == "set":
            return SetType(args[0]), i
        if name == "map":
            return MapType(args[0], args[1]), i
        return TupleType(args), i
    if name in SCALARS:
        return SCALARS[name], i + 1
    if name == "counter":
        raise InvalidRequest("counter type is not supported here")
    raise InvalidRequest(f"Unknown type {tokens[i]}")


def _refreeze(t: _Collection) -> _Collection:
    if isinstance(t, MapType):
        return MapType(t.key, t.value, frozen=True)
    if isinstance(t, SetType):
        return SetType(t.element, frozen=True)
    return ListType(t.element, frozen=True)  # type: ignore[attr-defined]
