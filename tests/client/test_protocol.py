"""The client's protocol handling against small fake servers built on the server-side codec (for what our real
server never does: refuse v4, answer Unavailable or WriteTimeout, never answer) and LZ4 against the real one."""

import functools
from contextlib import asynccontextmanager

import pytest
import trio

from tests.client.conftest import serving
from widecol import errors
from widecol.client import AsyncClient, ConnectionLost, OperationTimedOut
from widecol.net.native.connection import ServerConnection
from widecol.net.native.frame import unsupported_version_message
from widecol.net.native.messages import Query, Ready, Startup
from widecol.net.native.results import ColumnSpec, ResultResponse, RowsMetadata, RowsResult


@asynccontextmanager
async def fake_server(answer, refuse_v4=False):
    """A server that answers STARTUP with READY and every other request with answer(request) (a response, an
    exception to send as ERROR, None for silence, or "close"). Yields (port, versions seen per connection)."""
    versions = []

    async def handle(stream):
        conn = ServerConnection()
        async with stream:
            while data := await stream.receive_some(65536):
                conn.receive_data(data)
                while (req := conn.next_event()) is not None:
                    if conn.version not in versions:
                        versions.append(conn.version)
                    if refuse_v4 and req.version == 4:
                        error = errors.ProtocolError(unsupported_version_message(4))
                        await stream.send_all(conn.send_error(req.stream, error))
                        return
                    if isinstance(req.message, Startup):
                        await stream.send_all(conn.send(req.stream, Ready()))
                        continue
                    out = answer(req)
                    if out == "close":
                        return
                    if isinstance(out, Exception):
                        await stream.send_all(conn.send_error(req.stream, out))
                    elif out is not None:
                        await stream.send_all(conn.send(req.stream, out))

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(functools.partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1], versions
        nursery.cancel_scope.cancel()


def _one_int_row(req):
    spec = ColumnSpec("ks", "t", "n", (0x0009,))
    return ResultResponse(RowsResult(RowsMetadata([spec]), [[(42).to_bytes(4, "big")]]))


async def test_steps_down_to_v3_when_the_server_refuses_v4():
    async with fake_server(_one_int_row, refuse_v4=True) as (port, versions):
        async with await AsyncClient.connect(f"127.0.0.1:{port}") as c:
            assert c._conns[c.hosts[0]].version == 3
            r = await c.execute("SELECT n FROM ks.t")
            assert r.rows == [(42,)] and r.columns[0][1].cql_name == "int"
    assert versions == [4, 3]


async def test_error_responses_keep_their_fields():
    def answer(req):
        text = req.message.query
        if "unavailable" in text:
            return errors.Unavailable("QUORUM", 2, 1)
        if "write" in text:
            return errors.WriteTimeout("LOCAL_QUORUM", 1, 2, "BATCH")
        if "read" in text:
            return errors.ReadTimeout("ALL", 2, 3, data_present=True)
        if "syntax" in text:
            return errors.SyntaxException("line 1:0 no viable alternative")
        return errors.Overloaded("busy")

    async with fake_server(answer) as (port, _), await AsyncClient.connect(f"127.0.0.1:{port}") as c:
        with pytest.raises(errors.Unavailable) as un:
            await c.execute("unavailable")
        assert (un.value.consistency, un.value.required, un.value.alive) == ("QUORUM", 2, 1)
        with pytest.raises(errors.WriteTimeout) as wt:
            await c.execute("write")
        assert (wt.value.consistency, wt.value.received, wt.value.required, wt.value.write_type) == (
            "LOCAL_QUORUM", 1, 2, "BATCH")
        with pytest.raises(errors.ReadTimeout) as rt:
            await c.execute("read")
        assert (rt.value.received, rt.value.required, rt.value.data_present) == (2, 3, True)
        with pytest.raises(errors.SyntaxException, match="no viable alternative"):
            await c.execute("syntax")
        with pytest.raises(errors.Overloaded, match="busy"):
            await c.execute("anything else")


async def test_a_request_the_server_never_answers_times_out_and_others_go_on():
    def answer(req):
        return None if "silent" in req.message.query else _one_int_row(req)

    async with fake_server(answer) as (port, _), await AsyncClient.connect(f"127.0.0.1:{port}") as c:
        with pytest.raises(OperationTimedOut) as info:
            await c.execute("silent", timeout=0.2)
        assert isinstance(info.value, TimeoutError) and info.value.host == c.hosts[0]
        assert (await c.execute("loud")).rows == [(42,)]
        assert c._conns[c.hosts[0]].in_flight() == 1  # the abandoned stream stays reserved


async def test_a_connection_dropped_mid_request_fails_every_waiting_request():
    def answer(req):
        return "close" if "drop" in req.message.query else None

    async with fake_server(answer) as (port, _), await AsyncClient.connect(f"127.0.0.1:{port}") as c:
        failures = []

        async def waiting():
            with pytest.raises(ConnectionLost) as info:
                await c.execute("wait forever")
            failures.append(info.value)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(waiting)
            await trio.sleep(0.05)
            with pytest.raises(ConnectionLost, match="closed"):
                await c.execute("drop")
        assert len(failures) == 5 and all(f.host == c.hosts[0] for f in failures)
        assert c._pick_host(None) is None


async def test_lz4_compression_with_the_real_server(tmp_path):
    async with serving(tmp_path) as (port, _):
        async with await AsyncClient.connect(f"127.0.0.1:{port}", compression=True) as c:
            conn = c._conns[c.hosts[0]]
            assert conn._codec.compression == "lz4" and conn._codec.compress_out
            await c.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
                            "'replication_factor': 1}")
            await c.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
            big = "compressible " * 20_000
            await c.execute("INSERT INTO ks.t (k, v) VALUES (?, ?)", [1, big])
            assert (await c.execute("SELECT v FROM ks.t WHERE k = 1")).one() == (big,)


def test_raw_query_message_is_what_the_fake_sees():
    # a guard for the fakes above: they read the query text straight from the QUERY message
    assert Query("x").query == "x"
