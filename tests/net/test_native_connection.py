"""The sans-IO native connections: negotiation (as cassandra-driver needs it), ordering, compression, errors,
and fuzzing of ServerConnection.receive_data."""

import struct

import pytest
from cassandra import ProtocolVersion
from cassandra import protocol as dp
from cassandra.connection import locally_supported_compressions
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol import errors
from widecol.net.native import messages as m
from widecol.net.native import results as res
from widecol.net.native.connection import ClientConnection, Request, ServerConnection, Violation
from widecol.net.native.frame import (
    FLAG_COMPRESSION,
    HEADER_SIZE,
    Frame,
    FrameDecoder,
    compress,
    decompress,
    encode_frame,
)


def drain(server):
    events = []
    while (event := server.next_event()) is not None:
        events.append(event)
        assert len(events) < 10_000
    return events


def driver_read(data):
    """Parses a response frame the way cassandra-driver does; returns (version, stream, message)."""
    version = data[0] & 0x7F
    assert version in ProtocolVersion.SUPPORTED_VERSIONS
    if version >= 3:
        flags, stream, opcode, length = struct.unpack(">BhBi", data[1:9])
        body = data[9 : 9 + length]
    else:
        flags, stream, opcode, length = struct.unpack(">BbBi", data[1:8])
        body = data[8 : 8 + length]
    msg = dp._ProtocolHandler.decode_message(version, {}, stream, flags, opcode, body, None, None)
    return version, stream, msg


def handshake(server, client, startup=None):
    _, data = client.send(startup or m.Startup())
    server.receive_data(data)
    (request,) = drain(server)
    assert isinstance(request.message, m.Startup)
    client.receive_data(server.send(request.stream, m.Ready()))
    assert isinstance(client.next_event().message, m.Ready)


def test_options_startup_query_flow():
    server, client = ServerConnection(), ClientConnection()
    stream, data = client.send(m.Options())
    server.receive_data(data)
    (request,) = drain(server)
    assert request == Request(stream, 4, m.Options())
    client.receive_data(server.send(stream, m.Supported({"COMPRESSION": ["lz4"]})))
    assert client.next_event().message == m.Supported({"COMPRESSION": ["lz4"]})
    handshake(server, client)
    assert server.state == "READY"
    stream, data = client.send(m.Query("SELECT 1", m.QueryParameters("QUORUM")), tracing=True)
    server.receive_data(data)
    (request,) = drain(server)
    assert request.message.query == "SELECT 1" and request.tracing and request.stream == stream
    client.receive_data(server.send(stream, res.ResultResponse(res.VoidResult()), warnings=["careful"]))
    response = client.next_event()
    assert response.stream == stream and response.warnings == ["careful"] and client.in_flight() == 0


def test_requests_before_startup_are_refused_on_their_stream():
    server, client = ServerConnection(), ClientConnection()
    stream, data = client.send(m.Query("SELECT 1"))
    server.receive_data(data)
    (violation,) = drain(server)
    assert isinstance(violation, Violation) and not violation.close
    _, got_stream, msg = driver_read(violation.data)
    assert (
        got_stream == stream and isinstance(msg, dp.ProtocolException) and "expecting STARTUP" in msg.message
    )
    handshake(server, client)  # the connection goes on


@pytest.mark.parametrize("version", [0x42, 0x41, 6, 5, 2, 1, 0])
def test_unsupported_versions_get_the_answer_the_driver_steps_down_on(version):
    server = ServerConnection()
    body = b""
    if version >= 3:
        server.receive_data(struct.pack(">BBhBi", version, 0, 7, 0x05, 0))
    else:
        server.receive_data(struct.pack(">BBbBi", version, 0, 7, 0x05, len(body)))
    (violation,) = drain(server)
    assert violation.close and server.state == "CLOSED"
    got_version, stream, msg = driver_read(violation.data)
    # the driver only marks the connection "unsupported version" for this text on a stream >= 0
    assert isinstance(msg, dp.ProtocolException) and "unsupported protocol version" in msg.message
    assert stream == 7
    assert got_version == (version if version in (1, 2) else 4)
    server.receive_data(b"more")
    assert server.next_event() is None


def test_driver_default_negotiation_reaches_v4():
    tried, version = [], ProtocolVersion.MAX_SUPPORTED
    while True:
        tried.append(version)
        server = ServerConnection()
        server.receive_data(dp._ProtocolHandler.encode_message(dp.OptionsMessage(), 0, version, None, False))
        (event,) = drain(server)
        if isinstance(event, Request):
            break
        assert "unsupported protocol version" in driver_read(event.data)[2].message
        version = ProtocolVersion.get_lower_supported(version)
    assert tried[-1] == 4 and tried[0] > 4


def test_oversize_frame_names_the_limit_and_closes():
    server = ServerConnection(max_frame_size=1000)
    server.receive_data(struct.pack(">BBhBi", 4, 0, 3, 0x07, 5000))
    (violation,) = drain(server)
    assert violation.close and "1000" in str(violation.error)
    assert "1000" in driver_read(violation.data)[2].message


def test_unknown_opcode_and_truncated_body_are_answered_and_survived():
    server = ServerConnection()
    server.receive_data(encode_frame(Frame(4, 0, 1, 0x05, b"")))
    server.receive_data(encode_frame(Frame(4, 0, 2, 0x42, b"abc")))
    body = m.Startup().encode(4)
    server.receive_data(encode_frame(Frame(4, 0, 3, 0x01, body[:-2])))
    server.receive_data(encode_frame(Frame(4, 0, 4, 0x01, body)))
    events = drain(server)
    assert [type(e) for e in events] == [Request, Violation, Violation, Request]
    assert [driver_read(e.data)[1] for e in events[1:3]] == [2, 3]
    assert not any(e.close for e in events[1:3])


def test_response_bit_and_version_change_close_the_connection():
    server = ServerConnection()
    server.receive_data(encode_frame(Frame(4, 0, 1, 0x05, b"", is_response=True)))
    assert drain(server)[0].close
    server = ServerConnection()
    server.receive_data(encode_frame(Frame(4, 0, 1, 0x05, b"")) + encode_frame(Frame(3, 0, 2, 0x05, b"")))
    first, second = drain(server)
    assert isinstance(first, Request) and second.close and "Invalid message version" in str(second.error)


def test_partial_and_coalesced_frames():
    client, server = ClientConnection(), ServerConnection()
    data = b"".join(client.send(m.Options())[1] for _ in range(3))
    got = []
    for i in range(len(data)):
        server.receive_data(data[i : i + 1])
        got += drain(server)
    assert [e.stream for e in got] == [0, 1, 2]


def test_lz4_negotiation_and_compressed_frames_both_ways():
    server, client = ServerConnection(), ClientConnection(version=4)
    handshake(server, client, m.Startup({"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"}))
    query = m.Query("SELECT * FROM t WHERE k = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'")
    stream, data = client.send(query)
    assert data[1] & FLAG_COMPRESSION
    server.receive_data(data)
    (request,) = drain(server)
    assert request.message == query
    out = server.send(stream, res.ResultResponse(res.SetKeyspaceResult("ks" * 50)))
    assert out[1] & FLAG_COMPRESSION
    # the driver's own lz4 decompressor reads our compressed body
    _, lz4_decompress = locally_supported_compressions["lz4"]
    length = struct.unpack(">i", out[5:9])[0]
    body = lz4_decompress(out[HEADER_SIZE : HEADER_SIZE + length])
    assert m.decode_with(res.ResultResponse, body, 4).result.keyspace == "ks" * 50
    client.receive_data(out)
    assert client.next_event().message.result.keyspace == "ks" * 50


def test_driver_compressed_body_decompresses_here():
    lz4_compress, _ = locally_supported_compressions["lz4"]
    payload = b"hello " * 100
    assert decompress(lz4_compress(payload), 10_000) == payload
    with pytest.raises(errors.ProtocolError, match="limit"):
        decompress(compress(payload), 10)


def test_compression_must_be_negotiated_and_known():
    server = ServerConnection()
    server.receive_data(encode_frame(Frame(4, FLAG_COMPRESSION, 1, 0x05, compress(b""))))
    assert isinstance(drain(server)[0], Violation)
    server = ServerConnection()
    _, data = ClientConnection().send(m.Startup({"CQL_VERSION": "3.0.0", "COMPRESSION": "snappy"}))
    server.receive_data(data)
    (violation,) = drain(server)
    assert "snappy" in str(violation.error) and server.state == "EXPECT_STARTUP"


def test_authentication_state():
    server, client = ServerConnection(), ClientConnection()
    stream, data = client.send(m.Startup())
    server.receive_data(data)
    drain(server)
    server.send(stream, m.Authenticate("PasswordAuthenticator"))
    _, data = client.send(m.Query("SELECT 1"))
    server.receive_data(data)
    assert isinstance(drain(server)[0], Violation)
    stream, data = client.send(m.AuthResponse(b"\x00u\x00p"))
    server.receive_data(data)
    assert isinstance(drain(server)[0], Request)
    server.send(stream, m.AuthSuccess())
    assert server.state == "READY"


def test_client_events_and_unknown_streams():
    client = ClientConnection()
    event = res.Event("STATUS_CHANGE", "UP", ("127.0.0.1", 9042))
    client.receive_data(encode_frame(Frame(4, 0, -1, 0x0C, event.encode(4), is_response=True)))
    response = client.next_event()
    assert response.stream == -1 and response.message == event
    client.receive_data(encode_frame(Frame(4, 0, 9, 0x02, b"", is_response=True)))
    with pytest.raises(errors.ProtocolError):
        client.next_event()


def test_server_error_send_decodes_in_driver():
    server = ServerConnection()
    data = server.send_error(5, errors.WriteTimeout("QUORUM", 1, 2, "SIMPLE"))
    _, stream, msg = driver_read(data)
    assert (
        stream == 5 and isinstance(msg, dp.WriteTimeoutErrorMessage) and msg.info["required_responses"] == 2
    )


# ---------------------------------------------------------------------------------------------------------------
# Fuzzing


def _feed_all(server, chunks, limit):
    for chunk in chunks:
        server.receive_data(chunk)
        for event in drain(server):
            assert isinstance(event, Request | Violation)
            if isinstance(event, Violation):
                assert isinstance(event.error, errors.ProtocolError)
        assert server.decoder.buffered() <= limit + HEADER_SIZE + max(len(c) for c in chunks)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(min_size=1, max_size=64), min_size=1, max_size=8))
def test_server_never_raises_on_arbitrary_bytes(chunks):
    _feed_all(ServerConnection(max_frame_size=512), chunks, 512)


def _valid_stream():
    client = ClientConnection()
    parts = [client.send(m.Options())[1], client.send(m.Startup())[1]]
    for request in [
        m.Query("SELECT * FROM t", m.QueryParameters("ONE", [b"\x00\x01", None], page_size=5)),
        m.Prepare("SELECT 1"),
        m.Execute(b"\x01" * 16),
        m.Register(["SCHEMA_CHANGE"]),
        m.Batch(statements=[m.BatchStatement(query="INSERT", values=[b"1"])]),
    ]:
        parts.append(client.send(request)[1])
    return b"".join(parts)


VALID = _valid_stream()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_server_never_raises_on_mutated_valid_frames(data):
    stream = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(stream)))
    _feed_all(ServerConnection(max_frame_size=4096), [bytes(stream[:cut]), bytes(stream[cut:]) or b"x"], 4096)


def test_decoder_memory_is_bounded_by_the_limit():
    decoder = FrameDecoder(max_frame_size=100)
    decoder.feed(struct.pack(">BBhBi", 4, 0, 0, 7, 10**9))
    with pytest.raises(errors.ProtocolError):
        decoder.next_frame()
    decoder.feed(b"x" * 1000)
    assert decoder.buffered() == 0


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_server_never_raises_on_mutated_compressed_frames(data):
    server, client = ServerConnection(max_frame_size=4096), ClientConnection()
    handshake(server, client, m.Startup({"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"}))
    frame = bytearray(client.send(m.Query("SELECT " + "x" * 200, m.QueryParameters("ONE", [b"y" * 50])))[1])
    assert frame[1] & FLAG_COMPRESSION
    for _ in range(data.draw(st.integers(1, 4))):
        frame[data.draw(st.integers(HEADER_SIZE, len(frame) - 1))] = data.draw(st.integers(0, 255))
    _feed_all(server, [bytes(frame)], 4096)
