"""DESCRIBE output, built from system_schema rows."""

import pytest

from widecol.cql.describe import SchemaInfo, describe, quote
from widecol.errors import InvalidRequest

KEYSPACES = [
    {"keyspace_name": "shop", "durable_writes": True,
     "replication": {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"}},
    {"keyspace_name": "Other", "durable_writes": False, "replication": {"class": "SimpleStrategy",
                                                                        "replication_factor": "1"}},
]
TABLES = [
    {"keyspace_name": "shop", "table_name": "orders", "comment": "it's", "gc_grace_seconds": 10,
     "caching": {"rows_per_partition": "NONE", "keys": "ALL"}, "id": "x", "flags": {"compound"}},
    {"keyspace_name": "shop", "table_name": "users", "comment": "", "default_time_to_live": 0},
]


def col(table, name, type_, kind="regular", position=-1, order="none"):
    return {"keyspace_name": "shop", "table_name": table, "column_name": name, "type": type_, "kind": kind,
            "position": position, "clustering_order": order}


COLUMNS = [
    col("orders", "total", "decimal"),
    col("orders", "day", "date", "partition_key", 1),
    col("orders", "shop", "text", "partition_key", 0),
    col("orders", "at", "timestamp", "clustering", 0, "desc"),
    col("orders", "id", "uuid", "clustering", 1, "asc"),
    col("orders", "Note", "text", "static"),
    col("orders", "items", "map<text, int>"),
    col("users", "name", "text"),
    col("users", "id", "int", "partition_key", 0),
]
INFO = SchemaInfo.from_rows(KEYSPACES, TABLES, COLUMNS)


def test_table_with_composite_partition_key_and_clustering_order():
    assert describe(INFO, "TABLE shop.orders", None) == (
        "CREATE TABLE shop.orders (\n"
        "    shop text,\n"
        "    day date,\n"
        "    at timestamp,\n"
        "    id uuid,\n"
        '    "Note" text static,\n'
        "    items map<text, int>,\n"
        "    total decimal,\n"
        "    PRIMARY KEY ((shop, day), at, id)\n"
        ") WITH CLUSTERING ORDER BY (at DESC, id ASC)\n"
        "    AND caching = {'keys': 'ALL', 'rows_per_partition': 'NONE'}\n"
        "    AND comment = 'it''s'\n"
        "    AND gc_grace_seconds = 10;"
    )


def test_single_column_key_is_written_inline():
    assert describe(INFO, "table users", "shop") == (
        "CREATE TABLE shop.users (\n"
        "    id int PRIMARY KEY,\n"
        "    name text\n"
        ") WITH comment = ''\n"
        "    AND default_time_to_live = 0;"
    )


def test_keyspace_then_its_tables():
    text = describe(INFO, "KEYSPACE shop", None)
    assert text.startswith(
        "CREATE KEYSPACE shop WITH replication = {'class': 'org.apache.cassandra.locator.SimpleStrategy', "
        "'replication_factor': '3'} AND durable_writes = true;\n\nCREATE TABLE shop.orders (")
    assert "CREATE TABLE shop.users" in text


def test_names_are_quoted_when_needed():
    assert quote("users") == "users"
    assert quote("Other") == '"Other"'
    assert quote("select") == '"select"'
    assert quote('a"b') == '"a""b"'
    assert describe(INFO, 'keyspace "Other"', None).startswith('CREATE KEYSPACE "Other" WITH')
    assert "durable_writes = false" in describe(INFO, 'keyspace "Other"', None)


def test_lists_and_bare_names():
    assert describe(INFO, "KEYSPACES", None) == '"Other"  shop'
    assert describe(INFO, "tables", "shop") == "orders  users"
    assert describe(INFO, "tables", None) == 'Keyspace Other\n--------------\n<empty>\n\nKeyspace shop\n' \
        "-------------\norders  users"
    assert describe(INFO, "shop", None) == describe(INFO, "keyspace shop", None)
    assert describe(INFO, "orders;", "shop") == describe(INFO, "table shop.orders", None)
    assert describe(INFO, "SCHEMA", None).count("CREATE KEYSPACE") == 2


@pytest.mark.parametrize("args, current", [
    ("TABLE shop.nope", None), ("KEYSPACE nope", None), ("TABLE users", None), ("nope", "shop"), ("", None),
])
def test_unknown_names_are_invalid_requests(args, current):
    with pytest.raises(InvalidRequest):
        describe(INFO, args, current)
