"""CAST in SELECT (numbers with Java's narrowing, anything to text, time types) and CREATE TABLE checks."""

import datetime
import decimal

import pytest

from widecol.cql.executor import Executor
from widecol.errors import InvalidRequest


@pytest.fixture
def ex(open_engine):
    ex = Executor(open_engine())
    ex.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    ex.execute("CREATE TABLE ks.t (k int PRIMARY KEY, d double, b bigint, at timestamp, ok boolean, raw blob)")
    ex.execute("INSERT INTO ks.t (k, d, b, at, ok, raw) VALUES (1, 3.99, 4294967297, '2024-03-04 05:06:07+0000', "
               "true, 0xcafe)")
    return ex


def one(ex, selector):
    result = ex.execute(f"SELECT {selector} FROM ks.t WHERE k = 1")
    return result.columns[0], result.rows[0][0]


def test_numbers_cast_to_numbers_as_java_does(ex):
    assert one(ex, "CAST(d AS int)")[1] == 3
    assert one(ex, "CAST(b AS int)")[1] == 1  # 2^32 + 1 wraps
    assert one(ex, "CAST(k AS double)")[1] == 1.0
    assert one(ex, "CAST(d AS decimal)")[1] == decimal.Decimal("3.99")
    name, _ = one(ex, "CAST(d AS int)")
    assert name[0] == "cast(d as int)" and name[1].cql_name == "int"


def test_everything_casts_to_text(ex):
    assert one(ex, "CAST(k AS text)")[1] == "1"
    assert one(ex, "CAST(ok AS text)")[1] == "true"
    assert one(ex, "CAST(raw AS text)")[1] == "0xcafe"
    assert one(ex, "CAST(at AS text)")[1] == "2024-03-04T05:06:07.000Z"


def test_timestamp_casts_to_date(ex):
    assert one(ex, "CAST(at AS date)")[1] == datetime.date(2024, 3, 4)


def test_unsupported_cast_is_invalid(ex):
    with pytest.raises(InvalidRequest, match="boolean cannot be cast to int"):
        ex.execute("SELECT CAST(ok AS int) FROM ks.t WHERE k = 1")


def test_two_primary_key_definitions_are_refused(ex):
    with pytest.raises(InvalidRequest, match="Multiple PRIMARY KEYs specified"):
        ex.execute("CREATE TABLE ks.u (a int PRIMARY KEY, b int, PRIMARY KEY (a))")
