"""AsyncClient against a real NativeServer in the test's trio run: requests, parameters, errors, keyspaces,
paging, many streams in flight, and what happens when the server goes away and comes back."""

import socket

import pytest
import trio

from tests.client.conftest import serving
from widecol import errors
from widecol.client import AsyncClient, ConnectionLost, NoHostAvailable, PreparedStatement

KS = "CREATE KEYSPACE {} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}"


def dead_port():
    """A loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _schema(c):
    await c.execute(KS.format("ks"))
    await c.execute("CREATE TABLE ks.t (k int, c int, v text, PRIMARY KEY (k, c))")


async def test_execute_prepare_and_parameters(tmp_path):
    async with serving(tmp_path) as (port, _), await AsyncClient.connect([f"127.0.0.1:{port}"]) as c:
        r = await c.execute(KS.format("ks"))
        assert r.kind == "schema_change" and r.change == ("CREATED", "KEYSPACE", "ks", "")
        r = await c.execute("CREATE TABLE ks.t (k int, c int, v text, PRIMARY KEY (k, c))")
        assert r.change == ("CREATED", "TABLE", "ks", "t")
        assert (await c.execute("INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'literal')")).kind == "void"
        # parameters without a prepared statement: prepared behind the scenes, positional and named
        await c.execute("INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)", [1, 2, "positional"])
        await c.execute("INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)", {"v": "named", "c": 3, "k": 1})
        p = await c.prepare("INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)")
        assert isinstance(p, PreparedStatement) and [n for n, _ in p.bind_columns] == ["k", "c", "v"]
        assert p.pk_indexes == [0]
        await c.execute(p, (1, 4, None))
        await c.execute(p, {"k": 1, "c": 5, "v": "named prepared"})

        r = await c.execute("SELECT c, v FROM ks.t WHERE k = ?", [1])
        assert r.kind == "rows" and r.paging_state is None
        assert [(name, t.cql_name) for name, t in r.columns] == [("c", "int"), ("v", "text")]
        assert r.rows == [(1, "literal"), (2, "positional"), (3, "named"), (4, None), (5, "named prepared")]
        assert r.one() == (1, "literal")
        assert r.as_dicts()[2] == {"c": 3, "v": "named"}
        none = await c.execute("SELECT v FROM ks.t WHERE k = 2")
        assert none.rows == [] and none.one() is None

        # the wrong number of values, or a value the column type refuses, is refused before sending
        with pytest.raises(errors.InvalidRequest, match="3 markers"):
            await c.execute(p, [1, 2])
        with pytest.raises(errors.InvalidRequest):
            await c.execute(p, ["not an int", 2, "x"])
        with pytest.raises(errors.InvalidRequest, match="no bind marker named nope"):
            await c.execute(p, {"nope": 1})


async def test_errors_carry_their_type_and_fields(tmp_path):
    async with serving(tmp_path) as (port, _), await AsyncClient.connect(f"127.0.0.1:{port}") as c:
        await _schema(c)
        with pytest.raises(errors.SyntaxException):
            await c.execute("SELEKT * FROM ks.t")
        with pytest.raises(errors.InvalidRequest, match="no_such"):
            await c.execute("SELECT * FROM ks.no_such")
        with pytest.raises(errors.AlreadyExists) as info:
            await c.execute(KS.format("ks"))
        assert (info.value.keyspace, info.value.table) == ("ks", "")
        with pytest.raises(errors.AlreadyExists) as info:
            await c.execute("CREATE TABLE ks.t (k int PRIMARY KEY)")
        assert (info.value.keyspace, info.value.table) == ("ks", "t")
        with pytest.raises(errors.InvalidRequest):
            await c.prepare("INSERT INTO ks.no_such (a) VALUES (?)")
        with pytest.raises(ValueError, match="consistency"):
            await c.execute("SELECT * FROM ks.t", consistency="MOST")
        # the connection is still good after errors, and levels may be names or codes
        assert (await c.execute("SELECT * FROM ks.t", consistency=4)).rows == []
        assert (await c.execute("SELECT * FROM ks.t", consistency="local_quorum")).rows == []


async def test_use_sets_the_keyspace_and_survives_a_new_connection(tmp_path):
    async with serving(tmp_path) as (port, _):
        async with await AsyncClient.connect([f"127.0.0.1:{port}"]) as c:
            assert c.keyspace is None
            await _schema(c)
            r = await c.execute("USE ks")
            assert r.kind == "set_keyspace" and r.keyspace == "ks" and c.keyspace == "ks"
            await c.execute("INSERT INTO t (k, c, v) VALUES (?, ?, ?)", [7, 1, "in ks"])
            # a fresh connection (the old one dropped) is put in the keyspace before its first request
            await c._conns[c.hosts[0]].aclose()
            assert (await c.execute("SELECT v FROM t WHERE k = 7")).one() == ("in ks",)
        async with await AsyncClient.connect([f"127.0.0.1:{port}"], keyspace="ks") as c:
            assert c.keyspace == "ks"
            assert (await c.execute("SELECT v FROM t WHERE k = 7")).one() == ("in ks",)
        with pytest.raises(errors.InvalidRequest):
            await AsyncClient.connect([f"127.0.0.1:{port}"], keyspace="nope")


async def test_key_value_helpers(tmp_path):
    async with serving(tmp_path) as (port, _), await AsyncClient.connect(f"127.0.0.1:{port}") as c:
        await _schema(c)
        for i in range(25):
            await c.put("ks", "t", {"k": 1, "c": i, "v": f"v{i}"}, consistency="QUORUM")
        await c.put("ks", "t", {"k": 2, "c": 0, "v": "short-lived"}, ttl=3600)
        assert await c.get("ks", "t", {"k": 1, "c": 3}) == {"k": 1, "c": 3, "v": "v3"}
        assert await c.get("ks", "t", {"c": 99, "k": 1}) is None
        ttl = await c.execute("SELECT TTL(v) FROM ks.t WHERE k = 2 AND c = 0")
        assert 0 < ttl.one()[0] <= 3600
        rows = await c.get_partition("ks", "t", {"k": 1}, page_size=7)
        assert [r["c"] for r in rows] == list(range(25)) and rows[4]["v"] == "v4"
        assert await c.get_partition("ks", "t", {"k": 3}) == []
        with pytest.raises(errors.InvalidRequest, match="full primary key of ks.t: k, c"):
            await c.get("ks", "t", {"k": 1})
        with pytest.raises(errors.InvalidRequest, match="partition key"):
            await c.get_partition("ks", "t", {"k": 1, "c": 2})
        with pytest.raises(errors.InvalidRequest, match="unconfigured table"):
            await c.get("ks", "nope", {"k": 1})
        # a table dropped and made again with another key is seen by the helpers
        await c.execute("DROP TABLE ks.t")
        await c.execute("CREATE TABLE ks.t (id text PRIMARY KEY, v text)")
        await c.put("ks", "t", {"id": "a", "v": "new"})
        assert await c.get("ks", "t", {"id": "a"}) == {"id": "a", "v": "new"}


async def test_ten_thousand_rows_page_by_page_in_order(tmp_path):
    async with serving(tmp_path) as (port, _), await AsyncClient.connect(f"127.0.0.1:{port}") as c:
        await c.execute(KS.format("ks"))
        await c.execute("CREATE TABLE ks.big (k int, c int, v text, PRIMARY KEY (k, c))")
        insert = await c.prepare("INSERT INTO ks.big (k, c, v) VALUES (?, ?, ?)")

        async def writer(first):
            for i in range(first, 10_000, 20):
                await c.execute(insert, [i % 10, i, f"row {i}"])

        async with trio.open_nursery() as nursery:
            for first in range(20):
                nursery.start_soon(writer, first)
        everything = (await c.execute("SELECT k, c, v FROM ks.big", page_size=None)).rows
        assert len(everything) == 10_000 and len(set(everything)) == 10_000
        rows = [row async for row in c.iterate("SELECT k, c, v FROM ks.big", page_size=1000)]
        assert rows == everything
        first = await c.execute("SELECT k, c, v FROM ks.big", page_size=1000)
        assert len(first.rows) == 1000 and first.paging_state is not None
        second = await c.execute("SELECT k, c, v FROM ks.big", page_size=1000, paging_state=first.paging_state)
        assert first.rows + second.rows == everything[:2000]
        # iterate with a parameter goes through a prepared statement, page by page
        part = [row async for row in c.iterate("SELECT c FROM ks.big WHERE k = ?", [3], page_size=64)]
        assert part == [(c_,) for c_ in range(3, 10_000, 10)]


async def test_two_hundred_requests_in_flight_on_one_connection(tmp_path):
    async with serving(tmp_path) as (port, _), await AsyncClient.connect(f"127.0.0.1:{port}") as c:
        await _schema(c)
        conn = c._conns[c.hosts[0]]
        answers = {}
        peak = 0

        async def one(i):
            nonlocal peak
            await c.execute("INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)", [i, 0, f"value {i}"])
            peak = max(peak, conn.in_flight())
            answers[i] = (await c.execute("SELECT k, v FROM ks.t WHERE k = ? AND c = 0", [i])).one()

        async with trio.open_nursery() as nursery:
            for i in range(200):
                nursery.start_soon(one, i)
        assert answers == {i: (i, f"value {i}") for i in range(200)}
        assert peak > 50, "the requests were not in flight together"
        assert list(c._conns) == [c.hosts[0]] and c._conns[c.hosts[0]] is conn  # one connection did it all
        assert conn.in_flight() == 0


async def test_contact_points_are_tried_in_order(tmp_path):
    bad, worse = f"127.0.0.1:{dead_port()}", f"127.0.0.1:{dead_port()}"
    with pytest.raises(NoHostAvailable) as info:
        await AsyncClient.connect([bad, worse], timeout=5)
    assert list(info.value.errors) == [bad, worse]
    assert bad in str(info.value) and "refused" in str(info.value).lower()
    assert isinstance(info.value, ConnectionError)
    async with serving(tmp_path) as (port, _):
        good = f"127.0.0.1:{port}"
        async with await AsyncClient.connect([bad, good]) as c:
            assert list(c._conns) == [good]
            assert (await c.execute("SELECT release_version FROM system.local")).kind == "rows"


async def test_server_going_away_and_coming_back(tmp_path):
    async with serving(tmp_path) as (port, stop):
        c = await AsyncClient.connect([f"127.0.0.1:{port}"], timeout=5)
        await _schema(c)
        select = await c.prepare("SELECT v FROM ks.t WHERE k = ? AND c = ?")
        await c.execute("INSERT INTO ks.t (k, c, v) VALUES (1, 1, 'kept')")
        stop.cancel()
    # the server is gone: the next request finds no host
    with pytest.raises((NoHostAvailable, ConnectionLost)) as info:
        await c.execute(select, [1, 1])
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(NoHostAvailable, match=f"127.0.0.1:{port}"):
        await c.execute("SELECT * FROM ks.t")
    # back on the same port with the same data: the client reconnects, and the prepared statement the new
    # server has never seen is prepared again
    async with serving(tmp_path, port) as (_, stop):
        assert (await c.execute(select, [1, 1])).one() == ("kept",)
        assert (await c.execute("SELECT v FROM ks.t WHERE k = ? AND c = ?", [1, 1])).one() == ("kept",)
        await c.aclose()
        stop.cancel()
