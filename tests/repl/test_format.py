"""Values and tables as cqlsh shows them."""

import datetime
import decimal
import ipaddress
import uuid

import pytest
from sortedcontainers import SortedSet

from widecol.repl_format import expanded, format_rows, format_value, parse_type_name, table
from widecol.schema.types import Duration, parse_type


@pytest.mark.parametrize("value, type_text, expected", [
    (None, "int", "null"),
    ("héllo", "text", "héllo"),
    ("two\nlines", "text", "two\\nlines"),
    (b"\xca\xfe", "blob", "0xcafe"),
    (b"", "blob", "0x"),
    (True, "boolean", "True"),
    (42, "int", "42"),
    (-9000000000, "bigint", "-9000000000"),
    (datetime.datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=datetime.UTC), "timestamp",
     "2024-01-02 03:04:05.678000+0000"),
    (datetime.date(2024, 1, 2), "date", "2024-01-02"),
    (3_723_000_000_123, "time", "01:02:03.000000123"),
    (2.5, "double", "2.5"),
    (0.1, "double", "0.1"),
    (1.2345678, "float", "1.23457"),
    (float("nan"), "double", "NaN"),
    (float("-inf"), "float", "-Infinity"),
    (decimal.Decimal("1.50"), "decimal", "1.50"),
    (uuid.UUID("12345678-1234-5678-1234-567812345678"), "uuid", "12345678-1234-5678-1234-567812345678"),
    (ipaddress.ip_address("10.0.0.1"), "inet", "10.0.0.1"),
    (Duration(14, 3, 3_600_000_000_001), "duration", "1y2mo3d1h1ns"),
    (["a", "it's"], "list<text>", "['a', 'it''s']"),
    (SortedSet([3, 1]), "set<int>", "{1, 3}"),
    ({"x": [1, 2]}, "map<text, frozen<list<int>>>", "{'x': [1, 2]}"),
    ((1, "a", None), "tuple<int, text, int>", "(1, 'a', null)"),
    ({"ts": datetime.datetime(2024, 1, 2, tzinfo=datetime.UTC)}, "map<text, timestamp>",
     "{'ts': 2024-01-02 00:00:00.000000+0000}"),
])
def test_values_are_formatted_as_cqlsh_does(value, type_text, expected):
    assert format_value(value, type_text) == expected


def test_type_names_parse_with_frozen_unwrapped():
    tree = parse_type_name("map<text, frozen<list<int>>>")
    assert tree.name == "map"
    assert [p.name for p in tree.params] == ["text", "list"]
    assert tree.params[1].params[0].name == "int"


def test_rows_are_formatted_by_type_objects():
    columns = [("k", parse_type("int")), ("t", parse_type("time")), ("s", parse_type("set<text>"))]
    assert format_rows(columns, [(1, 5, ["b", "a"])]) == [["1", "00:00:00.000000005", "{'b', 'a'}"]]


def test_table_left_aligns_names_and_right_aligns_values():
    lines = table(["k", "name"], [["1", "alice"], ["22", "é"]])
    assert lines == [
        " k  | name",
        "----+-------",
        "  1 | alice",
        " 22 |     é",
    ]


def test_wide_characters_take_two_columns():
    lines = table(["v"], [["日本"], ["abc"]])
    assert lines == [" v", "------", " 日本", "  abc"]


def test_empty_result_keeps_the_header():
    assert table(["k", "v"], []) == [" k | v", "---+---"]


def test_expanded_rows_are_blocks():
    lines = expanded(["k", "value"], [["1", "a"], ["2", "bb"]], first_row=3)
    assert lines == [
        "@ Row 3", "-------+----", " k     | 1", " value | a", "",
        "@ Row 4", "-------+----", " k     | 2", " value | bb", "",
    ]
