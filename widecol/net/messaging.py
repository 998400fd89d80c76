"""Internode messaging: verbs, request ids, timeouts and bounded per-peer queues, over TCP (trio).

How this works. A node runs one `Messaging` service. It listens on its internode address; every inbound
connection is read by one task that feeds a `FrameDecoder` and dispatches each message: a reply wakes the
`request` waiting on its id, anything else runs the verb's handler in a task of its own (at most
`max_concurrent_handlers` at once, so a flood backs up into TCP rather than into memory). A handler's return value
is sent back when the message was a request (request id > 0).

Connections are one-way, as in Cassandra: a node writes to a peer only over its own outbound connection to that
peer, and replies travel over the replier's outbound connection to the requester's address (the `sender` in the
frame). Each peer has one outbound connection, opened lazily by a writer task that drains the peer's bounded queue,
binds its source address to this node's host (so the peer sees who connects) and reconnects with exponential
backoff (capped at `backoff_max`) after a failure. A second task per connection waits for EOF so that a peer
that restarted is noticed before the next write. Listeners registered with `on_unreachable` hear at once when a
connection to a peer drops or a connect to it fails (gossip probes that peer straight away). Conversely, a message
from a peer whose writer is backing off cuts the wait short: it is listening again (a restarted node).

Backpressure: each peer's queue is bounded in messages and bytes. Droppable messages (gossip, replies) are refused
and counted when it is full; others (mutations, requests) wait for room. Every queued message has a deadline (the
request's timeout, or `message_ttl`) after which the writer discards it unsent, so a dead peer holds at most one
queue's worth of memory and nothing older than its deadline.

`_Service` holds everything but the transport; `widecol.net.memory.MemoryMessaging` reuses it over an in-memory
network, so code above runs unchanged on either.
"""

from __future__ import annotations

import functools
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import trio

from widecol.errors import WidecolError
from widecol.net.frames import (
    DEFAULT_MAX_FRAME_SIZE,
    Address,
    FrameCodec,
    FrameRejected,
    Message,
)

log = logging.getLogger(__name__)

_BATCH_BYTES = 64 * 1024  # a writer joins queued frames up to this size into one write

Handler = Callable[[Message], Awaitable[Any]]
"""A verb's handler: receives the message, returns the reply body (ignored for one-way messages)."""
UnreachableListener = Callable[[Address], None]
"""Told the peer's address when a connection to it drops or a connect fails. Runs inline: must not block."""


class RequestTimeout(WidecolError):
    """No reply to a request arrived within its timeout. The peer may still have acted on it."""

    def __init__(self, peer: Address, verb: str, timeout: float) -> None:
        super().__init__(f"no reply to {verb} from {peer[0]}:{peer[1]} within {timeout:g} s")
        self.peer = peer
        self.verb = verb
        self.timeout = timeout


class RemoteError(WidecolError):
    """The peer's handler failed, or the peer has no handler for the verb; `detail` is its message."""

    def __init__(self, peer: Address, verb: str, detail: str) -> None:
        super().__init__(f"{verb} failed on {peer[0]}:{peer[1]}: {detail}")
        self.peer = peer
        self.verb = verb
        self.detail = detail


@dataclass(frozen=True)
class VerbCounts:
    messages: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class MessagingStatistics:
    """A snapshot of one node's messaging counters. Replies are counted under "<verb>.reply"."""

    sent: Mapping[str, VerbCounts] = field(default_factory=dict)
    received: Mapping[str, VerbCounts] = field(default_factory=dict)
    dropped: int = 0  # droppable messages refused because the peer's queue was full
    expired: int = 0  # queued messages discarded unsent after their deadline
    rejected: int = 0  # inbound frames refused (bad frame, bad HMAC, other cluster); connection closed
    rejected_by_reason: Mapping[str, int] = field(default_factory=dict)
    timeouts: int = 0  # requests that got no reply in time
    reconnects: int = 0  # outbound connections opened after an earlier one to the same peer
    connect_failures: int = 0
    unmatched_replies: int = 0  # replies to no waiting request (late, or forged)
    unknown_verbs: int = 0
    handler_errors: int = 0
    queued: int = 0  # messages waiting in all peers' queues now


@dataclass(slots=True)
class _Outgoing:
    verb_key: str
    frame: bytes
    deadline: float


class _SendQueue:
    """A FIFO bounded by message count and bytes; one message is always admitted into an empty queue."""

    def __init__(self, max_messages: int, max_bytes: int) -> None:
        self._items: deque[_Outgoing] = deque()
        self._bytes = 0
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._not_full = trio.lowlevel.ParkingLot()
        self._not_empty = trio.lowlevel.ParkingLot()

    def __len__(self) -> int:
        return len(self._items)

    def _has_room(self, size: int) -> bool:
        if not self._items:
            return True
        return len(self._items) < self._max_messages and self._bytes + size <= self._max_bytes

    def put_nowait(self, item: _Outgoing) -> bool:
        """Queue `item` if there is room and nobody is waiting for room; return whether it was queued."""
        if len(self._not_full) or not self._has_room(len(item.frame)):
            return False
        self._append(item)
        return True

    async def put(self, item: _Outgoing) -> None:
        """Queue `item`, waiting (FIFO among waiters) until there is room."""
        while not self._has_room(len(item.frame)):
            await self._not_full.park()
        self._append(item)
        await trio.lowlevel.checkpoint()

    def _append(self, item: _Outgoing) -> None:
        self._items.append(item)
        self._bytes += len(item.frame)
        self._not_empty.unpark_all()

    def get_nowait(self) -> _Outgoing | None:
        """The next item, or None if the queue is empty."""
        if not self._items:
            return None
        item = self._items.popleft()
        self._bytes -= len(item.frame)
        self._not_full.unpark()
        return item

    async def get(self) -> _Outgoing:
        while not self._items:
            await self._not_empty.park()
        item = self._items.popleft()
        self._bytes -= len(item.frame)
        self._not_full.unpark()
        return item


@dataclass(slots=True)
class _Pending:
    peer: Address
    event: trio.Event
    body: Any = None
    error: bool = False


class _Service:
    """Transport-independent half of a messaging endpoint: queues, requests, dispatch, counters."""

    def __init__(
        self,
        address: Address,
        cluster: str,
        secret: bytes | None = None,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        queue_messages: int = 1024,
        queue_bytes: int = 64 * 1024 * 1024,
        message_ttl: float = 10.0,
        backoff_initial: float = 0.05,
        backoff_max: float = 4.0,
        max_concurrent_handlers: int = 256,
    ) -> None:
        self.address: Address = (address[0], address[1])
        self.codec = FrameCodec(cluster, secret, max_frame_size)
        self._queue_messages = queue_messages
        self._queue_bytes = queue_bytes
        self._message_ttl = message_ttl
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._handler_slots = trio.Semaphore(max_concurrent_handlers)
        self._handlers: dict[str, Handler] = {}
        self._unreachable: list[UnreachableListener] = []
        self._backing_off: dict[Address, trio.Event] = {}  # peer -> set to end its writer's backoff early
        self._pending: dict[int, _Pending] = {}
        self._next_request_id = 1
        self._queues: dict[Address, _SendQueue] = {}
        self._nursery: trio.Nursery | None = None
        self._cancel_scope: trio.CancelScope | None = None
        self._sent: dict[str, list[int]] = {}
        self._received: dict[str, list[int]] = {}
        self._rejected: dict[str, int] = {}
        self._counters = dict.fromkeys(
            ["dropped", "expired", "timeouts", "reconnects", "connect_failures", "unmatched_replies",
             "unknown_verbs", "handler_errors"],
            0,
        )

    # -- public interface -------------------------------------------------------------------------------------

    def on(self, verb: str, handler: Handler) -> None:
        """Register `handler` for `verb`, replacing any earlier one. Applies to messages dispatched from now on."""
        self._handlers[verb] = handler

    def on_unreachable(self, listener: UnreachableListener) -> None:
        """Call `listener(peer)` whenever the connection to `peer` is lost (EOF, reset, failed write) or a
        connect to it fails (refused, timed out). A hint, not a verdict: a restarting peer refuses for a moment.
        Not called when this service stops."""
        self._unreachable.append(listener)

    def _peer_unreachable(self, peer: Address) -> None:
        for listener in self._unreachable:
            listener(peer)

    async def send(self, peer: Address, verb: str, body: Any = None, droppable: bool = False) -> bool:
        """Queue a one-way message to `peer`. Returns True once queued, False if it was droppable and the
        peer's queue was full (counted in `dropped`). A non-droppable message waits for room. Delivery is not
        guaranteed: the message is discarded if it cannot be written within `message_ttl`."""
        message = Message(self.codec.cluster, self.address, verb, 0, body)
        return await self._enqueue(peer, message, droppable, trio.current_time() + self._message_ttl)

    async def request(self, peer: Address, verb: str, body: Any = None, timeout: float = 10.0) -> Any:
        """Send a request to `peer` and return the body of its reply. Raises RequestTimeout if no reply arrives
        within `timeout` seconds (waiting for queue room included), RemoteError if the peer's handler failed."""
        peer = (peer[0], peer[1])
        request_id = self._next_request_id
        self._next_request_id += 1
        pending = _Pending(peer, trio.Event())
        self._pending[request_id] = pending
        try:
            with trio.move_on_after(timeout) as scope:
                message = Message(self.codec.cluster, self.address, verb, request_id, body)
                await self._enqueue(peer, message, False, trio.current_time() + timeout)
                await pending.event.wait()
        finally:
            del self._pending[request_id]
        if scope.cancelled_caught:
            self._counters["timeouts"] += 1
            raise RequestTimeout(peer, verb, timeout)
        if pending.error:
            raise RemoteError(peer, verb, str(pending.body))
        return pending.body

    def close(self) -> None:
        """Stop the service: `run` returns, connections close, queued messages are discarded."""
        if self._cancel_scope is not None:
            self._cancel_scope.cancel()

    def statistics(self) -> MessagingStatistics:
        """A consistent snapshot of the counters (copied; later traffic does not change it)."""
        return MessagingStatistics(
            sent={k: VerbCounts(*v) for k, v in self._sent.items()},
            received={k: VerbCounts(*v) for k, v in self._received.items()},
            rejected=sum(self._rejected.values()),
            rejected_by_reason=dict(self._rejected),
            queued=sum(len(q) for q in self._queues.values()),
            **self._counters,
        )

    # -- for transports ---------------------------------------------------------------------------------------

    def _started(self, nursery: trio.Nursery, scope: trio.CancelScope) -> None:
        self._nursery = nursery
        self._cancel_scope = scope

    def _stopped(self) -> None:
        self._nursery = None
        self._cancel_scope = None
        self._queues.clear()

    async def _enqueue(self, peer: Address, message: Message, droppable: bool, deadline: float) -> bool:
        if self._nursery is None:
            raise RuntimeError("messaging service is not running")
        peer = (peer[0], peer[1])
        key = f"{message.verb}.reply" if message.reply else message.verb
        item = _Outgoing(key, self.codec.encode(message), deadline)
        queue = self._queues.get(peer)
        if queue is None:
            queue = self._queues[peer] = _SendQueue(self._queue_messages, self._queue_bytes)
            self._nursery.start_soon(self._run_peer, peer, queue)
        if droppable:
            if not queue.put_nowait(item):
                self._counters["dropped"] += 1
                return False
            await trio.lowlevel.checkpoint()
            return True
        await queue.put(item)
        return True

    async def _next_to_send(self, queue: _SendQueue) -> _Outgoing:
        """The next queued message still within its deadline; expired ones are counted and discarded."""
        while True:
            item = await queue.get()
            if item.deadline >= trio.current_time():
                return item
            self._counters["expired"] += 1

    def _expired(self, item: _Outgoing) -> bool:
        if item.deadline < trio.current_time():
            self._counters["expired"] += 1
            return True
        return False

    def _backoff(self, previous: float) -> float:
        if previous <= 0:
            return self._backoff_initial
        return min(previous * 2, self._backoff_max)

    def _count_sent(self, item: _Outgoing) -> None:
        counts = self._sent.setdefault(item.verb_key, [0, 0])
        counts[0] += 1
        counts[1] += len(item.frame)

    def _count_rejected(self, exc: FrameRejected, origin: object) -> None:
        self._rejected[exc.reason] = self._rejected.get(exc.reason, 0) + 1
        log.warning("%s: dropped internode frame from %s: %s", self._name(), origin, exc.message)

    def _name(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"

    async def _run_peer(self, peer: Address, queue: _SendQueue) -> None:
        raise NotImplementedError

    async def _dispatch(self, message: Message, size: int) -> None:
        """Act on one decoded inbound message. May wait for a handler slot (backpressure on the sender)."""
        key = f"{message.verb}.reply" if message.reply else message.verb
        if self._backing_off:
            waiting = self._backing_off.pop(message.sender, None)
            if waiting is not None:  # it talks to us, so it listens again: reconnect now
                waiting.set()
        counts = self._received.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += size
        if message.reply:
            pending = self._pending.get(message.request_id)
            if pending is None or pending.peer != message.sender or pending.event.is_set():
                self._counters["unmatched_replies"] += 1
                return
            pending.body = message.body
            pending.error = message.error
            pending.event.set()
            return
        handler = self._handlers.get(message.verb)
        if handler is None:
            self._counters["unknown_verbs"] += 1
            log.warning("%s: no handler for verb %r from %s", self._name(), message.verb, message.sender)
            if message.request_id:
                await self._reply(message, f"unknown verb {message.verb!r}", error=True)
            return
        assert self._nursery is not None
        await self._handler_slots.acquire()
        self._nursery.start_soon(self._handle, handler, message)

    async def _handle(self, handler: Handler, message: Message) -> None:
        try:
            try:
                result = await handler(message)
            except Exception as exc:  # a handler's failure is the requester's answer, not this node's crash
                self._counters["handler_errors"] += 1
                log.exception("%s: handler for %r failed", self._name(), message.verb)
                if message.request_id:
                    await self._reply(message, f"{type(exc).__name__}: {exc}", error=True)
                return
            if message.request_id:
                await self._reply(message, result)
        finally:
            self._handler_slots.release()

    async def _reply(self, request: Message, body: Any, error: bool = False) -> None:
        reply = Message(self.codec.cluster, self.address, request.verb, request.request_id, body, True, error)
        try:
            await self._enqueue(request.sender, reply, True, trio.current_time() + self._message_ttl)
        except (TypeError, ValueError) as exc:
            self._counters["handler_errors"] += 1
            log.error("%s: cannot encode the reply to %r: %s", self._name(), request.verb, exc)
            detail = Message(self.codec.cluster, self.address, request.verb, request.request_id,
                             f"unencodable reply: {exc}", True, True)
            await self._enqueue(request.sender, detail, True, trio.current_time() + self._message_ttl)


class Messaging(_Service):
    """The internode messaging service of one node, over TCP. Construct, then `await nursery.start(m.run)`.

    `address` is (host, internode port); port 0 picks a free port, and `address` holds the real one once `run`
    has started. `bind_source` binds outbound connections to this node's host. See `_Service` for options.
    """

    def __init__(
        self,
        address: Address,
        cluster: str,
        secret: bytes | None = None,
        *,
        bind_source: bool = True,
        connect_timeout: float = 5.0,
        **options: Any,
    ) -> None:
        super().__init__(address, cluster, secret, **options)
        self._bind_source = bind_source
        self._connect_timeout = connect_timeout

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen and serve until `close` or cancellation. Started (for `nursery.start`) once listening."""
        try:
            async with trio.open_nursery() as nursery:
                self._started(nursery, nursery.cancel_scope)
                serve = functools.partial(trio.serve_tcp, host=self.address[0] or None)
                listeners = await nursery.start(serve, self._serve_connection, self.address[1])
                port = listeners[0].socket.getsockname()[1]
                self.address = (self.address[0], port)
                log.info("internode messaging listening on %s", self._name())
                task_status.started()
        finally:
            self._stopped()

    async def _serve_connection(self, stream: trio.SocketStream) -> None:
        try:
            origin: object = stream.socket.getpeername()
        except OSError:
            origin = "?"
        decoder = self.codec.decoder()
        async with stream:
            try:
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    decoder.feed(data)
                    while (frame := decoder.next_frame()) is not None:
                        await self._dispatch(*frame)
            except FrameRejected as exc:
                self._count_rejected(exc, origin)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                log.debug("%s: inbound connection from %s lost: %s", self._name(), origin, exc)

    async def _connect(self, peer: Address) -> trio.SocketStream | None:
        local = self.address[0] if self._bind_source and self.address[0] not in ("", "0.0.0.0", "::") else None
        with trio.move_on_after(self._connect_timeout):
            try:
                return await trio.open_tcp_stream(peer[0], peer[1], local_address=local)
            except OSError as exc:
                log.debug("%s: cannot connect to %s:%s: %s", self._name(), peer[0], peer[1], exc)
                return None
        return None

    async def _run_peer(self, peer: Address, queue: _SendQueue) -> None:
        """Drain `peer`'s queue over one connection, reconnecting with exponential backoff. Frames queued
        together are written together (up to _BATCH_BYTES); a batch whose write failed is retried whole on the
        next connection, so the peer may see a frame twice only if the old connection delivered it before
        failing."""
        stream: trio.SocketStream | None = None
        closed = trio.Event()
        ever_connected = False
        backoff = 0.0
        async with trio.open_nursery() as nursery:
            while True:
                batch = [await self._next_to_send(queue)]
                size = len(batch[0].frame)
                while size < _BATCH_BYTES and (extra := queue.get_nowait()) is not None:
                    if not self._expired(extra):
                        batch.append(extra)
                        size += len(extra.frame)
                while True:
                    if stream is not None and closed.is_set():
                        stream = None
                    if stream is None:
                        stream = await self._connect(peer)
                        if stream is None:
                            self._counters["connect_failures"] += 1
                            self._peer_unreachable(peer)
                            backoff = self._backoff(backoff)
                            retry = self._backing_off[peer] = trio.Event()
                            with trio.move_on_after(backoff):
                                await retry.wait()
                            self._backing_off.pop(peer, None)
                            batch = [item for item in batch if not self._expired(item)]
                            if not batch:
                                break
                            continue
                        if ever_connected:
                            self._counters["reconnects"] += 1
                        ever_connected = True
                        backoff = 0.0
                        closed = trio.Event()
                        lost = functools.partial(self._peer_unreachable, peer)
                        nursery.start_soon(_watch_eof, stream, closed, lost)
                    try:
                        await stream.send_all(b"".join(item.frame for item in batch))
                    except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                        log.debug("%s: connection to %s:%s lost: %s", self._name(), peer[0], peer[1], exc)
                        self._peer_unreachable(peer)
                        await stream.aclose()
                        stream = None
                        continue
                    for item in batch:
                        self._count_sent(item)
                    break


async def _watch_eof(stream: trio.SocketStream, closed: trio.Event, lost: Callable[[], None]) -> None:
    """Outbound connections carry no inbound data: EOF or an error means the peer went away; close it and say
    so (`lost`). A connection we closed ourselves is not reported."""
    try:
        while await stream.receive_some(4096):
            pass
        lost()
    except trio.ClosedResourceError:
        pass
    except (trio.BrokenResourceError, OSError):
        lost()
    finally:
        closed.set()
        await stream.aclose()
