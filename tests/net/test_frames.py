"""The internode frame codec: layout, every rejection reason, and fuzzing of the decoder."""

import itertools
import struct

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.errors import ProtocolError
from widecol.net import frames
from widecol.net.frames import FrameCodec, FrameRejected, FrameTooLarge, Message

SENDER = ("127.0.0.2", 7000)


def message(**fields):
    values = dict(cluster="dev", sender=SENDER, verb="ECHO", request_id=7, body={"k": [1, b"\x00", "x"]})
    values.update(fields)
    return Message(**values)


def decode_all(codec, data, chunk=None):
    decoder = codec.decoder()
    out = []
    step = chunk or max(1, len(data))
    for i in range(0, len(data), step):
        decoder.feed(data[i : i + step])
        out.extend(decoder)
    return out, decoder


def test_layout_without_secret_is_header_then_msgpack_payload():
    frame = FrameCodec("dev").encode(message())
    magic, version, flags, length = struct.unpack(">2sBBI", frame[:8])
    assert (magic, version, flags) == (b"WC", 1, 0)
    assert length == len(frame) - 8
    assert msgpack.unpackb(frame[8:]) == ["dev", list(SENDER), "ECHO", 7, {"k": [1, b"\x00", "x"]}]


def test_layout_with_secret_carries_an_hmac_over_header_and_payload():
    import hashlib
    import hmac

    frame = FrameCodec("dev", b"s3cret").encode(message(reply=True))
    header, tag, payload = frame[:8], frame[8:40], frame[40:]
    assert header[3] == frames.FLAG_AUTH | frames.FLAG_REPLY
    assert tag == hmac.new(b"s3cret", header + payload, hashlib.sha256).digest()


@pytest.mark.parametrize("secret", [None, b"key"])
@pytest.mark.parametrize("chunk", [None, 1, 5, 41])
def test_round_trip_of_several_frames_fed_in_pieces(secret, chunk):
    codec = FrameCodec("dev", secret)
    sent = [message(), message(request_id=0, body=None), message(reply=True, error=True, body="boom")]
    data = b"".join(codec.encode(m) for m in sent)
    out, decoder = decode_all(codec, data, chunk)
    assert [m for m, _ in out] == sent
    assert sum(size for _, size in out) == len(data)
    assert decoder.buffered == 0


def test_a_partial_frame_yields_nothing_yet():
    codec = FrameCodec("dev")
    frame = codec.encode(message())
    decoder = codec.decoder()
    decoder.feed(frame[:-1])
    assert decoder.next_frame() is None
    decoder.feed(frame[-1:])
    assert decoder.next_frame()[0] == message()


def rejection(codec, data):
    decoder = codec.decoder()
    decoder.feed(data)
    with pytest.raises(FrameRejected) as info:
        decoder.next_frame()
    # the decoder stays failed: the stream has lost its framing
    with pytest.raises(FrameRejected):
        decoder.next_frame()
    assert isinstance(info.value, ProtocolError)
    return info.value.reason


def test_bad_magic_is_rejected_from_the_first_two_bytes():
    assert rejection(FrameCodec("dev"), b"GE") == frames.BAD_MAGIC


def test_bad_version_and_unknown_flags_are_rejected():
    frame = bytearray(FrameCodec("dev").encode(message()))
    frame[2] = 9
    assert rejection(FrameCodec("dev"), bytes(frame)) == frames.BAD_VERSION
    frame[2] = 1
    frame[3] = 0x80
    assert rejection(FrameCodec("dev"), bytes(frame)) == frames.BAD_FLAGS


def test_oversize_length_is_rejected_from_the_header_alone():
    header = struct.pack(">2sBBI", b"WC", 1, 0, 1025)
    assert rejection(FrameCodec("dev", max_frame_size=1024), header) == frames.OVERSIZE


def test_encoder_refuses_a_message_over_the_limit():
    with pytest.raises(FrameTooLarge):
        FrameCodec("dev", max_frame_size=100).encode(message(body=b"x" * 200))


def test_tampered_payload_fails_the_hmac():
    codec = FrameCodec("dev", b"key")
    frame = bytearray(codec.encode(message()))
    frame[-1] ^= 0x01
    assert rejection(codec, bytes(frame)) == frames.BAD_HMAC


def test_wrong_secret_missing_hmac_and_unexpected_hmac_are_rejected():
    assert rejection(FrameCodec("dev", b"key"), FrameCodec("dev", b"other").encode(message())) == frames.BAD_HMAC
    assert rejection(FrameCodec("dev", b"key"), FrameCodec("dev").encode(message())) == frames.BAD_HMAC
    assert rejection(FrameCodec("dev"), FrameCodec("dev", b"key").encode(message())) == frames.BAD_HMAC


def test_another_clusters_frame_is_rejected():
    frame = FrameCodec("dev").encode(message(cluster="prod"))
    assert rejection(FrameCodec("dev"), frame) == frames.OTHER_CLUSTER


def raw_frame(payload_obj, flags=0):
    payload = msgpack.packb(payload_obj, use_bin_type=True)
    return struct.pack(">2sBBI", b"WC", 1, flags, len(payload)) + payload


@pytest.mark.parametrize(
    "payload, flags",
    [
        (["dev", ["h", 1], "V"], 0),  # too few fields
        ({"cluster": "dev"}, 0),  # not an array
        (["dev", ["h", 70000], "V", 1, None], 0),  # bad port
        (["dev", "h:1", "V", 1, None], 0),  # sender not a pair
        (["dev", ["h", 1], 5, 1, None], 0),  # verb not a string
        (["dev", ["h", 1], "V", -1, None], 0),  # negative request id
        (["dev", ["h", 1], "V", 0, None], frames.FLAG_REPLY),  # a reply without a request id
        (["dev", ["h", 1], "V", 3, None], frames.FLAG_ERROR),  # ERROR without REPLY
    ],
)
def test_malformed_payloads_are_rejected(payload, flags):
    assert rejection(FrameCodec("dev"), raw_frame(payload, flags)) == frames.BAD_PAYLOAD


def test_payload_that_is_not_msgpack_is_rejected():
    data = struct.pack(">2sBBI", b"WC", 1, 0, 3) + b"\xc1\xc1\xc1"
    assert rejection(FrameCodec("dev"), data) == frames.BAD_PAYLOAD


# -- fuzzing ----------------------------------------------------------------------------------------------------

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200), secret=st.sampled_from([None, b"k"]))
def test_fuzz_arbitrary_bytes_yield_messages_or_a_protocol_error(data, secret):
    codec = FrameCodec("dev", secret, max_frame_size=1 << 16)
    decoder = codec.decoder()
    decoder.feed(data)
    try:
        while (frame := decoder.next_frame()) is not None:
            assert isinstance(frame[0], Message)
    except FrameRejected:
        pass


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(msgpack_values, min_size=1, max_size=4),
    cuts=st.lists(st.integers(0, 10_000), max_size=6),
    secret=st.sampled_from([None, b"k"]),
)
def test_fuzz_valid_frames_survive_any_split(bodies, cuts, secret):
    codec = FrameCodec("dev", secret)
    sent = [message(request_id=i, body=body) for i, body in enumerate(bodies)]
    data = b"".join(codec.encode(m) for m in sent)
    points = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    decoder = codec.decoder()
    got = []
    for start, end in itertools.pairwise(points):
        decoder.feed(data[start:end])
        while (frame := decoder.next_frame()) is not None:
            got.append(frame[0])
    assert [m.body for m in got] == [msgpack.unpackb(msgpack.packb(b, use_bin_type=True)) for b in bodies]


@settings(max_examples=300, deadline=None)
@given(body=msgpack_values, position=st.integers(0, 10_000), bit=st.integers(0, 7))
def test_fuzz_any_flipped_bit_in_an_authenticated_frame_is_rejected(body, position, bit):
    codec = FrameCodec("dev", b"k")
    frame = bytearray(codec.encode(message(body=body)))
    frame[position % len(frame)] ^= 1 << bit
    decoder = codec.decoder()
    decoder.feed(bytes(frame))
    try:
        result = decoder.next_frame()
    except FrameRejected:
        return
    # a flip in the length field can make the frame look incomplete; it is never accepted
    assert result is None
