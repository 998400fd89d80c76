"""The native protocol body codec: round trips of every message, and byte vectors checked against
cassandra-driver's own encoder and decoder (an independent implementation, used in-process)."""

import io
import struct
import uuid

import pytest
from cassandra import ConsistencyLevel, WriteType
from cassandra import protocol as dp
from cassandra.query import BatchType
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol import errors
from widecol.net.native import codec
from widecol.net.native import messages as m
from widecol.net.native import results as res
from widecol.net.native.frame import HEADER_SIZE, Frame, FrameDecoder, encode_frame

INT, VARCHAR = (0x0009,), (0x000D,)

REQUESTS = [
    m.Startup({"CQL_VERSION": "3.0.0", "COMPRESSION": "lz4"}),
    m.AuthResponse(b"\x00user\x00pass"),
    m.AuthResponse(None),
    m.Options(),
    m.Query("SELECT * FROM t"),
    m.Query(
        "INSERT INTO t (a, b, c) VALUES (?, ?, ?)",
        m.QueryParameters(
            "LOCAL_QUORUM",
            [b"\x00\x00\x00\x01", None, codec.NOT_SET],
            skip_metadata=True,
            page_size=100,
            paging_state=b"\x01\x02",
            serial_consistency="LOCAL_SERIAL",
            timestamp=1234567890123,
        ),
    ),
    m.Query("SELECT * FROM t WHERE k = :k", m.QueryParameters("ONE", [b"v"], names=["k"])),
    m.Prepare("SELECT * FROM t WHERE k = ?"),
    m.Execute(b"\xaa" * 16, m.QueryParameters("QUORUM", [b"x", b""])),
    m.Batch(
        m.BATCH_UNLOGGED,
        [
            m.BatchStatement(query="INSERT INTO t (a) VALUES (?)", values=[b"1"]),
            m.BatchStatement(statement_id=b"\x01\x02", values=[None, codec.NOT_SET]),
        ],
        consistency="ALL",
        serial_consistency="SERIAL",
        timestamp=-5,
    ),
    m.Register(["TOPOLOGY_CHANGE", "STATUS_CHANGE", "SCHEMA_CHANGE"]),
]

SPEC = [
    res.ColumnSpec("ks", "t", "a", INT),
    res.ColumnSpec("ks", "t", "b", (0x0020, VARCHAR)),
    res.ColumnSpec("ks", "t", "c", (0x0021, VARCHAR, (0x0031, INT, (0x0000, "org.Foo")))),
    res.ColumnSpec("ks", "t", "d", (0x0030, "ks", "addr", (("street", VARCHAR), ("zip", INT)))),
]

RESPONSES = [
    m.Ready(),
    m.Authenticate("org.apache.cassandra.auth.PasswordAuthenticator"),
    m.Supported({"CQL_VERSION": ["3.4.5"], "COMPRESSION": ["lz4"]}),
    m.AuthChallenge(b"c"),
    m.AuthSuccess(None),
    res.ResultResponse(res.VoidResult()),
    res.ResultResponse(res.SetKeyspaceResult("ks")),
    res.ResultResponse(
        res.RowsResult(res.RowsMetadata(SPEC, paging_state=b"\x07"), [[b"\x00\x00\x00\x01", None, b"", b"x"]])
    ),
    res.ResultResponse(res.RowsResult(res.RowsMetadata(no_metadata=True, column_count=2), [[b"a", b"b"]])),
    res.ResultResponse(
        res.RowsResult(
            res.RowsMetadata([res.ColumnSpec("k1", "t1", "a", INT), res.ColumnSpec("k2", "t2", "b", INT)]), []
        )
    ),
    res.ResultResponse(res.PreparedResult(b"\x01" * 16, SPEC[:2], [0], res.RowsMetadata(SPEC[:1]))),
    res.ResultResponse(res.SchemaChangeResult(res.SchemaChange("CREATED", "TABLE", "ks", "t"))),
    res.ResultResponse(res.SchemaChangeResult(res.SchemaChange("DROPPED", "FUNCTION", "ks", "f", ["int"]))),
    res.Event("TOPOLOGY_CHANGE", "NEW_NODE", ("127.0.0.2", 9042)),
    res.Event("STATUS_CHANGE", "DOWN", ("::1", 9042)),
    res.Event("SCHEMA_CHANGE", schema=res.SchemaChange("UPDATED", "KEYSPACE", "ks")),
    res.ErrorResponse.from_exception(errors.Unavailable("QUORUM", 2, 1)),
    res.ErrorResponse.from_exception(errors.WriteTimeout("ONE", 0, 1, "BATCH_LOG")),
    res.ErrorResponse.from_exception(errors.ReadTimeout("ALL", 2, 3, True)),
    res.ErrorResponse.from_exception(errors.AlreadyExists("ks", "t")),
    res.ErrorResponse.from_exception(errors.Unprepared(b"\x0f" * 16)),
    res.ErrorResponse.from_exception(errors.SyntaxException("line 1:0 no viable alternative")),
    res.ErrorResponse(
        0x1300,
        "read failure",
        {"consistency": "ONE", "received": 0, "blockfor": 1, "numfailures": 1, "data_present": False},
    ),
]


@pytest.mark.parametrize("version", [3, 4, 5])
@pytest.mark.parametrize("message", REQUESTS + RESPONSES, ids=lambda x: type(x).__name__)
def test_every_message_round_trips(message, version):
    body = message.encode(version)
    back = m.decode_with(type(message), body, version)
    if (
        version == 3
        and isinstance(message, res.ResultResponse)
        and isinstance(message.result, res.PreparedResult)
    ):
        back.result.pk_indexes = message.result.pk_indexes  # v3 has no partition key indexes
    assert back == message
    # Every strict prefix of a body is refused with a widecol ProtocolError, nothing else.
    for cut in range(len(body)):
        try:
            m.decode_with(type(message), body[:cut], version)
        except errors.ProtocolError:
            pass


def test_pk_indexes_are_not_sent_before_v4():
    prepared = res.PreparedResult(b"id", SPEC[:1], [0], res.RowsMetadata())
    back = m.decode_with(res.ResultResponse, res.ResultResponse(prepared).encode(3), 3)
    assert back.result.pk_indexes == []


def test_errors_round_trip_to_the_same_exception_class_and_fields():
    cases = [
        errors.Unavailable("QUORUM", 2, 1),
        errors.WriteTimeout("ONE", 0, 1, "COUNTER"),
        errors.ReadTimeout("ALL", 2, 3, True),
        errors.AlreadyExists("ks"),
        errors.Unprepared(b"\x01"),
        errors.InvalidRequest("no such table"),
        errors.ProtocolError("bad"),
    ]
    for exc in cases:
        back = res.ErrorResponse.from_exception(exc).to_exception()
        assert type(back) is type(exc) and vars(back) == vars(exc)
    assert res.ErrorResponse.from_exception(ValueError("x")).code == 0x0000


def test_consistency_names_match_the_driver():
    for name, code in codec.CONSISTENCY_CODES.items():
        assert getattr(ConsistencyLevel, name) == code


# ---------------------------------------------------------------------------------------------------------------
# The driver as an oracle


def _driver_frame(msg, version=4, stream=3):
    data = dp._ProtocolHandler.encode_message(msg, stream, version, None, False)
    decoder = FrameDecoder()
    decoder.feed(data)
    frame = decoder.next_frame()
    assert frame is not None and frame.stream == stream and decoder.buffered() == 0
    return frame


def _driver_decode(message, version=4):
    body = message.encode(version)
    return dp._ProtocolHandler.decode_message(version, {}, 1, 0, message.OPCODE, body, None, None)


@pytest.mark.parametrize("version", [3, 4])
def test_driver_query_decodes_here(version):
    msg = dp.QueryMessage(
        "SELECT a FROM t WHERE k = ?",
        ConsistencyLevel.LOCAL_QUORUM,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        fetch_size=50,
        paging_state=b"\x09\x08",
        timestamp=42,
    )
    msg.query_params = [b"\x00\x00\x00\x07", None]
    frame = _driver_frame(msg, version)
    ours = m.decode_request(frame.opcode, frame.body, version)
    assert ours == m.Query(
        "SELECT a FROM t WHERE k = ?",
        m.QueryParameters(
            "LOCAL_QUORUM",
            [b"\x00\x00\x00\x07", None],
            page_size=50,
            paging_state=b"\x09\x08",
            serial_consistency="LOCAL_SERIAL",
            timestamp=42,
        ),
    )
    # and the bytes are the ones we would have written
    assert ours.encode(version) == frame.body


def test_driver_startup_options_prepare_execute_batch_register_decode_here():
    frame = _driver_frame(dp.StartupMessage("3.4.5", {"COMPRESSION": "lz4"}))
    assert m.decode_request(frame.opcode, frame.body, 4) == m.Startup(
        {"CQL_VERSION": "3.4.5", "COMPRESSION": "lz4"}
    )
    frame = _driver_frame(dp.OptionsMessage())
    assert m.decode_request(frame.opcode, frame.body, 4) == m.Options()
    frame = _driver_frame(dp.PrepareMessage("SELECT 1"))
    assert m.decode_request(frame.opcode, frame.body, 4) == m.Prepare("SELECT 1")
    frame = _driver_frame(dp.ExecuteMessage(b"\x01\x02", [b"a"], ConsistencyLevel.TWO))
    assert m.decode_request(frame.opcode, frame.body, 4) == m.Execute(
        b"\x01\x02", m.QueryParameters("TWO", [b"a"])
    )
    batch = dp.BatchMessage(
        BatchType.COUNTER,
        [(False, "UPDATE c", [b"1"]), (True, b"\x05", [])],
        ConsistencyLevel.ONE,
        timestamp=7,
    )
    frame = _driver_frame(batch)
    assert m.decode_request(frame.opcode, frame.body, 4) == m.Batch(
        m.BATCH_COUNTER,
        [m.BatchStatement(query="UPDATE c", values=[b"1"]), m.BatchStatement(statement_id=b"\x05")],
        "ONE",
        timestamp=7,
    )
    frame = _driver_frame(dp.RegisterMessage(["SCHEMA_CHANGE"]))
    assert m.decode_request(frame.opcode, frame.body, 4) == m.Register(["SCHEMA_CHANGE"])


def test_driver_decodes_our_rows_with_typed_values():
    spec = [res.ColumnSpec("ks", "t", "a", INT), res.ColumnSpec("ks", "t", "b", (0x0020, VARCHAR))]
    lst = struct.pack(">i", 2) + struct.pack(">i", 1) + b"x" + struct.pack(">i", 2) + b"yz"
    rows = [[struct.pack(">i", 5), lst], [None, None]]
    msg = _driver_decode(res.ResultResponse(res.RowsResult(res.RowsMetadata(spec, paging_state=b"p"), rows)))
    assert msg.kind == dp.RESULT_KIND_ROWS
    assert msg.column_names == ["a", "b"] and msg.parsed_rows == [(5, ["x", "yz"]), (None, None)]
    assert msg.paging_state == b"p"


def test_driver_decodes_our_prepared_and_schema_change_and_set_keyspace():
    prepared = res.PreparedResult(
        b"\x11" * 16,
        [res.ColumnSpec("ks", "t", "k", INT)],
        [0],
        res.RowsMetadata([res.ColumnSpec("ks", "t", "v", VARCHAR)]),
    )
    msg = _driver_decode(res.ResultResponse(prepared))
    assert msg.query_id == b"\x11" * 16 and msg.bind_metadata[0][2] == "k" and msg.pk_indexes == [0]
    assert msg.column_metadata[0][2] == "v"
    msg = _driver_decode(
        res.ResultResponse(res.SchemaChangeResult(res.SchemaChange("CREATED", "TABLE", "ks", "t")))
    )
    assert msg.schema_change_event == {
        "change_type": "CREATED",
        "target_type": "TABLE",
        "keyspace": "ks",
        "table": "t",
    }
    assert _driver_decode(res.ResultResponse(res.SetKeyspaceResult("ks"))).new_keyspace == "ks"


def test_driver_decodes_our_errors_with_their_fields():
    msg = _driver_decode(res.ErrorResponse.from_exception(errors.Unavailable("QUORUM", 3, 1)))
    assert isinstance(msg, dp.UnavailableErrorMessage)
    assert msg.info == {"consistency": ConsistencyLevel.QUORUM, "required_replicas": 3, "alive_replicas": 1}
    msg = _driver_decode(res.ErrorResponse.from_exception(errors.WriteTimeout("ONE", 0, 1, "BATCH_LOG")))
    assert isinstance(msg, dp.WriteTimeoutErrorMessage) and msg.info["write_type"] == WriteType.BATCH_LOG
    msg = _driver_decode(res.ErrorResponse.from_exception(errors.ReadTimeout("ALL", 2, 3, True)))
    assert msg.info == {
        "consistency": ConsistencyLevel.ALL,
        "received_responses": 2,
        "required_responses": 3,
        "data_retrieved": True,
    }
    msg = _driver_decode(res.ErrorResponse.from_exception(errors.AlreadyExists("ks", "t")))
    assert isinstance(msg, dp.AlreadyExistsException) and msg.info == {"keyspace": "ks", "table": "t"}
    msg = _driver_decode(res.ErrorResponse.from_exception(errors.Unprepared(b"\x01\x02")))
    assert isinstance(msg, dp.PreparedQueryNotFound) and msg.info == b"\x01\x02"


def test_driver_decodes_our_ready_supported_events():
    assert isinstance(_driver_decode(m.Ready()), dp.ReadyMessage)
    msg = _driver_decode(m.Supported({"CQL_VERSION": ["3.4.5"], "COMPRESSION": ["lz4"]}))
    assert msg.cql_versions == ["3.4.5"] and msg.options["COMPRESSION"] == ["lz4"]
    msg = _driver_decode(res.Event("STATUS_CHANGE", "UP", ("10.0.0.1", 9042)))
    assert msg.event_type == "STATUS_CHANGE" and msg.event_args == {
        "change_type": "UP",
        "address": ("10.0.0.1", 9042),
    }


def test_frame_header_layout():
    data = encode_frame(Frame(4, 0x02, -1, 0x0C, b"xyz", is_response=True))
    assert data[:HEADER_SIZE] == b"\x84\x02\xff\xff\x0c\x00\x00\x00\x03" and data[HEADER_SIZE:] == b"xyz"


# ---------------------------------------------------------------------------------------------------------------
# Fuzzing: decoders raise ProtocolError or return, nothing else.


@settings(max_examples=300, deadline=None)
@given(
    opcode=st.sampled_from(sorted(set(m.REQUESTS) | set(res.RESPONSES))),
    body=st.binary(max_size=200),
    version=st.sampled_from([3, 4, 5]),
    is_response=st.booleans(),
)
def test_decoder_never_raises_other_errors(opcode, body, version, is_response):
    try:
        res.decode_message(opcode, body, version, is_response)
    except errors.ProtocolError:
        pass


@settings(max_examples=300, deadline=None)
@given(index=st.integers(0, len(REQUESTS + RESPONSES) - 1), data=st.data())
def test_mutated_bodies_never_raise_other_errors(index, data):
    message = (REQUESTS + RESPONSES)[index]
    body = bytearray(message.encode(4))
    for _ in range(data.draw(st.integers(1, 4))):
        if body:
            body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    try:
        m.decode_with(type(message), bytes(body), 4)
    except errors.ProtocolError:
        pass


def test_reader_values_and_inet():
    r = codec.Reader(
        codec.write_value(None) + codec.write_value(codec.NOT_SET) + codec.write_inet(("::1", 7))
    )
    assert r.value() is None and r.value() is codec.NOT_SET and r.inet() == ("::1", 7)
    with pytest.raises(errors.ProtocolError):
        codec.Reader(struct.pack(">i", -3)).value()
    assert uuid.UUID(bytes=codec.write_uuid(uuid.UUID(int=5))) == uuid.UUID(int=5)
    assert io.BytesIO(codec.write_long_string("é")).read() == b"\x00\x00\x00\x02\xc3\xa9"


def test_a_lying_row_count_is_refused_cheaply():
    metadata = res.RowsMetadata(no_metadata=True, column_count=0).encode(4)
    body = struct.pack(">i", res.KIND_ROWS) + metadata + struct.pack(">i", 2**31 - 1)
    with pytest.raises(errors.ProtocolError, match="row count"):
        m.decode_with(res.ResultResponse, body, 4)
    body = struct.pack(">i", res.KIND_ROWS) + res.RowsMetadata(SPEC).encode(4) + struct.pack(">i", 10**6)
    with pytest.raises(errors.ProtocolError, match="row count"):
        m.decode_with(res.ResultResponse, body, 4)
