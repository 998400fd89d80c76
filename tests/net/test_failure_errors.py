"""ReadFailure and WriteFailure: the coordinator's errors when replicas answer with an error, on the wire."""

from widecol import errors
from widecol.coordinator.read import ReadHandler
from widecol.coordinator.write import WriteHandler
from widecol.net.native.codec import Reader
from widecol.net.native.results import ErrorResponse


def _round_trip(exc):
    body = ErrorResponse.from_exception(exc).encode(4)
    return ErrorResponse.decode(Reader(body), 4).to_exception()


def test_failures_keep_their_fields_through_the_native_codec():
    back = _round_trip(errors.WriteFailure("QUORUM", 1, 2, 2, "BATCH"))
    assert isinstance(back, errors.WriteFailure)
    assert (back.consistency, back.received, back.required, back.failures, back.write_type) == \
        ("QUORUM", 1, 2, 2, "BATCH")
    back = _round_trip(errors.ReadFailure("ALL", 2, 3, 1, True))
    assert isinstance(back, errors.ReadFailure)
    assert (back.received, back.required, back.failures, back.data_present) == (2, 3, 1, True)


def test_handlers_name_a_failure_apart_from_a_timeout():
    live = {"a", "b", "c"}
    w = WriteHandler("QUORUM", natural=["a", "b", "c"], pending=[], live=live, dc_of=lambda e: "dc1",
                     local_dc="dc1", rf_by_dc={"dc1": 3})
    w.on_ack("a")
    w.on_failure("b")
    w.on_failure("c")
    assert w.failed and not w.done
    err = w.failure_error()
    assert isinstance(err, errors.WriteFailure) and (err.received, err.required, err.failures) == (1, 2, 2)
    r = ReadHandler("QUORUM", replicas=["a", "b", "c"], live=live, dc_of=lambda e: "dc1", local_dc="dc1",
                    rf_by_dc={"dc1": 3})
    r.on_failure(r.digest_endpoints[0])
    assert r.state == "failed" and isinstance(r.failure_error(), errors.ReadFailure)
