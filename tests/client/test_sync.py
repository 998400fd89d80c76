"""The synchronous facade from plain (non-trio) test functions, with the real cassandra-driver reading the same
rows: every CQL type, and 10,000 rows paged by both clients."""

import datetime
import decimal
import ipaddress
import threading
import uuid

import pytest
from cassandra.cluster import Cluster
from cassandra.concurrent import execute_concurrent_with_args
from cassandra.query import SimpleStatement

import widecol.client
from widecol import errors
from widecol.schema.temporal import Duration

COLUMNS = {
    "a": "ascii", "t": "text", "vc": "varchar", "bl": "blob", "i": "int", "bi": "bigint", "si": "smallint",
    "ti": "tinyint", "vi": "varint", "f": "float", "d": "double", "dec": "decimal", "b": "boolean",
    "u": "uuid", "tu": "timeuuid", "ip": "inet", "ts": "timestamp", "dt": "date", "tm": "time",
    "du": "duration", "l": "list<int>", "s": "set<text>", "m": "map<text, int>", "tp": "tuple<int, text>",
    "fl": "frozen<list<double>>", "nest": "map<text, frozen<list<int>>>", "ms": "map<int, frozen<set<text>>>",
}

VALUES = [
    {"a": "plain", "t": "héllo wörld ✓", "vc": "", "bl": b"\x00\xff\x10", "i": -2**31, "bi": 2**63 - 1,
     "si": -32768, "ti": 127, "vi": -(10**40), "f": 1.5, "d": -2.25e300, "dec": decimal.Decimal("-123.4567e-8"),
     "b": True, "u": uuid.UUID("12345678-1234-5678-1234-567812345678"),
     "tu": uuid.UUID("e89aa08a-e721-11f1-83ef-02fc00000001"), "ip": ipaddress.ip_address("2001:db8::1"),
     "ts": datetime.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=datetime.UTC),
     "dt": datetime.date(1969, 12, 31), "tm": 86_399_999_999_999, "du": Duration(1, 2, 3_000_000_000),
     "l": [3, 1, 2, 1], "s": {"b", "a"}, "m": {"x": 1, "y": -1}, "tp": (7, "seven"),
     "fl": [0.5, -0.0], "nest": {"n": [1, 2]}, "ms": {1: {"p", "q"}}},
    {"a": "", "t": "", "vc": "v", "bl": b"", "i": 0, "bi": 0, "si": 0, "ti": -128, "vi": 0, "f": 0.0, "d": 0.0,
     "dec": decimal.Decimal(0), "b": False, "u": uuid.UUID(int=0), "tu": uuid.UUID("00000000-0000-1000-8000-000000000000"),
     "ip": ipaddress.ip_address("10.0.0.1"), "ts": datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC),
     "dt": datetime.date(2100, 2, 28), "tm": 0, "du": Duration(-1, 0, -5), "l": [], "s": set(), "m": {},
     "tp": (None, "only text"), "fl": [], "nest": {}, "ms": {}},
]


def plain(column, v):
    """A value from either client in one comparable form."""
    if v is None:
        return None
    kind = COLUMNS[column]
    if kind.startswith(("list", "set", "map")) and not v:
        return None  # an empty collection that is not frozen is no value at all, as in Cassandra
    if kind == "date":
        return v if isinstance(v, datetime.date) else v.date()
    if kind == "time":
        return v if isinstance(v, int) else v.nanosecond_time
    if kind == "timestamp":
        return v.replace(tzinfo=None)
    if kind == "inet":
        return str(v)
    if kind == "duration":
        return (v.months, v.days, v.nanoseconds)
    if kind.startswith("set"):
        return set(v)
    if kind.startswith("map"):
        return {k: (set(x) if isinstance(x, (set, frozenset)) or type(x).__name__ == "SortedSet" else
                    list(x) if isinstance(x, (list, tuple)) else x) for k, x in dict(v).items()}
    if kind.startswith(("list", "frozen<list")):
        return list(v)
    return v


@pytest.fixture(scope="module")
def driver(module_server):
    cluster = Cluster(["127.0.0.1"], port=module_server.port)
    session = cluster.connect()
    yield session
    cluster.shutdown()


@pytest.fixture(scope="module")
def client(module_server):
    c = widecol.client.connect(f"127.0.0.1:{module_server.port}")
    c.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    yield c
    c.close()


def test_every_type_round_trips_and_reads_as_the_driver_reads_it(client, driver):
    names = list(COLUMNS)
    client.execute("CREATE TABLE ks.types (k int PRIMARY KEY, " +
                   ", ".join(f"{n} {t}" for n, t in COLUMNS.items()) + ")")
    insert = client.prepare(f"INSERT INTO ks.types (k, {', '.join(names)}) VALUES (?, {', '.join('?' * len(names))})")
    for k, row in enumerate(VALUES):
        client.execute(insert, [k] + [row[n] for n in names])
    client.execute("INSERT INTO ks.types (k) VALUES (99)")  # every column null
    ours = {r["k"]: r for r in client.execute("SELECT * FROM ks.types", page_size=None).as_dicts()}
    theirs = {r.k: r._asdict() for r in driver.execute("SELECT * FROM ks.types")}
    assert sorted(ours) == sorted(theirs) == [0, 1, 99]
    result = client.execute("SELECT * FROM ks.types WHERE k = 0")
    assert dict((n, t.cql_name) for n, t in result.columns)["nest"] == "map<text, frozen<list<int>>>"
    for k, row in enumerate(VALUES):
        for n in names:
            assert plain(n, ours[k][n]) == plain(n, row[n]), (k, n)
            assert plain(n, theirs[k][n]) == plain(n, row[n]), (k, n)
    assert all(ours[99][n] is None for n in names)
    # and a row the driver wrote reads the same through our client
    driver.execute("INSERT INTO ks.types (k, t, s, m, ts) VALUES (5, 'from driver', {'z'}, {'q': 9}, "
                   "'2020-02-29 12:00:00+0000')")
    row = client.execute("SELECT t, s, m, ts FROM ks.types WHERE k = ?", [5]).as_dicts()[0]
    assert row == {"t": "from driver", "s": {"z"}, "m": {"q": 9},
                   "ts": datetime.datetime(2020, 2, 29, 12, tzinfo=datetime.UTC)}


def test_ten_thousand_rows_paged_by_both_clients_in_the_same_order(client, driver):
    client.execute("CREATE TABLE ks.pages (k int, c int, v text, PRIMARY KEY (k, c))")
    insert = driver.prepare("INSERT INTO ks.pages (k, c, v) VALUES (?, ?, ?)")
    # at most 128 in flight: 10,000 at once can outlast the driver's request timeout on a busy machine
    results = execute_concurrent_with_args(driver, insert, [(i % 13, i, f"v{i}") for i in range(10_000)],
                                           concurrency=128, raise_on_first_error=True)
    assert all(ok for ok, _ in results)
    ours = list(client.iterate("SELECT k, c, v FROM ks.pages", page_size=1000))
    theirs = [tuple(r) for r in driver.execute(SimpleStatement("SELECT k, c, v FROM ks.pages", fetch_size=1000))]
    assert len(ours) == 10_000 and len(set(ours)) == 10_000
    assert ours == theirs
    assert sorted(c for _, c, _ in ours) == list(range(10_000))
    # within a partition, in clustering order
    assert [c for k, c, _ in ours if k == 4] == list(range(4, 10_000, 13))


def test_sync_facade_in_a_plain_function(module_server):
    threads = threading.active_count()
    with widecol.client.connect([f"127.0.0.1:{module_server.port}"]) as c:
        assert threading.active_count() == threads + 1
        c.execute("CREATE KEYSPACE IF NOT EXISTS ks WITH replication = "
                  "{'class': 'SimpleStrategy', 'replication_factor': 1}")
        c.execute("CREATE TABLE ks.kv (k text PRIMARY KEY, v int)")
        assert c.keyspace is None
        assert c.execute("USE ks").keyspace == "ks" and c.keyspace == "ks"
        c.put("ks", "kv", {"k": "a", "v": 1})
        c.execute("INSERT INTO kv (k, v) VALUES (?, ?)", {"k": "b", "v": 2})
        assert c.get("ks", "kv", {"k": "a"}) == {"k": "a", "v": 1}
        assert c.get_partition("ks", "kv", {"k": "b"}) == [{"k": "b", "v": 2}]
        assert sorted(c.iterate("SELECT k, v FROM kv", page_size=1)) == [("a", 1), ("b", 2)]
        with pytest.raises(errors.InvalidRequest):
            c.execute("SELECT * FROM nope")
        assert c.execute("SELECT v FROM kv WHERE k = 'a'").one() == (1,)  # still usable after an error
    assert threading.active_count() == threads  # the loop thread has ended
    with pytest.raises(ConnectionError):
        c.execute("SELECT * FROM kv")
    c.close()  # twice is fine


def test_sync_connect_failure_names_the_host_and_leaves_no_thread():
    threads = threading.active_count()
    with pytest.raises(widecol.client.NoHostAvailable, match="127.0.0.1:1"):
        widecol.client.connect("127.0.0.1:1")
    assert threading.active_count() == threads


def test_sync_reconnects_after_the_server_restarts(server_thread):
    from tests.client.conftest import ServerThread

    c = widecol.client.connect(f"127.0.0.1:{server_thread.port}", timeout=5)
    try:
        c.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
        c.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
        c.put("ks", "t", {"k": 1, "v": "durable"})
        server_thread.stop()
        with pytest.raises(ConnectionError):
            c.get("ks", "t", {"k": 1})
        again = ServerThread(server_thread.data_dir, server_thread.port).start()
        try:
            assert c.get("ks", "t", {"k": 1}) == {"k": 1, "v": "durable"}
        finally:
            again.stop()
    finally:
        c.close()
