"""The real cassandra-driver against a real `widecol serve` process, over loopback."""

import datetime
import socket
import time
import uuid

import pytest
from cassandra import InvalidRequest
from cassandra.cluster import Cluster
from cassandra.protocol import SyntaxException
from cassandra.query import SimpleStatement

from widecol.testing import single_node


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with single_node(tmp_path_factory.mktemp("native"), "testcluster") as node:
        yield node


@pytest.fixture(scope="module")
def session(server):
    _proc, port, _tmp = server
    cluster = Cluster(["127.0.0.1"], port=port)
    s = cluster.connect()
    s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
    s.set_keyspace("ks")
    yield s
    cluster.shutdown()


def test_types_round_trip_through_literals_and_prepared_statements(session):
    session.execute(
        "CREATE TABLE types (k int PRIMARY KEY, b bigint, t text, f boolean, d double, u uuid, ts timestamp, "
        "bl blob, l list<int>, m map<text, int>, st set<text>)"
    )
    session.execute("INSERT INTO types (k, b, t, f, d) VALUES (1, 9000000000, 'héllo', true, 2.5)")
    row = session.execute("SELECT k, b, t, f, d, u FROM types WHERE k = 1").one()
    assert (row.k, row.b, row.t, row.f, row.d, row.u) == (1, 9000000000, "héllo", True, 2.5, None)

    u = uuid.uuid4()
    ts = datetime.datetime(2024, 5, 6, 7, 8, 9, 123000)
    insert = session.prepare("INSERT INTO types (k, b, t, u, ts, bl, l, m, st) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    session.execute(insert, (2, -5, "x", u, ts, b"\x00\xff", [3, 1, 2], {"a": 1, "b": 2}, {"p", "q"}))
    session.execute(insert, (3, None, None, None, None, None, None, None, None))
    select = session.prepare("SELECT * FROM types WHERE k = ?")
    row = session.execute(select, (2,)).one()
    assert (row.b, row.t, row.u, row.ts, row.bl) == (-5, "x", u, ts, b"\x00\xff")
    assert list(row.l) == [3, 1, 2] and dict(row.m) == {"a": 1, "b": 2} and set(row.st) == {"p", "q"}
    row = session.execute(select, (3,)).one()
    assert row.k == 3 and row.b is None and row.t is None and row.l is None
    # preparing the same text again gives the same id: ids are stable
    assert session.prepare("SELECT * FROM types WHERE k = ?").query_id == select.query_id


def test_paging_through_rows(session):
    session.execute("CREATE TABLE pages (k int, c int, v text, PRIMARY KEY (k, c))")
    insert = session.prepare("INSERT INTO pages (k, c, v) VALUES (?, ?, ?)")
    for i in range(350):
        session.execute(insert, (i % 3, i, f"v{i}"))
    result = session.execute(SimpleStatement("SELECT k, c FROM pages", fetch_size=40))
    assert len(result.current_rows) == 40 and result.has_more_pages
    rows = list(result)
    assert len(rows) == 350
    assert sorted(r.c for r in rows) == list(range(350))
    part = list(session.execute(SimpleStatement("SELECT c FROM pages WHERE k = 1", fetch_size=25)))
    assert [r.c for r in part] == list(range(1, 350, 3))


def test_errors_map_to_driver_exceptions(session):
    with pytest.raises(InvalidRequest):
        session.execute("SELECT * FROM no_such_table")
    with pytest.raises(SyntaxException):
        session.execute("SELEKT nothing")
    with pytest.raises(InvalidRequest):
        session.prepare("INSERT INTO no_such_table (a) VALUES (?)")


def test_unset_values_leave_columns_alone_and_are_refused_where_a_value_is_needed(session):
    from cassandra.query import UNSET_VALUE

    session.execute("CREATE TABLE unset (k int PRIMARY KEY, a text, b text)")
    insert = session.prepare("INSERT INTO unset (k, a, b) VALUES (?, ?, ?)")
    session.execute(insert, (1, "a1", "b1"))
    session.execute(insert, (1, "a2", UNSET_VALUE))  # b untouched
    update = session.prepare("UPDATE unset SET a = ?, b = ? WHERE k = ?")
    session.execute(update, (UNSET_VALUE, "b3", 1))  # a untouched
    assert tuple(session.execute("SELECT a, b FROM unset WHERE k = 1").one()) == ("a2", "b3")
    insert_ttl = session.prepare("INSERT INTO unset (k, a) VALUES (?, ?) USING TTL ?")
    session.execute(insert_ttl, (2, "x", UNSET_VALUE))  # an unset TTL is no TTL
    assert session.execute("SELECT ttl(a) FROM unset WHERE k = 2").one()[0] is None
    # (the driver itself refuses an unset partition key, so the server's refusal shows on a filter)
    with pytest.raises(InvalidRequest, match="unset value"):
        session.execute(session.prepare("SELECT a FROM unset WHERE a = ? ALLOW FILTERING"), (UNSET_VALUE,))


def test_batch_of_prepared_and_simple_statements(session):
    from cassandra.query import BatchStatement

    session.execute("CREATE TABLE batched (k int, c int, v int, PRIMARY KEY (k, c))")
    insert = session.prepare("INSERT INTO batched (k, c, v) VALUES (?, ?, ?)")
    batch = BatchStatement()
    batch.add(insert, (1, 1, 10))
    batch.add(insert, (1, 2, 20))
    batch.add(SimpleStatement("INSERT INTO batched (k, c, v) VALUES (1, 3, 30)"))
    session.execute(batch)
    assert [(r.c, r.v) for r in session.execute("SELECT c, v FROM batched WHERE k = 1")] == [
        (1, 10), (2, 20), (3, 30)]


def test_metadata_shows_keyspace_and_table(session):
    session.execute("CREATE TABLE meta (a int, b text, c int static, PRIMARY KEY ((a), b)) "
                    "WITH CLUSTERING ORDER BY (b DESC)")
    cluster = session.cluster
    cluster.refresh_schema_metadata()
    ks = cluster.metadata.keyspaces["ks"]
    assert ks.replication_strategy.replication_factor == 1
    table = ks.tables["meta"]
    assert [c.name for c in table.partition_key] == ["a"]
    assert [c.name for c in table.clustering_key] == ["b"]
    assert table.columns["b"].is_reversed and table.columns["c"].is_static
    assert cluster.metadata.cluster_name == "testcluster"
    assert len(cluster.metadata.token_map.ring) == 4


def test_garbage_client_loses_only_its_connection(server, session):
    _proc, port, _tmp = server
    with socket.create_connection(("127.0.0.1", port)) as raw:
        raw.sendall(b"\x00\x01garbage that is not a frame" * 10)
        raw.settimeout(5)
        try:
            while raw.recv(4096):
                pass
        except ConnectionResetError:
            pass
    assert session.execute("SELECT count(*) FROM pages").one()[0] == 350


def test_schema_change_events_reach_other_clients(server, session):
    _proc, port, _log = server
    other = Cluster(["127.0.0.1"], port=port, schema_event_refresh_window=0.1)
    try:
        other.connect()
        session.execute("CREATE TABLE pushed (k int PRIMARY KEY)")
        deadline = time.monotonic() + 10
        while "pushed" not in other.metadata.keyspaces["ks"].tables:
            assert time.monotonic() < deadline, "the SCHEMA_CHANGE event never refreshed the other client"
            time.sleep(0.05)
    finally:
        other.shutdown()


# -- in process, with our own sans-IO client ------------------------------------------------------------------


async def _open_server(tmp_path, max_connections=8):
    import trio

    from widecol.cql.executor import Executor
    from widecol.net.native.server import NativeServer
    from widecol.net.native.system_tables import SystemTables, load_identity
    from widecol.storage.engine import Engine, EngineOptions

    engine = Engine.open(tmp_path / "db", EngineOptions(background_compaction=False))
    executor = Executor(engine)
    host_id, tokens = load_identity(tmp_path, 4)
    system = SystemTables(executor, cluster_name="c", address="127.0.0.1", dc="dc1", rack="r1",
                          host_id=host_id, tokens=tokens)
    return engine, NativeServer(executor, system, max_connections=max_connections), trio


class _Raw:
    """A tiny client over ClientConnection for in-process tests."""

    def __init__(self, stream):
        from widecol.net.native.connection import ClientConnection

        self.stream, self.conn = stream, ClientConnection(4)

    async def send(self, message):
        stream, data = self.conn.send(message)
        await self.stream.send_all(data)
        return stream

    async def receive(self):
        while (event := self.conn.next_event()) is None:
            data = await self.stream.receive_some(65536)
            if not data:
                return None
            self.conn.receive_data(data)
        return event


async def test_requests_on_many_streams_and_the_connection_bound(tmp_path):
    from widecol.net.native.messages import Execute, Query, Startup
    from widecol.net.native.results import ErrorResponse, ResultResponse, RowsResult

    engine, server, trio = await _open_server(tmp_path, max_connections=1)
    try:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(server.serve, "127.0.0.1", 0)
            port = listeners[0].socket.getsockname()[1]
            client = _Raw(await trio.open_tcp_stream("127.0.0.1", port))
            await client.send(Startup({"CQL_VERSION": "3.4.5"}))
            assert type((await client.receive()).message).__name__ == "Ready"
            await client.send(Query("CREATE KEYSPACE k WITH replication = "
                                    "{'class': 'SimpleStrategy', 'replication_factor': 1}"))
            await client.receive()
            await client.send(Query("CREATE TABLE k.t (a int PRIMARY KEY, b int)"))
            await client.receive()
            streams = [await client.send(Query(f"INSERT INTO k.t (a, b) VALUES ({i}, {i * i})")) for i in range(20)]
            answers = [await client.receive() for _ in streams]
            assert sorted(a.stream for a in answers) == sorted(streams)
            assert all(isinstance(a.message, ResultResponse) for a in answers)
            await client.send(Query("SELECT a, b FROM k.t WHERE a = 7"))
            rows = (await client.receive()).message.result
            assert isinstance(rows, RowsResult) and rows.rows == [[b"\0\0\0\7", b"\0\0\0\x31"]]
            await client.send(Execute(b"\x01" * 16))
            error = (await client.receive()).message
            assert isinstance(error, ErrorResponse) and error.code == 0x2500

            # over the bound: the second connection is closed without an answer, the first goes on
            second = _Raw(await trio.open_tcp_stream("127.0.0.1", port))
            try:
                await second.send(Startup({"CQL_VERSION": "3.4.5"}))
                assert await second.receive() is None
            except trio.BrokenResourceError:
                pass
            await client.send(Query("SELECT a FROM k.t WHERE a = 3"))
            assert (await client.receive()).message.result.rows == [[b"\0\0\0\3"]]
            await client.stream.aclose()
            with trio.fail_after(5):
                while server.connections:
                    await trio.sleep(0.01)

            # USE is per connection: a new connection has no keyspace
            third = _Raw(await trio.open_tcp_stream("127.0.0.1", port))
            await third.send(Startup({"CQL_VERSION": "3.4.5"}))
            await third.receive()
            await third.send(Query("USE k"))
            assert (await third.receive()).message.result.keyspace == "k"
            await third.send(Query("SELECT a FROM t WHERE a = 3"))
            assert (await third.receive()).message.result.rows == [[b"\0\0\0\3"]]
            await third.stream.aclose()
            with trio.fail_after(5):
                while server.connections:
                    await trio.sleep(0.01)
            fourth = _Raw(await trio.open_tcp_stream("127.0.0.1", port))
            await fourth.send(Startup({"CQL_VERSION": "3.4.5"}))
            await fourth.receive()
            await fourth.send(Query("SELECT a FROM t WHERE a = 3"))
            assert "No keyspace has been specified" in (await fourth.receive()).message.message
            await fourth.stream.aclose()
            nursery.cancel_scope.cancel()
    finally:
        engine.close()


def test_identity_is_kept_in_the_data_dir(tmp_path):
    from widecol.net.native.system_tables import load_identity

    host_id, tokens = load_identity(tmp_path, 8)
    assert len(set(tokens)) == 8 and all(-(2**63) <= t < 2**63 for t in tokens)
    assert load_identity(tmp_path, 8) == (host_id, tokens)
