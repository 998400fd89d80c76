"""Sans-IO connection state machines for the CQL native protocol, server side and client side (h11 style).

How this works: the I/O edge pushes received bytes with `receive_data`, then pulls events with `next_event`
until it returns None, and writes whatever bytes `send` returns. Nothing here touches a socket or a clock.

Server side: the first frame fixes the connection's version; a frame of a version we do not speak (anything
but 3 and 4) is answered with Cassandra's "Invalid or unsupported protocol version (N); supported versions
are (3/v3, 4/v4)" ERROR on the client's stream, in version 4 when N is higher and in N itself for v1/v2; the
connection is then closed (cassandra-driver reconnects one version lower when it sees that text). Before
STARTUP only OPTIONS is allowed. STARTUP may ask for COMPRESSION=lz4: incoming frames may then be compressed,
and every frame we send after our answer to STARTUP (READY or AUTHENTICATE) is compressed. A bad frame header
(garbage, oversize, wrong direction, version change) loses the byte stream: the answer is a `Violation` with
`close=True`. A whole frame whose body is bad (unknown opcode, truncated body, request out of order) gets a
ProtocolError on its stream and the connection goes on. Only widecol.errors exceptions ever leave this module.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass

from widecol.errors import ProtocolError
from widecol.net.native import codec
from widecol.net.native.frame import (
    DEFAULT_MAX_FRAME_SIZE,
    FLAG_COMPRESSION,
    FLAG_CUSTOM_PAYLOAD,
    FLAG_TRACING,
    FLAG_WARNING,
    OPCODES,
    Frame,
    FrameDecoder,
    FrameError,
    compress,
    decompress,
    encode_frame,
)
from widecol.net.native.messages import (
    REQUESTS,
    Authenticate,
    AuthResponse,
    AuthSuccess,
    Options,
    Ready,
    Startup,
    decode_with,
)
from widecol.net.native.results import RESPONSES, ErrorResponse

log = logging.getLogger(__name__)

SUPPORTED_COMPRESSIONS = ("lz4",)
MAX_STREAMS = 32768


@dataclass(frozen=True)
class Request:
    """A decoded request: answer it with `ServerConnection.send(stream, response)`."""

    stream: int
    version: int
    message: object
    tracing: bool = False
    custom_payload: dict[str, bytes | None] | None = None


@dataclass(frozen=True)
class Response:
    """A decoded response (stream >= 0) or pushed EVENT (stream -1)."""

    stream: int
    message: object
    tracing_id: uuid.UUID | None = None
    warnings: list[str] | None = None
    custom_payload: dict[str, bytes | None] | None = None


@dataclass(frozen=True)
class Violation:
    """The peer broke the protocol. Write `data` (an ERROR frame, possibly empty); close if `close`."""

    error: ProtocolError
    data: bytes
    close: bool


def default_supported() -> dict[str, list[str]]:
    """The SUPPORTED options a server built on this codec can offer."""
    return {
        "CQL_VERSION": ["3.4.5"],
        "COMPRESSION": list(SUPPORTED_COMPRESSIONS),
        "PROTOCOL_VERSIONS": ["3/v3", "4/v4"],
    }


def _strip_prefix(body: bytes, flags: int, version: int, response: bool) -> tuple[codec.Reader, dict]:
    """Reads the flag-driven prefix of a body: tracing id (responses), warnings, custom payload."""
    r = codec.Reader(body)
    extra: dict = {}
    if response and flags & FLAG_TRACING:
        extra["tracing_id"] = r.uuid()
    if version >= 4 and response and flags & FLAG_WARNING:
        extra["warnings"] = r.string_list()
    if version >= 4 and flags & FLAG_CUSTOM_PAYLOAD:
        extra["custom_payload"] = r.bytes_map()
    return r, extra


class _Side:
    """What both sides share: the decoder, the version, the compression switch."""

    def __init__(self, max_frame_size: int, expect_response: bool) -> None:
        self.max_frame_size = max_frame_size
        self.decoder = FrameDecoder(max_frame_size, expect_response)
        self.version: int | None = None
        self.compression: str | None = None  # negotiated: incoming compressed frames are accepted
        self.compress_out = False  # frames we send are compressed

    def _body(self, frame: Frame) -> bytes:
        if not frame.flags & FLAG_COMPRESSION:
            return frame.body
        if self.compression is None:
            raise ProtocolError("compressed frame received but no compression was negotiated")
        return decompress(frame.body, self.max_frame_size)

    def _frame(
        self, version: int, stream: int, opcode: int, body: bytes, flags: int, response: bool
    ) -> bytes:
        if self.compress_out and body and version == self.version:
            body, flags = compress(body), flags | FLAG_COMPRESSION
        return encode_frame(Frame(version, flags, stream, opcode, body, response))


class ServerConnection(_Side):
    """The server's view of one client connection. States: EXPECT_STARTUP, STARTING (STARTUP received, not yet
    answered), AUTHENTICATING, READY, CLOSED."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        super().__init__(max_frame_size, expect_response=False)
        self.state = "EXPECT_STARTUP"

    def receive_data(self, data: bytes) -> None:
        """Buffers bytes from the client. Ignored once the connection is CLOSED."""
        if self.state != "CLOSED":
            self.decoder.feed(data)

    def next_event(self) -> Request | Violation | None:
        """The next request, a protocol violation to answer, or None when more bytes are needed (or closed)."""
        if self.state == "CLOSED":
            return None
        try:
            frame = self.decoder.next_frame()
        except FrameError as exc:
            return self._close(exc, exc.stream, exc.version)
        if frame is None:
            return None
        if self.version is None:
            self.version = frame.version
        elif frame.version != self.version:
            error = ProtocolError(
                f"Invalid message version. Got {frame.version} but previous messages on "
                f"this connection had version {self.version}"
            )
            return self._close(error, frame.stream, self.version)
        try:
            return self._request(frame)
        except ProtocolError as exc:
            return Violation(exc, self.send_error(frame.stream, exc), close=False)

    def _request(self, frame: Frame) -> Request:
        name = OPCODES.get(frame.opcode, f"0x{frame.opcode:02x}")
        cls = REQUESTS.get(frame.opcode)
        if cls is None:
            raise ProtocolError(f"Unknown or unexpected request opcode {name}")
        body = self._body(frame)
        r, extra = _strip_prefix(body, frame.flags, frame.version, response=False)
        message = decode_with(cls, body[r.pos :], frame.version)
        if isinstance(message, Options):
            pass
        elif self.state == "EXPECT_STARTUP":
            if not isinstance(message, Startup):
                raise ProtocolError(f"Unexpected message {name}, expecting STARTUP or OPTIONS")
            self._startup(message)
        elif isinstance(message, Startup):
            raise ProtocolError("Unexpected message STARTUP, the connection is already initialized")
        elif self.state == "AUTHENTICATING" and not isinstance(message, AuthResponse):
            raise ProtocolError(f"Unexpected message {name}, expecting AUTH_RESPONSE")
        elif self.state != "AUTHENTICATING" and isinstance(message, AuthResponse):
            raise ProtocolError("Unexpected message AUTH_RESPONSE, no authentication in progress")
        return Request(
            frame.stream,
            frame.version,
            message,
            bool(frame.flags & FLAG_TRACING),
            extra.get("custom_payload"),
        )

    def _startup(self, message: Startup) -> None:
        wanted = message.options.get("COMPRESSION")
        if wanted is not None:
            if wanted.lower() not in SUPPORTED_COMPRESSIONS:
                raise ProtocolError(f"Unknown compression algorithm: {wanted}")
            self.compression = wanted.lower()
        self.state = "STARTING"

    def _close(self, error: ProtocolError, stream: int | None, version: int) -> Violation:
        self.state = "CLOSED"
        log.debug("closing native connection: %s", error)
        data = b"" if stream is None else self._error_bytes(stream, error, version)
        return Violation(error, data, close=True)

    def send(
        self,
        stream: int,
        response: object,
        *,
        tracing_id: uuid.UUID | None = None,
        warnings: list[str] | None = None,
        custom_payload: dict[str, bytes | None] | None = None,
    ) -> bytes:
        """The bytes of one response frame on `stream`, in the connection's version; advances the state machine
        (READY/AUTHENTICATE/AUTH_SUCCESS end the STARTUP exchange and switch compression on)."""
        version = self.version or 4
        flags, prefix = 0, []
        if tracing_id is not None:
            flags |= FLAG_TRACING
            prefix.append(tracing_id.bytes)
        if warnings and version >= 4:
            flags |= FLAG_WARNING
            prefix.append(codec.write_string_list(warnings))
        if custom_payload and version >= 4:
            flags |= FLAG_CUSTOM_PAYLOAD
            prefix.append(codec.write_bytes_map(custom_payload))
        body = b"".join(prefix) + response.encode(version)  # type: ignore[attr-defined]
        data = self._frame(version, stream, response.OPCODE, body, flags, True)  # type: ignore[attr-defined]
        if self.state == "STARTING" and isinstance(response, Ready | Authenticate):
            self.state = "READY" if isinstance(response, Ready) else "AUTHENTICATING"
            self.compress_out = self.compression is not None
        elif self.state == "AUTHENTICATING" and isinstance(response, AuthSuccess):
            self.state = "READY"
        return data

    def send_error(self, stream: int, exc: Exception) -> bytes:
        """An ERROR frame for any exception (see ErrorResponse.from_exception)."""
        return self._error_bytes(stream, exc, self.version or 4)

    def _error_bytes(self, stream: int, exc: Exception, version: int) -> bytes:
        body = ErrorResponse.from_exception(exc).encode(version)
        return self._frame(version, stream, ErrorResponse.OPCODE, body, 0, True)


class ClientConnection(_Side):
    """Our client's view of one connection: stream ids allocated here, responses matched back to them."""

    def __init__(self, version: int = 4, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        super().__init__(max_frame_size, expect_response=True)
        self.version = version
        self._pending: dict[int, object] = {}
        self._next_stream = 0
        self._requested_compression: str | None = None

    def in_flight(self) -> int:
        return len(self._pending)

    def send(
        self, request: object, *, tracing: bool = False, custom_payload: dict[str, bytes | None] | None = None
    ) -> tuple[int, bytes]:
        """Allocates a free stream id and returns it with the request's frame bytes."""
        if len(self._pending) >= MAX_STREAMS:
            raise ProtocolError("all stream ids are in use")
        while self._next_stream in self._pending:
            self._next_stream = (self._next_stream + 1) % MAX_STREAMS
        stream = self._next_stream
        self._next_stream = (stream + 1) % MAX_STREAMS
        if isinstance(request, Startup):
            wanted = request.options.get("COMPRESSION")
            self._requested_compression = wanted.lower() if wanted else None
        assert self.version is not None
        flags, body = (FLAG_TRACING if tracing else 0), b""
        if custom_payload and self.version >= 4:
            flags |= FLAG_CUSTOM_PAYLOAD
            body = codec.write_bytes_map(custom_payload)
        body += request.encode(self.version)  # type: ignore[attr-defined]
        self._pending[stream] = request
        return stream, self._frame(self.version, stream, request.OPCODE, body, flags, False)  # type: ignore

    def receive_data(self, data: bytes) -> None:
        self.decoder.feed(data)

    def next_event(self) -> Response | None:
        """The next response or event, or None when more bytes are needed. Raises ProtocolError (a
        widecol error) when the server breaks the protocol."""
        frame = self.decoder.next_frame()
        if frame is None:
            return None
        cls = RESPONSES.get(frame.opcode)
        if cls is None:
            raise ProtocolError(f"unknown response opcode 0x{frame.opcode:02x}")
        body = self._body(frame)
        r, extra = _strip_prefix(body, frame.flags, frame.version, response=True)
        message = decode_with(cls, body[r.pos :], frame.version)
        if frame.stream >= 0:
            request = self._pending.pop(frame.stream, None)
            if request is None:
                raise ProtocolError(f"response on stream {frame.stream}, which has no request in flight")
            if isinstance(request, Startup) and isinstance(message, Ready | Authenticate):
                self.compression = self._requested_compression
                self.compress_out = self.compression is not None
        return Response(frame.stream, message, **extra)
