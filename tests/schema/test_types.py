"""CQL types: byte forms against the cassandra-driver's serializers, round trips, type strings, literals."""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import math
import uuid

import pytest
from cassandra import util as cutil
from cassandra.cqltypes import lookup_casstype
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.errors import InvalidRequest, SyntaxException
from widecol.schema.literals import CollectionLiteral, Literal
from widecol.schema.temporal import Duration, decode_vint, encode_vint
from widecol.schema.types import parse_type, protocol_option

UTC = datetime.UTC

SCALAR_VALUES = {
    "ascii": st.text(alphabet=st.characters(max_codepoint=127)),
    "text": st.text(),
    "blob": st.binary(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "bigint": st.integers(-(2**63), 2**63 - 1),
    "smallint": st.integers(-(2**15), 2**15 - 1),
    "tinyint": st.integers(-128, 127),
    "varint": st.integers(-(2**200), 2**200),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    "decimal": st.decimals(allow_nan=False, allow_infinity=False),
    "boolean": st.booleans(),
    "uuid": st.uuids(),
    "timeuuid": st.uuids(version=1),
    "timestamp": st.integers(-(2**40), 2**40).map(
        lambda ms: datetime.datetime(1970, 1, 1, tzinfo=UTC) + datetime.timedelta(milliseconds=ms)),
    "date": st.dates(),
    "time": st.integers(0, 86_400 * 10**9 - 1),
    "inet": st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)),
    "duration": st.tuples(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1), st.integers(0, 2**63 - 1),
                          st.booleans()).map(lambda t: Duration(*(-x if t[3] else x for x in t[:3]))),
}


def oracle_value(type_name: str, value):
    """The same value in the form cassandra-driver's serializers take."""
    if type_name == "duration":
        return cutil.Duration(value.months, value.days, value.nanoseconds)
    if type_name == "inet":
        return str(value)
    return value


def oracle_bytes(type_string: str, value) -> bytes:
    return lookup_casstype(parse_type(type_string).java_class).serialize(value, 4)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_scalars_match_driver_and_round_trip(data) -> None:
    for name, strategy in SCALAR_VALUES.items():
        value = data.draw(strategy, label=name)
        t = parse_type(name)
        raw = t.serialize(value)
        assert raw == oracle_bytes(name, oracle_value(name, value)), name
        back = t.deserialize(raw)
        if name == "decimal":
            assert back == value and back.as_tuple().exponent == value.as_tuple().exponent
        elif name == "float":
            assert back == value or (math.isnan(back) and math.isnan(value))
        else:
            assert back == value, name


nested = st.recursive(
    st.sampled_from(["int", "text", "blob", "uuid", "double", "boolean"]),
    lambda inner: st.one_of(
        inner.map(lambda t: f"frozen<list<{t}>>"),
        st.sampled_from(["int", "text", "bigint"]).map(lambda t: f"frozen<set<{t}>>"),
        st.tuples(st.sampled_from(["int", "text"]), inner).map(lambda kv: f"frozen<map<{kv[0]}, {kv[1]}>>"),
        st.lists(inner, min_size=1, max_size=3).map(lambda ts: "tuple<" + ", ".join(ts) + ">"),
    ),
    max_leaves=6,
)


def value_for(t, draw):
    from widecol.schema.collections import ListType, MapType, SetType, TupleType
    if isinstance(t, SetType):
        return set(draw(st.lists(SCALAR_VALUES[t.element.cql_name], max_size=4)))
    if isinstance(t, ListType):
        return [value_for(t.element, draw) for _ in range(draw(st.integers(0, 3)))]
    if isinstance(t, MapType):
        keys = draw(st.lists(SCALAR_VALUES[t.key.cql_name], max_size=3, unique=True))
        return {k: value_for(t.value, draw) for k in keys}
    if isinstance(t, TupleType):
        return tuple(draw(st.one_of(st.none(), st.just(1))) and value_for(e, draw) for e in t.elements)
    return draw(SCALAR_VALUES[t.cql_name])


def normal(v):
    if isinstance(v, (set, frozenset)) or type(v).__name__ == "SortedSet":
        return sorted(v, key=repr)
    if isinstance(v, dict):
        return sorted((repr(k), normal(x)) for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return [normal(x) for x in v]
    return v


@settings(max_examples=150, deadline=None)
@given(nested, st.data())
def test_nested_collections_round_trip_and_match_driver(type_string, data) -> None:
    t = parse_type(type_string)
    assert parse_type(t.cql_name) == t
    value = value_for(t, data.draw)
    raw = t.serialize(value)
    assert normal(t.deserialize(raw)) == normal(value)
    if "set" not in type_string and "map" not in type_string:
        assert raw == oracle_bytes(type_string, value)


def test_known_vectors() -> None:
    assert parse_type("varint").serialize(128) == b"\x00\x80"
    assert parse_type("varint").serialize(-129) == b"\xff\x7f"
    assert parse_type("varint").serialize(0) == b"\x00"
    assert parse_type("decimal").serialize(decimal.Decimal("1.50")) == b"\x00\x00\x00\x02\x00\x96"
    assert parse_type("date").serialize(datetime.date(1970, 1, 1)) == b"\x80\x00\x00\x00"
    assert parse_type("date").serialize(-1) == b"\x7f\xff\xff\xff"
    assert parse_type("duration").serialize(Duration(1, 2, 3)) == b"\x02\x04\x06"
    assert parse_type("duration").serialize(Duration(-1, -1, -1)) == b"\x01\x01\x01"
    assert parse_type("time").serialize(datetime.time(0, 0, 1)) == (10**9).to_bytes(8, "big")
    lst = parse_type("list<int>")
    assert lst.serialize([1, None]) == bytes.fromhex("00000002" "00000004" "00000001" "ffffffff")
    assert lst.deserialize(lst.serialize([1, None])) == [1, None]
    assert parse_type("map<int, text>").serialize({2: "b", 1: "a"}) == oracle_bytes(
        "map<int, text>", {1: "a", 2: "b"})
    assert parse_type("tuple<int, text>").deserialize(b"\x00\x00\x00\x04\x00\x00\x00\x07") == (7, None)


@given(st.integers(-(2**63), 2**63 - 1))
def test_vint_round_trip(n: int) -> None:
    raw = encode_vint(n)
    assert decode_vint(raw, 0) == (n, len(raw))


def test_protocol_options_and_java_class() -> None:
    assert protocol_option(parse_type("int")) == (0x0009, None)
    assert protocol_option(parse_type("map<text, frozen<set<uuid>>>")) == (0x21, ((0x0D, None), (0x22, (0x0C, None))))
    assert protocol_option(parse_type("tuple<int, ascii>")) == (0x31, [(9, None), (1, None)])
    assert parse_type("varchar").java_class == "org.apache.cassandra.db.marshal.UTF8Type"
    assert parse_type("FROZEN< list < int > >").cql_name == "frozen<list<int>>"


@pytest.mark.parametrize(("text", "exc", "message"), [
    ("ks.foo", InvalidRequest, "Unknown type ks.foo"),
    ("list<list<int>>", InvalidRequest, "Non-frozen collections are not allowed inside collections"),
    ("map<int>", SyntaxException, "map takes 2"),
    ("list<int", SyntaxException, "expecting '>'"),
    ("frozen<int>", InvalidRequest, "frozen<> is only allowed"),
    ("int int", SyntaxException, "extraneous input"),
])
def test_bad_type_strings(text: str, exc: type, message: str) -> None:
    with pytest.raises(exc, match=message.replace("<", ".").replace(">", ".")):
        parse_type(text)


def lit(kind: str, text: str) -> Literal:
    return Literal(kind, text)


@pytest.mark.parametrize(("type_string", "literal", "expected"), [
    ("int", lit("integer", "-42"), -42),
    ("text", lit("string", "it's"), "it's"),
    ("blob", lit("blob", "0xCAfe"), b"\xca\xfe"),
    ("double", lit("nan", "NaN"), "nan"),
    ("float", lit("infinity", "-Infinity"), -math.inf),
    ("decimal", lit("float", "1.50"), decimal.Decimal("1.50")),
    ("boolean", lit("boolean", "TRUE"), True),
    ("uuid", lit("uuid", "6ab09bec-e68e-48d9-a5f8-97e6fb4c9b47"), uuid.UUID("6ab09bec-e68e-48d9-a5f8-97e6fb4c9b47")),
    ("timestamp", lit("string", "2011-02-03 04:05+0000"), datetime.datetime(2011, 2, 3, 4, 5, tzinfo=UTC)),
    ("timestamp", lit("integer", "1000"), 1000),
    ("date", lit("string", "2011-02-03"), datetime.date(2011, 2, 3)),
    ("date", lit("integer", str(2**31)), datetime.date(1970, 1, 1)),
    ("time", lit("string", "08:12:54.123456789"), ((8 * 60 + 12) * 60 + 54) * 10**9 + 123456789),
    ("inet", lit("string", "::1"), ipaddress.ip_address("::1")),
    ("duration", lit("duration", "1h30m"), Duration(0, 0, 5400 * 10**9)),
    ("duration", lit("duration", "-2mo3d"), Duration(-2, -3, 0)),
    ("duration", lit("duration", "P1Y2M3DT4H5M6S"), Duration(14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9)),
    ("duration", lit("duration", "P2W"), Duration(0, 14, 0)),
    ("duration", lit("duration", "P0001-02-03T04:05:06"), Duration(14, 3, (4 * 3600 + 5 * 60 + 6) * 10**9)),
    ("int", lit("null", "null"), None),
    ("list<int>", CollectionLiteral("list", [lit("integer", "2"), lit("integer", "1")]), [2, 1]),
    ("set<int>", CollectionLiteral("set", [lit("integer", "2"), lit("integer", "1")]), [1, 2]),
    ("set<int>", CollectionLiteral("map", []), []),
    ("map<text, frozen<list<int>>>",
     CollectionLiteral("map", [(lit("string", "b"), CollectionLiteral("list", [lit("integer", "1")])),
                               (lit("string", "a"), CollectionLiteral("list", []))]),
     {"a": [], "b": [1]}),
    ("tuple<int, text>", CollectionLiteral("tuple", [lit("integer", "1")]), (1, None)),
])
def test_literals(type_string: str, literal, expected) -> None:
    got = parse_type(type_string).from_literal(literal, "c")
    if expected == "nan":
        assert math.isnan(got)
    elif type_string.startswith("set"):
        assert list(got) == expected
    else:
        assert got == expected
        if type_string.startswith("map"):
            assert list(got) == list(expected)


@pytest.mark.parametrize(("type_string", "literal", "message"), [
    ("int", lit("string", "abc"), 'Invalid STRING constant (abc) for "age" of type int'),
    ("uuid", lit("string", "foo"), 'Invalid STRING constant (foo) for "age" of type uuid'),
    ("text", lit("integer", "12"), 'Invalid INTEGER constant (12) for "age" of type text'),
    ("int", lit("float", "1.5"), 'Invalid FLOAT constant (1.5) for "age" of type int'),
    ("blob", lit("string", "x"), 'Invalid STRING constant (x) for "age" of type blob'),
    ("boolean", lit("integer", "1"), 'Invalid INTEGER constant (1) for "age" of type boolean'),
    ("int", lit("integer", "99999999999"), "Unable to make int from '99999999999'"),
    ("tinyint", lit("integer", "128"), "Unable to make tinyint from '128'"),
    ("timeuuid", lit("uuid", "6ab09bec-e68e-48d9-a5f8-97e6fb4c9b47"), "Unsupported UUID version"),
    ("duration", lit("duration", "1x"), "Unable to convert '1x' to a duration"),
    ("time", lit("string", "25:00:00"), "Unable to coerce '25:00:00' to a formatted time"),
    ("int", CollectionLiteral("list", []), 'Invalid list literal for "age" of type int'),
    ("list<int>", CollectionLiteral("set", []), 'Invalid set literal for "age" of type list<int>'),
    ("list<int>", CollectionLiteral("list", [lit("string", "a")]),
     'Invalid STRING constant (a) for "value(age)" of type int'),
    ("list<int>", CollectionLiteral("list", [lit("null", "null")]), "null is not supported inside collections"),
    ("tuple<int>", CollectionLiteral("tuple", [lit("integer", "1"), lit("integer", "2")]), "too many elements"),
])
def test_literal_errors(type_string: str, literal, message: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        parse_type(type_string).from_literal(literal, "age")
    assert message in str(info.value)


def test_validation_errors() -> None:
    with pytest.raises(InvalidRequest):
        parse_type("int").serialize(2**31)
    with pytest.raises(InvalidRequest):
        parse_type("ascii").serialize("é")
    with pytest.raises(InvalidRequest):
        parse_type("duration").serialize(Duration(1, -1, 0))
    with pytest.raises(InvalidRequest):
        parse_type("int").deserialize(b"\x00")
    with pytest.raises(InvalidRequest):
        parse_type("list<int>").deserialize(b"\x00\x00\x00\x01\x00\x00")
    with pytest.raises(ValueError):
        Literal("bogus", "x")
