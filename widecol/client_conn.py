"""One client connection to one host over the CQL native protocol, on trio; and the client's connection errors.

How this works: `Connection.open` connects a TCP stream, says STARTUP (asking for LZ4 when wanted) in protocol
v4 and, when the server answers "unsupported protocol version", reconnects in v3. The sans-IO
`ClientConnection` allocates stream ids and matches response frames back to them. Each request parks on a
`_Slot` (a trio.Event and the answer) keyed by its stream id; one reader task per connection feeds received
bytes to the codec and fills the slots, so many requests are in flight at once and each is woken with its own
answer. Writes go through a lock (trio streams allow one `send_all` at a time). When the stream breaks or the
server breaks the protocol, every waiting request gets `ConnectionLost` and the connection is marked dead; the
client decides whether to reconnect. The reader runs as a trio system task so that a client can be made by a
plain `await` (no nursery to pass); it catches every failure of the stream and hands it to the waiting
requests, so nothing escapes it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import trio

from widecol.errors import ProtocolError
from widecol.net.native.connection import ClientConnection, Response
from widecol.net.native.messages import Authenticate, Ready, Startup
from widecol.net.native.results import ErrorResponse

log = logging.getLogger(__name__)

DEFAULT_PORT = 9042
RECV_SIZE = 65536
VERSIONS = (4, 3)  # tried in this order


class ClientConnectionError(ConnectionError):
    """Base of the client's own connection failures (not errors the server answered with)."""


class ConnectionLost(ClientConnectionError):
    """The connection to `host` broke (or the server broke the protocol) while a request was in flight: the
    request may or may not have been applied."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"connection to {host} lost: {reason}")
        self.host = host
        self.reason = reason


class NoHostAvailable(ClientConnectionError):
    """No contact point could be connected. `errors` maps each host tried, in order, to why it failed."""

    def __init__(self, errors: dict[str, BaseException]) -> None:
        tried = "; ".join(f"{host}: {_describe(exc)}" for host, exc in errors.items())
        super().__init__(f"no host available ({tried or 'no contact points given'})")
        self.errors = errors


class OperationTimedOut(TimeoutError):
    """No answer from `host` within the client's timeout. The request may still be applied."""

    def __init__(self, host: str, timeout: float) -> None:
        super().__init__(f"no answer from {host} within {timeout:g}s")
        self.host = host
        self.timeout = timeout


def _describe(exc: BaseException) -> str:
    """One line for an exception; trio's "all attempts to connect failed" is replaced by why they failed."""
    cause = exc.__cause__
    if isinstance(exc, OSError) and cause is not None:
        reasons = cause.exceptions if isinstance(cause, BaseExceptionGroup) else (cause,)
        return "; ".join(dict.fromkeys(_describe(r) for r in reasons))
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    text = str(exc) or type(exc).__name__
    return text if text.startswith(type(exc).__name__) else f"{type(exc).__name__}: {text}"


def parse_host(text: str) -> tuple[str, int]:
    """(address, port) of "host", "host:port", "[v6]" or "[v6]:port"; the port defaults to 9042."""
    text = text.strip()
    if text.startswith("["):
        address, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        address, port = text.split(":")
    else:
        address, port = text, ""
    if not address:
        raise ValueError(f"no host in {text!r}")
    try:
        return address, int(port) if port else DEFAULT_PORT
    except ValueError:
        raise ValueError(f"bad port in {text!r}") from None


@dataclass
class _Slot:
    """Where the answer to one stream lands."""

    event: trio.Event = field(default_factory=trio.Event)
    response: Response | None = None
    error: BaseException | None = None


class Connection:
    """One open connection. Use `request` from any number of tasks; `closed` once it is dead."""

    def __init__(self, host: str, stream: trio.SocketStream, version: int) -> None:
        self.host = host
        self.version = version
        self.keyspace: str | None = None  # the keyspace set by USE on this connection
        self._stream = stream
        self._codec = ClientConnection(version)
        self._slots: dict[int, _Slot] = {}
        self._send_lock = trio.Lock()
        self._error: ConnectionLost | None = None

    @property
    def closed(self) -> bool:
        return self._error is not None

    def in_flight(self) -> int:
        """Stream ids in use: requests sent and not yet answered, including ones whose caller gave up."""
        return self._codec.in_flight()

    @classmethod
    async def open(cls, host: str, *, compression: bool = False, timeout: float = 10.0) -> Connection:
        """Connect to HOST ("address[:port]") and finish the STARTUP exchange, in v4 or else v3. Raises
        OSError (refused, unreachable), OperationTimedOut, or the server's error for STARTUP."""
        address, port = parse_host(host)
        last: Exception | None = None
        for version in VERSIONS:
            with trio.move_on_after(timeout) as scope:
                stream = await trio.open_tcp_stream(address, port)
                conn = cls(host, stream, version)
                trio.lowlevel.spawn_system_task(conn._read_loop, name=f"widecol.client reader {host}")
                try:
                    options = {"CQL_VERSION": "3.4.5"}
                    if compression:
                        options["COMPRESSION"] = "lz4"
                    response = await conn.request(Startup(options), timeout=timeout)
                except BaseException:
                    await conn.aclose()
                    raise
                message = response.message
                if isinstance(message, ErrorResponse) and "unsupported protocol version" in message.message:
                    log.info("%s refuses protocol v%d, stepping down", host, version)
                    last = message.to_exception()
                    await conn.aclose()
                    continue
                if isinstance(message, ErrorResponse):
                    await conn.aclose()
                    raise message.to_exception()
                if isinstance(message, Authenticate):
                    await conn.aclose()
                    raise ProtocolError(f"{host} asks for authentication ({message.authenticator}), "
                                        "which the client does not support")
                if not isinstance(message, Ready):
                    await conn.aclose()
                    raise ProtocolError(f"{host} answered STARTUP with {type(message).__name__}")
                return conn
            if scope.cancelled_caught:
                raise OperationTimedOut(host, timeout)
        assert last is not None
        raise last

    async def request(self, message: object, *, timeout: float) -> Response:
        """Sends MESSAGE and waits for its answer (an ERROR is returned, not raised). Raises ConnectionLost
        when the connection is or goes dead, OperationTimedOut when no answer came within TIMEOUT."""
        if self._error is not None:
            raise self._error
        try:
            stream, data = self._codec.send(message)
        except ProtocolError as exc:  # every stream id in use
            raise ConnectionLost(self.host, str(exc)) from exc
        slot = self._slots[stream] = _Slot()
        try:
            with trio.move_on_after(timeout) as scope:
                try:
                    async with self._send_lock:
                        await self._stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    self._fail(f"send failed: {_describe(exc)}")
                await slot.event.wait()
            if scope.cancelled_caught:
                raise OperationTimedOut(self.host, timeout)
        finally:
            self._slots.pop(stream, None)  # a late answer to an abandoned stream is dropped by the reader
        if slot.error is not None:
            raise slot.error
        assert slot.response is not None
        return slot.response

    async def _read_loop(self) -> None:
        try:
            while True:
                data = await self._stream.receive_some(RECV_SIZE)
                if not data:
                    self._fail("the server closed the connection")
                    return
                self._codec.receive_data(bytes(data))
                while (response := self._codec.next_event()) is not None:
                    slot = self._slots.get(response.stream)
                    if slot is not None:
                        slot.response = response
                        slot.event.set()
        except trio.ClosedResourceError:
            self._fail("the connection was closed")
        except (trio.BrokenResourceError, OSError) as exc:
            self._fail(_describe(exc))
        except ProtocolError as exc:
            log.warning("%s broke the native protocol: %s", self.host, exc)
            self._fail(f"protocol error: {exc}")
            await trio.aclose_forcefully(self._stream)
        except Exception as exc:  # reported to every waiting request, never lost
            log.exception("client reader for %s failed", self.host)
            self._fail(_describe(exc))
            await trio.aclose_forcefully(self._stream)

    def _fail(self, reason: str) -> None:
        if self._error is None:
            self._error = ConnectionLost(self.host, reason)
        for slot in self._slots.values():
            if not slot.event.is_set():
                slot.error = self._error
                slot.event.set()

    async def aclose(self) -> None:
        """Closes the stream; requests still waiting get ConnectionLost."""
        self._fail("the client closed the connection")
        await trio.aclose_forcefully(self._stream)
