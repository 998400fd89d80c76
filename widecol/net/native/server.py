"""The CQL native protocol server on trio: sockets in, ServerConnection events, executor calls, frames out.

How this works: `NativeServer.serve` accepts TCP connections, at most `[native] max_connections` at once (a
connection over the bound is closed at once). Each connection gets a task that feeds received bytes to its
sans-IO `ServerConnection` and starts one task per request, so requests on different streams are answered as
they finish; a lock serialises writes to the socket. Requests run in worker threads (at most `max_in_flight`
at once), because the executor may block: on fsync in batch commit log mode, and in a cluster on replicas, which
the coordinator's proxy reaches through the trio thread. A standalone node in periodic commit log mode never
blocks, and answers on the event loop (`inline`), which saves the thread hop (about 15% of its throughput). Events (SCHEMA_CHANGE, STATUS_CHANGE, TOPOLOGY_CHANGE)
go to the connections that REGISTERed for their type. Prepared statements are kept on the server by id, the md5 of keyspace and query text,
so ids are stable across reconnects. USE is per connection. A widecol error becomes its ERROR frame; any other
exception becomes a ServerError and a log line. A client that breaks the framing loses only its own connection.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import trio

from widecol.cql import ast
from widecol.cql.executor import Executor, Rows, SchemaChange, SetKeyspace, prepare
from widecol.cql.parser import parse
from widecol.cql.terms import UNSET
from widecol.errors import InvalidRequest, ServerError, Unprepared, WidecolError
from widecol.net import threads
from widecol.net.native import codec
from widecol.net.native.connection import Request, ServerConnection, Violation, default_supported
from widecol.net.native.messages import (
    Batch,
    Execute,
    Options,
    Prepare,
    Query,
    Ready,
    Register,
    Startup,
    Supported,
)
from widecol.net.native.results import (
    ColumnSpec,
    Event,
    PreparedResult,
    ResultResponse,
    RowsMetadata,
    RowsResult,
    SchemaChangeResult,
    SetKeyspaceResult,
    VoidResult,
)
from widecol.net.native.results import SchemaChange as SchemaChangeBody
from widecol.net.native.system_tables import SystemTables
from widecol.net.repair import repair_statement
from widecol.schema.types import protocol_option

log = logging.getLogger(__name__)
_REPAIR_VIEW = SimpleNamespace(keyspace="system_views", table="repair")  # names the REPAIR result's columns

RECV_SIZE = 65536


class _Prepared:
    def __init__(self, query: str, keyspace: str | None, statement: Any, bind_specs: list) -> None:
        self.query, self.keyspace, self.statement, self.bind_specs = query, keyspace, statement, bind_specs


class NativeServer:
    """One node's native protocol endpoint over an Executor and its SystemTables."""

    def __init__(self, executor: Executor, system: SystemTables, *, max_connections: int = 1024,
                 max_frame_size: int = 256 * 1024 * 1024, max_in_flight: int = 64, inline: bool = False) -> None:
        self.executor = executor
        self.system = system
        self.max_connections = max_connections
        self.max_frame_size = max_frame_size
        self.prepared: dict[bytes, _Prepared] = {}
        self.connections = 0
        self.listeners: dict[str, set[_Client]] = {}  # event type -> connections REGISTERed for it
        self.limiter = trio.CapacityLimiter(max_in_flight)
        self.inline = inline  # answer on the event loop: only when the executor never blocks
        # Operator commands that are not CQL (`DECOMMISSION`, ...): first word -> fn(rest of the text, session)
        # returning Rows; they run in a request's worker thread. widecol's own tools send them.
        self.admin: dict[str, Callable[[str, dict], Rows]] = {}
        self.repair: Callable[[str | None, str | None], Rows] | None = None  # set by node.py in a cluster

    async def broadcast(self, event: Event) -> None:
        """Push EVENT to every connection registered for its type."""
        for client in list(self.listeners.get(event.event_type, ())):
            await client.push(event)

    async def serve(self, host: str, port: int, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on HOST:PORT and serve until cancelled; `task_status.started` gets the listeners."""
        listeners = await trio.open_tcp_listeners(port, host=host)
        task_status.started(listeners)
        await trio.serve_listeners(self.handle_stream, listeners)

    async def handle_stream(self, stream: trio.abc.Stream) -> None:
        """Serve one client connection until it closes or breaks the protocol."""
        if self.connections >= self.max_connections:
            log.warning("native: connection refused, %d connections open", self.connections)
            await stream.aclose()
            return
        self.connections += 1
        client = None
        try:
            client = _Client(self, stream)
            try:
                await client.run()
            except* (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
                pass  # the client went away (a reset connection, say): nothing to report
        except Exception:  # one connection's failure must not stop the server
            log.exception("native: connection failed")
        finally:
            self.connections -= 1
            for clients in self.listeners.values():
                clients.discard(client)  # type: ignore[arg-type]
            await trio.aclose_forcefully(stream)

    # -- request handling (sans socket) -------------------------------------------------------------------------

    def respond(self, request: Request, session: dict) -> object:
        """The response message for one request; raises WidecolError for error answers."""
        m = request.message
        if isinstance(m, Options):
            return Supported(default_supported())
        if isinstance(m, Startup):
            return Ready()
        if isinstance(m, Register):
            return Ready()
        if isinstance(m, Query):
            p = m.params
            if p.values:
                raise InvalidRequest("bound values are only supported for prepared statements")
            first, _, rest = m.query.strip().partition(" ")
            command = self.admin.get(first.upper().rstrip(";"))
            if command is not None:
                return ResultResponse(_rows(command(rest, session), None, session.get("keyspace"), False))
            if first.upper() in ("DESCRIBE", "DESC"):  # not CQL proper: answered from the schema, as Cassandra 4
                return ResultResponse(_rows(self.system.describe(rest, session.get("keyspace")), None,
                                            session.get("keyspace"), False))
            # -- repair: `REPAIR [ks[.table]]` is our extension, not CQL (widecol/net/repair.py) --
            target = repair_statement(m.query)
            if target is not None:
                if self.repair is None:
                    raise InvalidRequest("repair needs a cluster")
                return ResultResponse(_rows(self.repair(*target), _REPAIR_VIEW, None, False))
            # -- end repair --
            stmt = parse(m.query)
            return self._run(stmt, None, session, p.page_size, p.paging_state, consistency=p.consistency)
        if isinstance(m, Prepare):
            return self._prepare(m.query, session.get("keyspace"))
        if isinstance(m, Execute):
            entry = self.prepared.get(m.statement_id)
            if entry is None:
                raise Unprepared(m.statement_id)
            params = _bind(entry, m.params.values or [], m.params.names)
            return self._run(entry.statement, params, session, m.params.page_size, m.params.paging_state,
                             skip_metadata=m.params.skip_metadata, consistency=m.params.consistency)
        if isinstance(m, Batch):
            return self._batch(m, session)
        raise InvalidRequest(f"unexpected request {type(m).__name__}")

    def _prepare(self, query: str, keyspace: str | None) -> ResultResponse:
        statement_id = hashlib.md5(f"{keyspace or ''}\x00{query}".encode(), usedforsecurity=False).digest()
        stmt = parse(query)
        if self.system.handles(stmt, keyspace):
            raise InvalidRequest("preparing statements on system tables is not supported")
        prepared = prepare(self.executor, stmt, keyspace)
        self.prepared[statement_id] = _Prepared(query, keyspace, prepared.statement, prepared.bind_specs)
        binds = [ColumnSpec(ks, table, name, wire_option(t)) for ks, table, name, t in prepared.bind_specs]
        pk_indexes = _pk_indexes(self.executor, stmt, prepared.bind_specs, keyspace)
        return ResultResponse(PreparedResult(statement_id, binds, pk_indexes, RowsMetadata(no_metadata=True,
                                                                                         column_count=0)))

    def _run(self, stmt: Any, params: Any, session: dict, page_size: int | None, paging_state: bytes | None,
             skip_metadata: bool = False, consistency: str = "ONE") -> ResultResponse:
        keyspace = session.get("keyspace")
        if isinstance(stmt, ast.Use):  # per connection: the shared executor's own keyspace stays unset
            self.executor.store.schema.keyspace(stmt.keyspace)  # InvalidRequest if it does not exist
            result: Any = SetKeyspace(stmt.keyspace)
        elif self.system.handles(stmt, keyspace):
            result = self.system.select(stmt, keyspace)
        else:
            if page_size is not None and page_size <= 0:
                page_size = None
            result = self.executor.execute(stmt, params, keyspace, page_size, paging_state, consistency)
        if isinstance(result, Rows):
            return ResultResponse(_rows(result, stmt, keyspace, skip_metadata))
        if isinstance(result, SetKeyspace):
            session["keyspace"] = result.name
            return ResultResponse(SetKeyspaceResult(result.name))
        if isinstance(result, SchemaChange):
            body = SchemaChangeBody(result.change, result.target, result.keyspace, result.name)
            return ResultResponse(SchemaChangeResult(body))
        return ResultResponse(VoidResult())

    def _batch(self, m: Batch, session: dict) -> ResultResponse:
        keyspace = session.get("keyspace")
        statements = []
        params: list = []
        for s in m.statements:
            if s.statement_id is not None:
                entry = self.prepared.get(s.statement_id)
                if entry is None:
                    raise Unprepared(s.statement_id)
                stmt, bound = entry.statement, _bind(entry, s.values, None)
            else:
                stmt = parse(s.query or "")
                if s.values:
                    entry = _Prepared(s.query or "", keyspace, stmt, prepare(self.executor, stmt, keyspace).bind_specs)
                    bound = _bind(entry, s.values, None)
                else:
                    bound = []
            if not isinstance(stmt, (ast.Insert, ast.Update, ast.Delete)):
                raise InvalidRequest("Invalid statement in batch: only UPDATE, INSERT and DELETE statements are "
                                     "allowed.")
            statements.append((stmt, bound))
            params.extend(bound)
        batch = _renumber(statements, m.batch_type)
        self.executor.execute(batch, params, keyspace, consistency=m.consistency)
        return ResultResponse(VoidResult())


def _renumber(statements: list, batch_type: int) -> ast.Statement:
    """One ast.Batch of STATEMENTS whose bind markers are numbered consecutively across them."""

    out, base = [], 0

    def shift(node: Any) -> Any:
        if isinstance(node, ast.BindMarker):
            return ast.BindMarker(node.index + base, None)
        if isinstance(node, tuple):
            return tuple(shift(n) for n in node)
        if dataclasses.is_dataclass(node) and not isinstance(node, type):
            changes = {f.name: shift(getattr(node, f.name)) for f in dataclasses.fields(node)}
            return dataclasses.replace(node, **changes) if changes else node
        return node

    markers: list = []
    for stmt, bound in statements:
        shifted = shift(stmt)
        out.append(shifted)
        markers.extend(shifted.bind_markers)
        base += len(bound)
    kind = {0: "LOGGED", 1: "UNLOGGED", 2: "COUNTER"}.get(batch_type, "LOGGED")
    return ast.Batch(kind, tuple(out), None, tuple(markers))


def _bind(entry: _Prepared, values: list, names: list[str] | None) -> list:
    """The Python values of a request's bound [value]s, deserialized with the prepared bind specs' types."""
    specs = entry.bind_specs
    if names is not None:
        by_name = dict(zip(names, values, strict=True))
        values = [by_name.get(spec[2], codec.NOT_SET) for spec in specs]
    if len(values) != len(specs):
        raise InvalidRequest(f"There were {len(specs)} markers(?) in CQL but {len(values)} bound variables")
    out: list = []
    for (_ks, _table, _name, t), v in zip(specs, values, strict=True):
        if v is codec.NOT_SET:
            out.append(UNSET)  # the executor leaves the column alone, or refuses where a value is needed
        elif v is None or t is None:
            out.append(None)
        else:
            out.append(t.deserialize(bytes(v)))
    return out


def wire_option(t: Any) -> tuple:
    """The codec's flat [option] tuple for type T: (id,), (id, element), (id, key, value), (id, *elements)."""
    kind, sub = protocol_option(t)

    def flat(opt: tuple) -> tuple:
        k, s = opt
        if s is None:
            return (k,)
        if isinstance(s, list):
            return (k, *(flat(o) for o in s))
        if isinstance(s[0], tuple):  # map: (key option, value option)
            return (k, flat(s[0]), flat(s[1]))
        return (k, flat(s))

    return flat((kind, sub))


def _pk_indexes(executor: Executor, stmt: Any, specs: list, keyspace: str | None) -> list[int]:
    """Indexes of the bind markers giving each partition key column, when all of them are bound (lets the
    driver compute routing keys); empty otherwise."""
    if not isinstance(stmt, (ast.Insert, ast.Update, ast.Delete, ast.Select)):
        return []
    try:
        info = executor.table_info(stmt.keyspace, stmt.table, keyspace)
    except WidecolError:
        return []
    by_name: dict[str, int] = {}
    for i, spec in enumerate(specs):
        by_name.setdefault(spec[2], i)
    pk = [c.name for c in info.table.partition_key]
    if all(name in by_name for name in pk):
        return [by_name[name] for name in pk]
    return []


def _rows(result: Rows, stmt: Any, keyspace: str | None, skip_metadata: bool) -> RowsResult:
    ks = getattr(stmt, "keyspace", None) or keyspace or ""
    table = getattr(stmt, "table", "")
    if skip_metadata:
        metadata = RowsMetadata(paging_state=result.paging_state, no_metadata=True,
                                column_count=len(result.columns))
    else:
        specs = [ColumnSpec(ks, table, name, wire_option(t)) for name, t in result.columns]
        metadata = RowsMetadata(specs, result.paging_state)
    types = [t for _, t in result.columns]
    rows = [[None if v is None else t.serialize(v) for t, v in zip(types, row, strict=True)]
            for row in result.rows]
    return RowsResult(metadata, rows)


class _Client:
    """One connection: a reader loop and one task per request."""

    def __init__(self, server: NativeServer, stream: trio.abc.Stream) -> None:
        self.server = server
        self.stream = stream
        self.conn = ServerConnection(server.max_frame_size)
        self.send_lock = trio.Lock()
        self.session: dict = {"keyspace": None}

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            while True:
                data = await self.stream.receive_some(RECV_SIZE)
                if not data:
                    break
                self.conn.receive_data(bytes(data))
                while (event := self.conn.next_event()) is not None:
                    if isinstance(event, Violation):
                        if event.data:
                            await self._write(event.data)
                        if event.close:
                            log.info("native: closing a connection: %s", event.error)
                            nursery.cancel_scope.cancel()
                            return
                        continue
                    if isinstance(event.message, (Startup, Options)):
                        await self._answer(event)  # in order: it switches the connection's compression
                    else:
                        nursery.start_soon(self._answer, event)
            nursery.cancel_scope.cancel()

    async def _answer(self, request: Request) -> None:
        response = None
        try:
            if self.server.inline or isinstance(request.message, (Startup, Options, Register)):
                response = self.server.respond(request, self.session)
            else:
                response = await threads.run_sync(self.server.respond, request, self.session,
                                                  limiter=self.server.limiter)
            data = self.conn.send(request.stream, response)
        except WidecolError as exc:
            data = self.conn.send_error(request.stream, exc)
        except Exception as exc:
            log.exception("native: internal error answering %s", type(request.message).__name__)
            data = self.conn.send_error(request.stream, ServerError(f"{type(exc).__name__}: {exc}"))
        await self._write(data)
        if isinstance(request.message, Register):
            for event_type in request.message.event_types:
                self.server.listeners.setdefault(event_type, set()).add(self)
        if isinstance(response, ResultResponse) and isinstance(response.result, SchemaChangeResult):
            await self.server.broadcast(Event("SCHEMA_CHANGE", schema=response.result.change))

    async def push(self, event: Event) -> None:
        """Sends EVENT on stream -1; a connection that cannot take it is dropped from the listeners."""
        try:
            await self._write(self.conn.send(-1, event))
        except (trio.BrokenResourceError, trio.ClosedResourceError, ConnectionError):
            for clients in self.server.listeners.values():
                clients.discard(self)

    async def _write(self, data: bytes) -> None:
        async with self.send_lock:
            await self.stream.send_all(data)
