"""The Python client for widecol (and any CQL native protocol v3/v4 server): AsyncClient on trio, Client for scripts.

How this works: `AsyncClient` keeps at most one `Connection` (widecol/client_conn.py) per contact point and
sends each request on the one `_pick_host` chooses; today that is the first live connection, and the routing
key it is given is the seam for token-aware routing later. When no connection is live, the next request
connects again, trying the contact points in order, and raises NoHostAvailable naming each one and why it
failed. A request in flight on a connection that breaks raises ConnectionLost and is not retried (it may have
been applied). The client remembers its keyspace (from USE or `connect(keyspace=...)`) and sets it on a new
connection before its first request. Our server binds values only for prepared statements, so `execute` with
parameters prepares the query behind the scenes, once per (keyspace, query text); an EXECUTE the server no
longer knows (it restarted) is prepared again and retried once. `Client` is the same API without `await`: it
runs an AsyncClient on a trio loop in a daemon thread and calls into it through the loop's token.
"""

from __future__ import annotations

import bisect
import functools
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any, TypeVar

import trio

from widecol.client_conn import (
    ClientConnectionError,
    Connection,
    ConnectionLost,
    NoHostAvailable,
    OperationTimedOut,
    parse_host,
)
from widecol.client_result import (
    PreparedStatement,
    Result,
    bind_values,
    consistency_name,
    prepared_from,
    quote,
    result_from,
)
from widecol.errors import InvalidRequest, ProtocolError, Unprepared
from widecol.net.native.messages import Execute, Prepare, Query, QueryParameters
from widecol.net.native.results import ErrorResponse, PreparedResult, ResultResponse
from widecol.storage.token import token

__all__ = [
    "AsyncClient", "Client", "ClientConnectionError", "ConnectionLost", "NoHostAvailable", "OperationTimedOut",
    "PreparedStatement", "Result", "connect",
]

log = logging.getLogger(__name__)

RING_REFRESH_S = 30.0  # how often token-aware routing rereads the ring

DEFAULT_PAGE_SIZE = 5000
T = TypeVar("T")


class AsyncClient:
    """A client on the current trio run. Make one with `await AsyncClient.connect(...)`; close it with
    `aclose()` or `async with`. Any number of tasks may use it at once."""

    def __init__(self, hosts: Sequence[str] | str, *, timeout: float = 10.0, compression: bool = False) -> None:
        hosts = [hosts] if isinstance(hosts, str) else list(hosts)
        for host in hosts:
            parse_host(host)  # ValueError now rather than at the first reconnect
        self.hosts = hosts
        self.timeout = timeout
        self.compression = compression
        self._conns: dict[str, Connection] = {}
        self._connect_lock = trio.Lock()
        self._keyspace: str | None = None
        self._prepared: dict[tuple[str | None, str], PreparedStatement] = {}
        self._keys: dict[tuple[str, str], tuple[list[str], list[str]]] = {}
        self._closed = False
        # Token-aware routing: the ring as the cluster announced it (token -> "host:port" of its owner).
        self._ring_tokens: list[int] = []
        self._ring_hosts: list[str] = []
        self._ring_read_at = -RING_REFRESH_S
        self._failed_owners: set[str] = set()

    @classmethod
    async def connect(cls, hosts: Sequence[str] | str, keyspace: str | None = None, timeout: float = 10.0,
                      compression: bool = False) -> AsyncClient:
        """A client connected to the first reachable host of HOSTS ("host[:port]", port 9042 by default), in
        KEYSPACE when given. Raises NoHostAvailable, or InvalidRequest for a keyspace that does not exist."""
        client = cls(hosts, timeout=timeout, compression=compression)
        try:
            await client._connection(None)
            if keyspace is not None:
                await client.execute(f"USE {quote(keyspace)}")
        except BaseException:
            await client.aclose()
            raise
        return client

    @property
    def keyspace(self) -> str | None:
        """The current keyspace: the last one a USE through this client set, or None."""
        return self._keyspace

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Closes every connection; later calls raise ClientConnectionError. Idempotent."""
        self._closed = True
        conns, self._conns = list(self._conns.values()), {}
        for conn in conns:
            await conn.aclose()

    # -- requests -----------------------------------------------------------------------------------------------

    async def execute(self, query: str | PreparedStatement, params: Sequence[Any] | dict[str, Any] | None = None,
                      consistency: str | int = "ONE", page_size: int | None = DEFAULT_PAGE_SIZE,
                      paging_state: bytes | None = None, timeout: float | None = None) -> Result:
        """Runs QUERY (text or a PreparedStatement) with PARAMS (a sequence, or a dict by marker name) and
        returns its Result: at most PAGE_SIZE rows (None: all), with `paging_state` set when more follow;
        pass that back as PAGING_STATE for the next page. Server errors raise their widecol.errors exception;
        a broken connection raises ConnectionLost, no reachable host NoHostAvailable."""
        cl = consistency_name(consistency)
        if isinstance(query, PreparedStatement):
            prepared: PreparedStatement | None = query
        elif params:
            prepared = await self._prepare_cached(query, timeout)
        else:
            prepared = None
        if prepared is None:
            assert isinstance(query, str)
            params_ = QueryParameters(cl, page_size=page_size, paging_state=paging_state)
            return result_from(await self._request(Query(query, params_), None, timeout))
        values, names = bind_values(prepared, params)
        qp = QueryParameters(cl, values, names, page_size=page_size, paging_state=paging_state)
        routing = _routing_key(prepared, values, names)
        try:
            response = await self._request(Execute(prepared.statement_id, qp), routing, timeout)
        except Unprepared:
            log.info("server lost prepared statement %s; preparing it again", prepared.statement_id.hex())
            again = await self._prepare_on(prepared.query, routing, timeout)  # on the node that lacked it
            self._prepared[(prepared.keyspace, prepared.query)] = again
            response = await self._request(Execute(again.statement_id, qp), routing, timeout)
        return result_from(response)

    async def prepare(self, query: str, timeout: float | None = None) -> PreparedStatement:
        """Prepares QUERY on the server (in the current keyspace) and returns the statement to execute. Other
        nodes learn it when a request routed to them first needs it."""
        return await self._prepare_on(query, None, timeout)

    async def _prepare_on(self, query: str, routing: bytes | None, timeout: float | None) -> PreparedStatement:
        response = await self._request(Prepare(query), routing, timeout)
        if not isinstance(response.result, PreparedResult):
            raise ProtocolError(f"PREPARE answered with {type(response.result).__name__}")
        return prepared_from(query, self._keyspace, response.result)

    async def iterate(self, query: str | PreparedStatement, params: Sequence[Any] | dict[str, Any] | None = None,
                      consistency: str | int = "ONE", page_size: int = 1000) -> AsyncIterator[tuple]:
        """Every row of QUERY, fetching the next page of PAGE_SIZE rows only when the previous one is used up."""
        async for page in self._pages(query, params, consistency, page_size):
            for row in page.rows:
                yield row

    async def _pages(self, query: str | PreparedStatement, params: Any, consistency: str | int,
                     page_size: int) -> AsyncIterator[Result]:
        if isinstance(query, str) and params:
            query = await self._prepare_cached(query, None)
        state = None
        while True:
            page = await self.execute(query, params, consistency, page_size, state)
            yield page
            state = page.paging_state
            if state is None:
                return

    # -- key-value helpers --------------------------------------------------------------------------------------

    async def put(self, keyspace: str, table: str, values: dict[str, Any], consistency: str | int = "ONE",
                  ttl: int | None = None) -> None:
        """INSERTs one row (VALUES maps column names to values; the primary key must be among them), through a
        cached prepared statement; TTL in seconds when given."""
        if not values:
            raise InvalidRequest("put() needs at least the primary key columns")
        names = list(values)
        query = (f"INSERT INTO {quote(keyspace)}.{quote(table)} ({', '.join(map(quote, names))}) "
                 f"VALUES ({', '.join('?' * len(names))})")
        params = [values[n] for n in names]
        if ttl is not None:
            query += " USING TTL ?"
            params.append(ttl)
        await self.execute(await self._prepare_cached(query, None), params, consistency)

    async def get(self, keyspace: str, table: str, key: dict[str, Any],
                  consistency: str | int = "ONE") -> dict[str, Any] | None:
        """The row with the full primary key KEY (column name -> value) as a dict, or None."""
        partition, clustering = await self._table_key(keyspace, table)
        _check_key(keyspace, table, key, partition + clustering, "get() needs the full primary key")
        rows = await self._select(keyspace, table, key, partition + clustering, consistency, None)
        return rows[0] if rows else None

    async def get_partition(self, keyspace: str, table: str, key: dict[str, Any], consistency: str | int = "ONE",
                            page_size: int = DEFAULT_PAGE_SIZE) -> list[dict[str, Any]]:
        """Every row of the partition with partition key KEY, in clustering order, fetched page by page."""
        partition, _ = await self._table_key(keyspace, table)
        _check_key(keyspace, table, key, partition, "get_partition() needs the partition key")
        return await self._select(keyspace, table, key, partition, consistency, page_size)

    async def _select(self, keyspace: str, table: str, key: dict[str, Any], columns: list[str],
                      consistency: str | int, page_size: int | None) -> list[dict[str, Any]]:
        where = " AND ".join(f"{quote(c)} = ?" for c in columns)
        query = f"SELECT * FROM {quote(keyspace)}.{quote(table)} WHERE {where}"
        prepared = await self._prepare_cached(query, None)
        params = [key[c] for c in columns]
        if page_size is None:
            return (await self.execute(prepared, params, consistency, page_size=None)).as_dicts()
        out: list[dict[str, Any]] = []
        async for page in self._pages(prepared, params, consistency, page_size):
            out += page.as_dicts()
        return out

    async def _table_key(self, keyspace: str, table: str) -> tuple[list[str], list[str]]:
        """(partition key columns, clustering columns) of a table, in order, read from system_schema once."""
        cached = self._keys.get((keyspace, table))
        if cached is not None:
            return cached
        ks, tb = keyspace.replace("'", "''"), table.replace("'", "''")
        result = await self.execute(
            "SELECT column_name, kind, position FROM system_schema.columns "
            f"WHERE keyspace_name = '{ks}' AND table_name = '{tb}'", page_size=None)
        if not result.rows:
            raise InvalidRequest(f"unconfigured table {table}" if self._keyspace == keyspace
                                 else f"unconfigured table {keyspace}.{table}")
        by_kind: dict[str, list[tuple[int, str]]] = {"partition_key": [], "clustering": []}
        for name, kind, position in result.rows:
            if kind in by_kind:
                by_kind[kind].append((position, name))
        keys = ([n for _, n in sorted(by_kind["partition_key"])], [n for _, n in sorted(by_kind["clustering"])])
        self._keys[(keyspace, table)] = keys
        return keys

    # -- connections ---------------------------------------------------------------------------------------------

    def _pick_host(self, routing_key: bytes | None) -> Connection | None:
        """The connection to send a request on: to the node that owns ROUTING_KEY's token (the serialized
        partition key, when known), which is always one of its replicas, if that connection is open; otherwise
        the first live one in contact-point order."""
        owner = self._owner(routing_key)
        if owner is not None:
            conn = self._conns.get(owner)
            if conn is not None and not conn.closed:
                return conn
        for host in [*self.hosts, *self._conns]:
            conn = self._conns.get(host)
            if conn is not None and not conn.closed:
                return conn
        return None

    def _owner(self, routing_key: bytes | None) -> str | None:
        """"host:port" of the node whose token range holds ROUTING_KEY, from the last ring read (or None)."""
        if routing_key is None or not self._ring_tokens:
            return None
        i = bisect.bisect_left(self._ring_tokens, token(routing_key))
        return self._ring_hosts[i % len(self._ring_hosts)]

    async def _refresh_ring(self, conn: Connection) -> None:
        """Read the token ring (system.local and system.peers_v2 through CONN), at most every RING_REFRESH_S."""
        now = trio.current_time()
        if now < self._ring_read_at + RING_REFRESH_S:
            return
        self._ring_read_at = now
        owners: list[tuple[int, str]] = []
        try:
            local = result_from(await self._send(conn, Query("SELECT tokens FROM system.local"), self.timeout))
            for (tokens,) in local.rows:
                owners += [(int(t), conn.host) for t in tokens or ()]
            query = Query("SELECT native_address, native_port, tokens FROM system.peers_v2")
            for address, port, tokens in result_from(await self._send(conn, query, self.timeout)).rows:
                owners += [(int(t), f"{address}:{port}") for t in tokens or ()]
        except (InvalidRequest, ProtocolError) as exc:  # a server without these tables: no routing
            log.debug("no token ring from %s: %s", conn.host, exc)
            return
        owners.sort()
        self._ring_tokens = [t for t, _ in owners]
        self._ring_hosts = [h for _, h in owners]

    async def _connection(self, routing_key: bytes | None) -> Connection:
        if self._closed:
            raise ClientConnectionError("the client is closed")
        conn = self._pick_host(routing_key)
        owner = self._owner(routing_key)
        if conn is not None and owner is not None and conn.host != owner and owner not in self._failed_owners:
            try:  # open a connection to the partition's owner for this and later requests
                routed = await Connection.open(owner, compression=self.compression, timeout=self.timeout)
            except (OSError, OperationTimedOut, ProtocolError) as exc:
                log.info("cannot connect to %s: %s; sending through %s", owner, exc, conn.host)
                self._failed_owners.add(owner)
            else:
                self._conns[owner] = routed
                return routed
        if conn is not None:
            if routing_key is not None:
                await self._refresh_ring(conn)
            return conn
        async with self._connect_lock:  # one task reconnects; the others wait for it
            conn = self._pick_host(routing_key)
            if conn is not None:
                return conn
            errors: dict[str, BaseException] = {}
            for host in self.hosts:
                old = self._conns.pop(host, None)
                if old is not None:
                    await old.aclose()
                try:
                    conn = await Connection.open(host, compression=self.compression, timeout=self.timeout)
                except (OSError, OperationTimedOut, ProtocolError) as exc:
                    log.info("cannot connect to %s: %s", host, exc)
                    errors[host] = exc
                    continue
                if self._closed:
                    await conn.aclose()
                    raise ClientConnectionError("the client is closed")
                self._conns[host] = conn
                return conn
            raise NoHostAvailable(errors)

    async def _request(self, message: object, routing_key: bytes | None, timeout: float | None) -> ResultResponse:
        """Sends MESSAGE on a live connection (in the client's keyspace) and returns its RESULT; an ERROR is
        raised as its widecol.errors exception."""
        timeout = self.timeout if timeout is None else timeout
        conn = await self._connection(routing_key)
        if self._keyspace is not None and conn.keyspace != self._keyspace:
            await self._send(conn, Query(f"USE {quote(self._keyspace)}"), timeout)
        return await self._send(conn, message, timeout)

    async def _send(self, conn: Connection, message: object, timeout: float) -> ResultResponse:
        response = (await conn.request(message, timeout=timeout)).message
        if isinstance(response, ErrorResponse):
            raise response.to_exception()
        if not isinstance(response, ResultResponse):
            raise ProtocolError(f"expected RESULT, got {type(response).__name__}")
        result = response.result
        kind = type(result).__name__
        if kind == "SetKeyspaceResult":
            conn.keyspace = self._keyspace = result.keyspace  # type: ignore[union-attr]
        elif kind == "SchemaChangeResult":
            self._keys.clear()  # a table may have been dropped or recreated
        return response

    async def _prepare_cached(self, query: str, timeout: float | None) -> PreparedStatement:
        key = (self._keyspace, query)
        prepared = self._prepared.get(key)
        if prepared is None:
            prepared = self._prepared[key] = await self.prepare(query, timeout)
        return prepared


def _check_key(keyspace: str, table: str, key: dict[str, Any], wanted: list[str], what: str) -> None:
    if set(key) != set(wanted):
        raise InvalidRequest(f"{what} of {keyspace}.{table}: {', '.join(wanted)}; got {', '.join(key) or 'none'}")


def _routing_key(prepared: PreparedStatement, values: list, names: list[str] | None) -> bytes | None:
    """The partition key's bytes when the statement binds all of it (one column: its bytes; several: the
    composite form Cassandra hashes), else None."""
    if names is not None or not prepared.pk_indexes:
        return None
    parts = [values[i] for i in prepared.pk_indexes]
    if any(not isinstance(p, bytes) for p in parts):
        return None
    if len(parts) == 1:
        return parts[0]
    return b"".join(len(p).to_bytes(2, "big") + p + b"\x00" for p in parts)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# The synchronous facade


class Client:
    """AsyncClient's API without `await`, for scripts and the REPL: a trio loop runs in a daemon thread and each
    call waits for its answer there. Use it from one thread at a time; `close()` (or `with`) ends the thread."""

    def __init__(self, hosts: Sequence[str] | str, keyspace: str | None = None, timeout: float = 10.0,
                 compression: bool = False) -> None:
        self._client: AsyncClient | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._error: BaseException | None = None
        ready = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(hosts, keyspace, timeout, compression, ready), name="widecol-client",
            daemon=True)
        self._thread.start()
        ready.wait()
        if self._error is not None:
            self._thread.join()
            raise self._error

    def _run(self, hosts: Sequence[str] | str, keyspace: str | None, timeout: float, compression: bool,
             ready: threading.Event) -> None:
        async def main() -> None:
            try:
                self._token = trio.lowlevel.current_trio_token()
                self._stop = trio.Event()
                self._client = await AsyncClient.connect(hosts, keyspace, timeout, compression)
            except Exception as exc:  # noqa: BLE001 - the constructor raises it in the caller's thread
                self._error = exc
                return
            finally:
                ready.set()
            try:
                await self._stop.wait()
            finally:
                await self._client.aclose()

        trio.run(main)

    def _call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self._stop is None or self._stop.is_set() or self._client is None:
            raise ClientConnectionError("the client is closed")
        return trio.from_thread.run(functools.partial(fn, *args, **kwargs), trio_token=self._token)

    @property
    def keyspace(self) -> str | None:
        """The current keyspace (set by USE results)."""
        return self._client.keyspace if self._client is not None else None

    def execute(self, query: str | PreparedStatement, params: Sequence[Any] | dict[str, Any] | None = None,
                consistency: str | int = "ONE", page_size: int | None = DEFAULT_PAGE_SIZE,
                paging_state: bytes | None = None, timeout: float | None = None) -> Result:
        """See AsyncClient.execute."""
        assert self._client is not None
        return self._call(self._client.execute, query, params, consistency, page_size, paging_state, timeout)

    def prepare(self, query: str, timeout: float | None = None) -> PreparedStatement:
        assert self._client is not None
        return self._call(self._client.prepare, query, timeout)

    def iterate(self, query: str | PreparedStatement, params: Sequence[Any] | dict[str, Any] | None = None,
                consistency: str | int = "ONE", page_size: int = 1000) -> Iterator[tuple]:
        """Every row of QUERY; each page is fetched when the previous one is used up."""
        if isinstance(query, str) and params:
            query = self.prepare(query)
        state = None
        while True:
            page = self.execute(query, params, consistency, page_size, state)
            yield from page.rows
            state = page.paging_state
            if state is None:
                return

    def put(self, keyspace: str, table: str, values: dict[str, Any], consistency: str | int = "ONE",
            ttl: int | None = None) -> None:
        assert self._client is not None
        self._call(self._client.put, keyspace, table, values, consistency, ttl)

    def get(self, keyspace: str, table: str, key: dict[str, Any],
            consistency: str | int = "ONE") -> dict[str, Any] | None:
        assert self._client is not None
        return self._call(self._client.get, keyspace, table, key, consistency)

    def get_partition(self, keyspace: str, table: str, key: dict[str, Any], consistency: str | int = "ONE",
                      page_size: int = DEFAULT_PAGE_SIZE) -> list[dict[str, Any]]:
        assert self._client is not None
        return self._call(self._client.get_partition, keyspace, table, key, consistency, page_size)

    def close(self) -> None:
        """Closes the connections and ends the loop thread (waits for it). Idempotent."""
        if self._stop is not None and self._thread.is_alive():
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        self._thread.join()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def connect(hosts: Sequence[str] | str = "127.0.0.1:9042", keyspace: str | None = None, timeout: float = 10.0,
            compression: bool = False) -> Client:
    """A synchronous Client connected to HOSTS ("host[:port]" or a list of them). See AsyncClient.connect."""
    return Client(hosts, keyspace, timeout, compression)
