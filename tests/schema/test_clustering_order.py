"""Clustering keys: encoded byte order equals Cassandra's value order, ASC and DESC; prefix bounds are tight."""

from __future__ import annotations

import datetime
import decimal
import math
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.errors import InvalidRequest
from widecol.schema.clustering import (
    decode_clustering,
    encode_clustering,
    encode_component,
    prefix_upper_bound,
)
from widecol.schema.types import parse_type


def java_float_key(v: float):
    """Float.compare / Double.compare: -0.0 < 0.0 and NaN above everything."""
    if math.isnan(v):
        return (True, 0.0, 1.0)  # Java canonicalises every NaN: they compare equal, sign ignored
    return (False, v, math.copysign(1.0, v))


def timeuuid_key(u: uuid.UUID):
    return (u.time, bytes(b ^ 0x80 for b in u.bytes[8:]))


def tuple_key(v):
    return tuple((0,) if x is None else (1, x) for x in v)


# name -> (strategy, python sort key)
ORDERED = {
    "int": (st.integers(-(2**31), 2**31 - 1), None),
    "bigint": (st.integers(-(2**63), 2**63 - 1), None),
    "smallint": (st.integers(-(2**15), 2**15 - 1), None),
    "tinyint": (st.integers(-128, 127), None),
    "varint": (st.integers(-(2**80), 2**80), None),
    "text": (st.text(max_size=6), lambda s: s.encode()),
    "ascii": (st.text(alphabet="\x00\x01ab\x7f", max_size=6), None),
    "blob": (st.binary(max_size=6), None),
    "boolean": (st.booleans(), None),
    "float": (st.floats(width=32), java_float_key),
    "double": (st.floats(), java_float_key),
    "decimal": (st.decimals(allow_nan=False, allow_infinity=False, places=None), None),
    "timestamp": (st.datetimes(timezones=st.just(datetime.UTC)).map(
        lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000)), None),
    "date": (st.dates(), None),
    "time": (st.integers(0, 86_400 * 10**9 - 1), None),
    "timeuuid": (st.uuids(version=1), timeuuid_key),
    "inet": (st.one_of(st.ip_addresses(v=4), st.ip_addresses(v=6)), lambda a: (a.version, a.packed)),
    "frozen<list<int>>": (st.lists(st.integers(-5, 5), max_size=4), None),
    "frozen<list<text>>": (st.lists(st.text(alphabet="\x00a", max_size=2), max_size=3),
                           lambda v: [s.encode() for s in v]),
    "tuple<int, text>": (st.tuples(st.one_of(st.none(), st.integers(-3, 3)), st.one_of(st.none(), st.text(
        alphabet="\x00ab", max_size=2))), tuple_key),
}


def cmp(a, b) -> int:
    return (a > b) - (a < b)


def value_cmp(name: str, a, b) -> int:
    key = ORDERED[name][1] or (lambda v: v)
    return cmp(key(a), key(b))


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_single_component_order(data) -> None:
    for name, (strategy, _) in ORDERED.items():
        t = parse_type(name)
        a, b = data.draw(strategy, label=name), data.draw(strategy, label=name)
        assert cmp(encode_component(t, a), encode_component(t, b)) == value_cmp(name, a, b), name
        for order in ("ASC", "DESC"):
            ka, kb = encode_clustering([t], [order], [a]), encode_clustering([t], [order], [b])
            expected = value_cmp(name, a, b) * (1 if order == "ASC" else -1)
            assert cmp(ka, kb) == expected, (name, order)
            (back,) = decode_clustering([t], [order], ka)
            assert value_cmp(name, back, a) == 0, (name, back, a)


names = st.sampled_from(sorted(ORDERED))
schema = st.lists(st.tuples(names, st.sampled_from(["ASC", "DESC"])), min_size=1, max_size=3)


def draw_key(data, cols):
    return [data.draw(ORDERED[n][0]) for n, _ in cols]


def expected_cmp(cols, a, b) -> int:
    for (n, order), x, y in zip(cols, a, b, strict=False):
        c = value_cmp(n, x, y)
        if c:
            return c if order == "ASC" else -c
    return cmp(len(a), len(b))


@settings(max_examples=300, deadline=None)
@given(schema, st.data())
def test_multi_component_order_and_prefix_bounds(cols, data) -> None:
    types = [parse_type(n) for n, _ in cols]
    orders = [o for _, o in cols]
    a, b = draw_key(data, cols), draw_key(data, cols)
    # Sometimes share leading components so later components decide.
    shared = data.draw(st.integers(0, len(cols)))
    b[:shared] = a[:shared]
    ka, kb = encode_clustering(types, orders, a), encode_clustering(types, orders, b)
    assert cmp(ka, kb) == expected_cmp(cols, a, b)
    decoded = decode_clustering(types, orders, ka)
    assert all(value_cmp(n, x, y) == 0 for (n, _), x, y in zip(cols, decoded, a, strict=False))

    # A prefix sorts before every key that extends it, and its bound after every such key.
    p = data.draw(st.integers(1, len(cols)))
    prefix = encode_clustering(types, orders, a[:p])
    bound = prefix_upper_bound(prefix)
    assert prefix <= ka < bound
    in_range = prefix <= kb < bound
    assert in_range == all(value_cmp(n, x, y) == 0 for (n, _), x, y in zip(cols[:p], a[:p], b[:p], strict=False))
    # Tight: every byte string in [prefix, bound) starts with the prefix, so nothing lies between the keys
    # extending the prefix and the bound except other extensions of it.
    probe = data.draw(st.one_of(st.binary(max_size=len(bound) + 4),
                                st.binary(max_size=4).map(lambda s: prefix[:-1] + s)))
    if prefix <= probe < bound:
        assert probe.startswith(prefix)


def test_float_and_uuid_orders() -> None:
    dbl = parse_type("double")
    seq = [-math.inf, -1.0, -0.0, 0.0, 1e-300, math.inf, math.nan]
    enc = [encode_component(dbl, v) for v in seq]
    assert enc == sorted(enc) and len(set(enc)) == len(enc)
    assert encode_component(dbl, float("nan")) == encode_component(dbl, -math.nan)
    u = parse_type("uuid")
    v1_late = uuid.UUID("00000000-0000-1000-8000-000000000000")
    v4 = uuid.UUID("00000000-0000-4000-8000-000000000000")
    assert encode_component(u, v1_late) < encode_component(u, v4)
    # Version 1 orders by timestamp, not by raw bytes: time_low is the least significant part.
    a = uuid.UUID(fields=(0xFFFFFFFF, 0x0000, 0x1000, 0x80, 0, 0))
    b = uuid.UUID(fields=(0x00000000, 0x0001, 0x1000, 0x80, 0, 0))
    assert a.bytes > b.bytes and encode_component(u, a) < encode_component(u, b)
    assert decode_clustering([u], ["ASC"], encode_clustering([u], ["ASC"], [a])) == (a,)


def test_decimal_numeric_equality_and_inet() -> None:
    d = parse_type("decimal")
    assert encode_component(d, decimal.Decimal("1.0")) == encode_component(d, decimal.Decimal("1.00"))
    assert encode_component(d, decimal.Decimal("-10")) < encode_component(d, decimal.Decimal("-9.99"))
    inet = parse_type("inet")
    import ipaddress
    assert encode_component(inet, ipaddress.ip_address("255.255.255.255")) < encode_component(
        inet, ipaddress.ip_address("::"))


def test_errors() -> None:
    t = parse_type("int")
    with pytest.raises(InvalidRequest):
        encode_clustering([t], ["ASC"], [None])
    with pytest.raises(InvalidRequest):
        encode_clustering([t], ["ASC"], [1, 2])
    with pytest.raises(InvalidRequest):
        encode_component(parse_type("duration"), None)
    with pytest.raises(InvalidRequest):
        prefix_upper_bound(b"\x80")
    assert prefix_upper_bound(b"") == b""
    with pytest.raises(InvalidRequest):
        decode_clustering([t], ["ASC"], encode_clustering([t], ["ASC"], [1]) + b"x")
