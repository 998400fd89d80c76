"""The frame layer of the CQL native protocol, versions 3 and 4 (spec section 2), sans-IO.

How this works: a frame is a 9-byte header (version byte whose high bit marks a response, flags, signed 2-byte
stream id, opcode, 4-byte body length) then the body. `FrameDecoder` buffers whatever bytes arrive and hands
out whole frames; it checks the version and the announced length as soon as the header is in, so an oversize
or foreign frame is refused before its body is buffered (memory stays bounded by the limit). Versions 1 and 2
(8-byte header, 1-byte stream) are only parsed far enough to answer them with a protocol error. Compression is
LZ4 as v4 does it: a 4-byte big-endian uncompressed length, then an LZ4 block.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import lz4.block

from widecol.errors import ProtocolError

SUPPORTED_VERSIONS = (3, 4)
MAX_VERSION = 4
RESPONSE_BIT = 0x80
VERSION_MASK = 0x7F
HEADER_SIZE = 9
DEFAULT_MAX_FRAME_SIZE = 256 * 1024 * 1024

FLAG_COMPRESSION = 0x01
FLAG_TRACING = 0x02
FLAG_CUSTOM_PAYLOAD = 0x04
FLAG_WARNING = 0x08
FLAG_USE_BETA = 0x10

OPCODES = {
    0x00: "ERROR",
    0x01: "STARTUP",
    0x02: "READY",
    0x03: "AUTHENTICATE",
    0x05: "OPTIONS",
    0x06: "SUPPORTED",
    0x07: "QUERY",
    0x08: "RESULT",
    0x09: "PREPARE",
    0x0A: "EXECUTE",
    0x0B: "REGISTER",
    0x0C: "EVENT",
    0x0D: "BATCH",
    0x0E: "AUTH_CHALLENGE",
    0x0F: "AUTH_RESPONSE",
    0x10: "AUTH_SUCCESS",
}

_HEADER = struct.Struct(">BBhBi")
_HEADER_V2 = struct.Struct(">BBbBi")
_LENGTH = struct.Struct(">I")


class FrameError(ProtocolError):
    """A frame the decoder cannot accept. `stream` and `version` say where and how to answer (None: nowhere);
    `fatal` says the byte stream is lost and the connection must close after the answer."""

    def __init__(self, message: str, stream: int | None, version: int, fatal: bool) -> None:
        super().__init__(message)
        self.stream = stream
        self.version = version
        self.fatal = fatal


def unsupported_version_message(version: int) -> str:
    """The text Cassandra sends; cassandra-driver steps down a version when it contains
    'unsupported protocol version'."""
    supported = ", ".join(f"{v}/v{v}" for v in SUPPORTED_VERSIONS)
    return f"Invalid or unsupported protocol version ({version}); supported versions are ({supported})"


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame. `body` is as sent: still compressed when `flags` has FLAG_COMPRESSION."""

    version: int
    flags: int
    stream: int
    opcode: int
    body: bytes
    is_response: bool = False


def encode_frame(frame: Frame) -> bytes:
    """The frame's bytes: header then body. Version 1 and 2 frames get their 8-byte header."""
    first = frame.version | (RESPONSE_BIT if frame.is_response else 0)
    if frame.version < 3:
        header = _HEADER_V2.pack(first, frame.flags, frame.stream, frame.opcode, len(frame.body))
    else:
        header = _HEADER.pack(first, frame.flags, frame.stream, frame.opcode, len(frame.body))
    return header + frame.body


def compress(body: bytes) -> bytes:
    """LZ4 as protocol v4 frames carry it: big-endian uncompressed length, then the raw block."""
    return _LENGTH.pack(len(body)) + lz4.block.compress(body, store_size=False)


def decompress(body: bytes, max_size: int) -> bytes:
    """Inverse of `compress`. Raises ProtocolError for a corrupt block or a claimed size over `max_size`."""
    if len(body) < 4:
        raise ProtocolError("compressed body shorter than its 4-byte length prefix")
    size = _LENGTH.unpack_from(body)[0]
    if size > max_size:
        raise ProtocolError(
            f"decompressed body of {size} bytes exceeds the frame size limit of {max_size} bytes"
        )
    if size == 0:
        return b""
    try:
        out = lz4.block.decompress(body[4:], uncompressed_size=size)
    except (lz4.block.LZ4BlockError, ValueError, MemoryError) as exc:
        raise ProtocolError(f"corrupt LZ4 body: {exc}") from None
    if len(out) != size:
        raise ProtocolError("LZ4 body decompressed to the wrong length")
    return out


class FrameDecoder:
    """Turns a byte stream into frames. Feed bytes with `feed`; call `next_frame` until it returns None.

    `expect_response` is True on the client side. Raises FrameError for a bad header; after a fatal one the
    decoder stays broken (every later call raises the same error)."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE, expect_response: bool = False) -> None:
        self.max_frame_size = max_frame_size
        self.expect_response = expect_response
        self._buf = bytearray()
        self._broken: FrameError | None = None

    def feed(self, data: bytes) -> None:
        if self._broken is None:
            self._buf += data

    def buffered(self) -> int:
        return len(self._buf)

    def next_frame(self) -> Frame | None:
        """The next whole frame, or None when more bytes are needed."""
        if self._broken is not None:
            raise self._broken
        buf = self._buf
        if not buf:
            return None
        version = buf[0] & VERSION_MASK
        header_size = 8 if version < 3 else HEADER_SIZE
        if len(buf) < header_size:
            return None
        if version < 3:
            first, flags, stream, opcode, length = _HEADER_V2.unpack_from(buf)
        else:
            first, flags, stream, opcode, length = _HEADER.unpack_from(buf)
        if version not in SUPPORTED_VERSIONS:
            answer = version if version in (1, 2) else MAX_VERSION
            self._fail(unsupported_version_message(version), stream, answer)
        if bool(first & RESPONSE_BIT) != self.expect_response:
            kind = "request" if self.expect_response else "response"
            self._fail(f"unexpected {kind} frame (direction bit wrong)", stream, version)
        if length < 0:
            self._fail(f"negative body length {length}", stream, version)
        if length > self.max_frame_size:
            self._fail(
                f"frame body of {length} bytes exceeds the maximum frame size of {self.max_frame_size} bytes",
                stream,
                version,
            )
        end = header_size + length
        if len(buf) < end:
            return None
        body = bytes(buf[header_size:end])
        del buf[:end]
        return Frame(version, flags, stream, opcode, body, bool(first & RESPONSE_BIT))

    def _fail(self, message: str, stream: int, version: int) -> None:
        self._broken = FrameError(message, stream, version, fatal=True)
        self._buf.clear()
        raise self._broken
