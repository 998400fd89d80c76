"""The internode frame: one message between two widecol nodes, as bytes (sans-IO: no trio, no socket).

How this works. A frame is a fixed 8-byte header, an optional 32-byte HMAC tag, then a msgpack payload:

    magic (2 bytes, b"WC") | version (1 byte) | flags (1 byte) | payload length (4 bytes, big-endian)
    | HMAC-SHA256(secret, header + payload) (32 bytes, only when the cluster has a secret)
    | payload: msgpack array [cluster name, [sender host, sender port], verb, request id, body]

Flags: REPLY (the frame answers request `request id`), ERROR (a reply whose body is the remote failure's
message), AUTH (an HMAC tag follows the header). A node with a secret requires AUTH on every frame and a node
without one refuses it, so a secret is never silently ignored. Request id 0 means one-way (no reply expected).

`FrameCodec.encode` builds frames; `FrameDecoder` is fed bytes as they arrive and returns whole messages. Every
check a peer can fail raises `FrameRejected` (a `ProtocolError` naming the reason); the header is checked as soon
as its 8 bytes arrive, so an oversize length is refused before its payload is buffered. After a rejection the
decoder stays failed: the byte stream has lost its framing or its trust, and the caller closes the connection.
docs/messaging.md describes the layout.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import msgpack

from widecol.errors import ProtocolError

MAGIC = b"WC"
VERSION = 1
HEADER = struct.Struct(">2sBBI")
HEADER_SIZE = HEADER.size  # 8
TAG_SIZE = 32  # HMAC-SHA256

FLAG_REPLY = 0x01
FLAG_ERROR = 0x02
FLAG_AUTH = 0x04
KNOWN_FLAGS = FLAG_REPLY | FLAG_ERROR | FLAG_AUTH

DEFAULT_MAX_FRAME_SIZE = 16 * 1024 * 1024
MAX_REQUEST_ID = 2**63 - 1

# Reasons a frame is rejected (keys of MessagingStatistics.rejected_by_reason).
BAD_MAGIC = "bad_magic"
BAD_VERSION = "bad_version"
BAD_FLAGS = "bad_flags"
OVERSIZE = "oversize"
BAD_HMAC = "bad_hmac"
BAD_PAYLOAD = "bad_payload"
OTHER_CLUSTER = "other_cluster"

Address = tuple[str, int]
"""A node's internode endpoint: (host, port)."""


@dataclass(frozen=True, slots=True)
class Message:
    """One internode message. `request_id` is 0 for one-way messages; a reply carries its request's id."""

    cluster: str
    sender: Address
    verb: str
    request_id: int
    body: Any = None
    reply: bool = False
    error: bool = False


class FrameRejected(ProtocolError):
    """A peer sent a frame we must not apply. `reason` is one of the module's reason constants."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"internode frame rejected ({reason}): {detail}")
        self.reason = reason
        self.detail = detail


class FrameTooLarge(ValueError):
    """Raised locally by `FrameCodec.encode` when a message's payload exceeds the frame size limit."""


class FrameCodec:
    """Encodes messages for one cluster and makes decoders that accept only that cluster's frames.

    `secret`, when given, authenticates every frame with HMAC-SHA256; `max_frame_size` bounds the payload in
    bytes both ways.
    """

    def __init__(
        self, cluster: str, secret: bytes | None = None, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE
    ) -> None:
        if max_frame_size <= 0 or max_frame_size > 0xFFFFFFFF:
            raise ValueError(f"max_frame_size must be in 1..{0xFFFFFFFF}, got {max_frame_size}")
        self.cluster = cluster
        self.secret = secret or None
        self.max_frame_size = max_frame_size

    def encode(self, message: Message) -> bytes:
        """The frame for `message`. Raises FrameTooLarge over the size limit, TypeError for a body msgpack
        cannot carry. The message's own `cluster` field is written as is (tests use this to forge frames)."""
        if not 0 <= message.request_id <= MAX_REQUEST_ID:
            raise ValueError(f"request id out of range: {message.request_id}")
        payload = msgpack.packb(
            [message.cluster, [message.sender[0], message.sender[1]], message.verb, message.request_id, message.body],
            use_bin_type=True,
        )
        if len(payload) > self.max_frame_size:
            raise FrameTooLarge(f"{message.verb} payload is {len(payload)} bytes, limit {self.max_frame_size}")
        flags = (FLAG_REPLY if message.reply else 0) | (FLAG_ERROR if message.error else 0)
        if self.secret is not None:
            flags |= FLAG_AUTH
        header = HEADER.pack(MAGIC, VERSION, flags, len(payload))
        if self.secret is None:
            return header + payload
        return header + _tag(self.secret, header, payload) + payload

    def decoder(self) -> FrameDecoder:
        """A fresh decoder for one byte stream (one connection)."""
        return FrameDecoder(self.cluster, self.secret, self.max_frame_size)


class FrameDecoder:
    """Turns a byte stream into messages. Feed it bytes with `feed`, then call `next_frame` until None.

    Guarantees: a message is returned only if its frame is whole, well formed, authenticated (when the cluster
    has a secret) and of this cluster; anything else raises FrameRejected, then and on every later call.
    Memory held is at most one frame plus what was fed beyond it.
    """

    def __init__(self, cluster: str, secret: bytes | None, max_frame_size: int) -> None:
        self._cluster = cluster
        self._secret = secret or None
        self._max = max_frame_size
        self._buffer = bytearray()
        self._failed: FrameRejected | None = None

    def feed(self, data: bytes) -> None:
        """Append bytes received from the stream."""
        self._buffer += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet returned as a message."""
        return len(self._buffer)

    def __iter__(self) -> Iterator[tuple[Message, int]]:
        """Every whole message buffered now, with its frame size (raises FrameRejected like next_frame)."""
        while (frame := self.next_frame()) is not None:
            yield frame

    def next_frame(self) -> tuple[Message, int] | None:
        """The next whole message and its frame size in bytes, or None until more bytes are fed."""
        if self._failed is not None:
            raise self._failed
        try:
            return self._next()
        except FrameRejected as exc:
            self._failed = exc
            self._buffer.clear()
            raise

    def _next(self) -> tuple[Message, int] | None:
        buffer = self._buffer
        if len(buffer) >= 2 and buffer[:2] != MAGIC:
            raise FrameRejected(BAD_MAGIC, f"magic {bytes(buffer[:2])!r}")
        if len(buffer) < HEADER_SIZE:
            return None
        magic, version, flags, length = HEADER.unpack_from(buffer)
        if version != VERSION:
            raise FrameRejected(BAD_VERSION, f"version {version}, expected {VERSION}")
        if flags & ~KNOWN_FLAGS:
            raise FrameRejected(BAD_FLAGS, f"unknown flags 0x{flags:02x}")
        if length > self._max:
            raise FrameRejected(OVERSIZE, f"payload of {length} bytes, limit {self._max}")
        authenticated = bool(flags & FLAG_AUTH)
        if authenticated != (self._secret is not None):
            if self._secret is None:
                raise FrameRejected(BAD_HMAC, "frame carries an HMAC but this cluster has no secret")
            raise FrameRejected(BAD_HMAC, "frame carries no HMAC but this cluster requires one")
        tag_size = TAG_SIZE if authenticated else 0
        total = HEADER_SIZE + tag_size + length
        if len(buffer) < total:
            return None
        header = bytes(buffer[:HEADER_SIZE])
        payload = bytes(buffer[HEADER_SIZE + tag_size : total])
        if self._secret is not None:
            tag = bytes(buffer[HEADER_SIZE:HEADER_SIZE + TAG_SIZE])
            if not hmac.compare_digest(tag, _tag(self._secret, header, payload)):
                raise FrameRejected(BAD_HMAC, "HMAC does not match")
        del buffer[:total]
        message = _parse_payload(payload, flags)
        if message.cluster != self._cluster:
            raise FrameRejected(OTHER_CLUSTER, f"cluster {message.cluster!r}, expected {self._cluster!r}")
        return message, total


def _tag(secret: bytes, header: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, header + payload, hashlib.sha256).digest()


def _parse_payload(payload: bytes, flags: int) -> Message:
    try:
        fields = msgpack.unpackb(payload, raw=False, use_list=True, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise FrameRejected(BAD_PAYLOAD, f"payload is not msgpack: {exc}") from exc
    if not isinstance(fields, list) or len(fields) != 5:
        raise FrameRejected(BAD_PAYLOAD, "payload is not a 5-element array")
    cluster, sender, verb, request_id, body = fields
    if not isinstance(cluster, str) or not isinstance(verb, str):
        raise FrameRejected(BAD_PAYLOAD, "cluster and verb must be strings")
    if (
        not isinstance(sender, list)
        or len(sender) != 2
        or not isinstance(sender[0], str)
        or type(sender[1]) is not int
        or not 0 <= sender[1] <= 0xFFFF
    ):
        raise FrameRejected(BAD_PAYLOAD, "sender must be [host, port]")
    if type(request_id) is not int or not 0 <= request_id <= MAX_REQUEST_ID:
        raise FrameRejected(BAD_PAYLOAD, "request id must be an integer in 0..2**63-1")
    reply = bool(flags & FLAG_REPLY)
    error = bool(flags & FLAG_ERROR)
    if (reply or error) and request_id == 0:
        raise FrameRejected(BAD_PAYLOAD, "a reply must carry its request's id")
    if error and not reply:
        raise FrameRejected(BAD_PAYLOAD, "the ERROR flag is only valid on a reply")
    return Message(cluster, (sender[0], sender[1]), verb, request_id, body, reply, error)
