"""WriteHandler: targets and hints, when the level is met, when it never can be, and its timeout error."""

import pytest

from widecol.coordinator.write import WriteHandler
from widecol.errors import Unavailable, WriteTimeout


def dc_of(endpoint):
    return "dc2" if endpoint.startswith("b") else "dc1"


def handler(lvl, natural, live, pending=(), rf_by_dc=None, local_dc="dc1", write_type="SIMPLE"):
    if rf_by_dc is None:
        rf_by_dc = {"dc1": len(natural)}
    return WriteHandler(
        lvl, natural=natural, pending=list(pending), live=set(live), dc_of=dc_of, local_dc=local_dc,
        rf_by_dc=rf_by_dc, write_type=write_type,
    )


R3 = ["a1", "a2", "a3"]
R6 = ["a1", "a2", "a3", "b1", "b2", "b3"]
TWO_DCS = {"dc1": 3, "dc2": 3}


def test_quorum_is_met_by_the_second_ack_of_three():
    h = handler("QUORUM", R3, R3)
    assert h.targets == R3 and h.dead == []
    h.on_ack("a2")
    assert not h.done and not h.failed
    h.on_ack("a2")  # a repeated ack counts once
    assert not h.done
    h.on_ack("a3")
    assert h.done and not h.failed
    assert h.unacked() == ["a1"]


def test_dead_replicas_are_not_targets_but_hint_candidates():
    h = handler("ONE", R3, ["a1", "a3"])
    assert h.targets == ["a1", "a3"]
    assert h.dead == ["a2"]
    h.on_hint("a2")
    assert not h.done  # a hint does not count toward ONE
    h.on_ack("a3")
    assert h.done


def test_the_handler_raises_unavailable_before_anything_is_sent():
    with pytest.raises(Unavailable) as e:
        handler("QUORUM", R3, ["a1"])
    assert (e.value.required, e.value.alive) == (2, 1)


def test_failures_that_leave_too_few_replicas_fail_the_write():
    h = handler("QUORUM", R3, R3)
    h.on_failure("a1")
    assert not h.failed
    h.on_ack("a2")
    h.on_failure("a3")
    assert h.failed and not h.done
    assert h.unacked() == []


def test_all_fails_on_the_first_failure():
    h = handler("ALL", R3, R3)
    h.on_ack("a1")
    h.on_failure("a2")
    assert h.failed


def test_a_late_ack_after_done_changes_nothing_and_done_is_never_failed():
    h = handler("ONE", R3, R3)
    h.on_ack("a1")
    h.on_failure("a2")
    h.on_failure("a3")
    assert h.done and not h.failed
    h.on_ack("zz")  # not a target: ignored
    assert h.received == 1


def test_timeout_error_carries_received_required_and_write_type():
    h = handler("QUORUM", ["a1", "a2", "a3", "a4", "a5"], ["a1", "a2", "a3", "a4", "a5"], write_type="BATCH")
    h.on_ack("a1")
    h.on_ack("a4")
    err = h.timeout_error()
    assert isinstance(err, WriteTimeout)
    assert (err.consistency, err.received, err.required, err.write_type) == ("QUORUM", 2, 3, "BATCH")
    assert h.unacked() == ["a2", "a3", "a5"]


def test_unknown_write_type_is_a_programming_error():
    with pytest.raises(ValueError):
        handler("ONE", R3, R3, write_type="SOMETIMES")


# -- ANY -----------------------------------------------------------------------------------------------------------


def test_any_with_every_replica_down_is_met_by_a_stored_hint():
    h = handler("ANY", R3, [])
    assert h.targets == [] and h.dead == R3
    assert not h.done and not h.failed
    h.on_hint("a1")
    assert h.done
    assert h.timeout_error().received == 1


def test_any_is_met_by_one_ack():
    h = handler("ANY", R3, R3)
    h.on_ack("a3")
    assert h.done


def test_any_fails_only_when_every_target_failed_and_nothing_is_left_to_hint():
    h = handler("ANY", R3, R3)
    h.on_failure("a1")
    h.on_failure("a2")
    assert not h.failed
    h.on_failure("a3")
    assert h.failed
    h2 = handler("ANY", R3, ["a1"])
    h2.on_failure("a1")
    assert not h2.failed  # a2 and a3 can still be hinted


# -- pending endpoints ---------------------------------------------------------------------------------------------


def test_a_pending_endpoint_raises_the_count_and_is_a_target():
    h = handler("QUORUM", R3, R3 + ["p1"], pending=["p1"], rf_by_dc={"dc1": 3})
    assert h.targets == ["a1", "a2", "a3", "p1"]
    assert h.required == 3
    h.on_ack("a1")
    h.on_ack("a2")
    assert not h.done  # a quorum of the natural replicas is not enough while a range moves
    h.on_ack("p1")
    assert h.done


def test_a_dead_pending_endpoint_is_hinted_and_may_make_the_level_unavailable():
    h = handler("ONE", R3, R3, pending=["p1"], rf_by_dc={"dc1": 3})
    assert h.dead == ["p1"]
    assert h.required == 2
    with pytest.raises(Unavailable) as e:
        handler("ALL", R3, R3, pending=["p1"], rf_by_dc={"dc1": 3})
    assert (e.value.required, e.value.alive) == (4, 3)


def test_a_pending_endpoint_that_is_also_natural_counts_once():
    h = handler("ALL", R3, R3, pending=["a1"], rf_by_dc={"dc1": 3})
    assert h.required == 3 and h.targets == R3


# -- data centres --------------------------------------------------------------------------------------------------


def test_local_quorum_counts_local_acks_only():
    h = handler("LOCAL_QUORUM", R6, R6, rf_by_dc=TWO_DCS)
    for e in ["b1", "b2", "b3", "a1"]:
        h.on_ack(e)
    assert not h.done
    assert h.timeout_error().received == 1
    h.on_ack("a3")
    assert h.done


def test_local_quorum_fails_when_the_local_dc_cannot_answer():
    h = handler("LOCAL_QUORUM", R6, R6, rf_by_dc=TWO_DCS)
    h.on_failure("a1")
    h.on_failure("b1")
    h.on_failure("b2")
    h.on_failure("b3")
    assert not h.failed  # the remote failures do not matter
    h.on_failure("a2")
    assert h.failed


def test_each_quorum_needs_a_quorum_in_each_data_centre():
    h = handler("EACH_QUORUM", R6, R6, rf_by_dc=TWO_DCS)
    for e in ["a1", "a2", "a3", "b1"]:
        h.on_ack(e)
    assert not h.done  # four acks, more than a quorum of six, but only one in dc2
    h.on_ack("b3")
    assert h.done


def test_each_quorum_fails_when_one_data_centre_cannot_reach_its_quorum():
    h = handler("EACH_QUORUM", R6, R6, rf_by_dc=TWO_DCS)
    h.on_ack("a1")
    h.on_ack("a2")
    h.on_failure("b1")
    assert not h.failed
    h.on_failure("b2")
    assert h.failed


def test_local_one_with_a_local_pending_endpoint_needs_two_local_acks():
    h = handler("LOCAL_ONE", R6, R6 + ["p1"], pending=["p1"], rf_by_dc=TWO_DCS)
    assert h.required == 2
    h.on_ack("b1")
    h.on_ack("a1")
    assert not h.done
    h.on_ack("p1")
    assert h.done
