"""Consistency levels: codes, block_for and the Unavailable check, counted the way Cassandra counts them."""

import pytest

from widecol.coordinator.consistency import (
    CODES,
    assure_sufficient_live,
    block_for,
    block_for_write,
    code,
    level,
)
from widecol.errors import InvalidRequest, Unavailable


def dc_of(endpoint):
    """Two data centres: endpoints named b* are in dc2, every other one in dc1."""
    return "dc2" if endpoint.startswith("b") else "dc1"


TWO_DCS = {"dc1": 3, "dc2": 3}


def check(lvl, replicas, live, rf_by_dc, for_write=False, pending=(), local_dc="dc1"):
    """None if the level is achievable, else (required, alive) of the Unavailable raised."""
    try:
        assure_sufficient_live(lvl, replicas, set(live), dc_of, local_dc, rf_by_dc, for_write, pending)
    except Unavailable as e:
        assert e.consistency == level(lvl)
        return (e.required, e.alive)
    return None


def test_every_level_has_its_native_protocol_code():
    assert CODES == {
        "ANY": 0, "ONE": 1, "TWO": 2, "THREE": 3, "QUORUM": 4, "ALL": 5, "LOCAL_QUORUM": 6,
        "EACH_QUORUM": 7, "SERIAL": 8, "LOCAL_SERIAL": 9, "LOCAL_ONE": 10,
    }
    for name, c in CODES.items():
        assert level(c) == name
        assert level(name.lower()) == name
        assert code(name) == c


@pytest.mark.parametrize("bad", ["QUARUM", "", 11, -1, 0x100, True, None])
def test_an_unknown_level_is_an_invalid_request(bad):
    with pytest.raises(InvalidRequest):
        level(bad)


@pytest.mark.parametrize(
    "lvl, rf1, rf3, rf5",
    [
        ("ANY", 1, 1, 1),
        ("ONE", 1, 1, 1),
        ("LOCAL_ONE", 1, 1, 1),
        ("TWO", 2, 2, 2),
        ("THREE", 3, 3, 3),
        ("QUORUM", 1, 2, 3),
        ("LOCAL_QUORUM", 1, 2, 3),
        ("EACH_QUORUM", 1, 2, 3),
        ("ALL", 1, 3, 5),
        ("SERIAL", 1, 2, 3),
        ("LOCAL_SERIAL", 1, 2, 3),
    ],
)
def test_block_for_with_simple_strategy(lvl, rf1, rf3, rf5):
    assert [block_for(lvl, {"dc1": rf}, "dc1") for rf in (1, 3, 5)] == [rf1, rf3, rf5]


@pytest.mark.parametrize(
    "lvl, expected",
    [
        ("ONE", 1), ("TWO", 2), ("THREE", 3), ("LOCAL_ONE", 1), ("ANY", 1),
        ("QUORUM", 3),  # (3 + 2) // 2 + 1
        ("LOCAL_QUORUM", 2),  # dc1's 3 // 2 + 1
        ("EACH_QUORUM", 4),  # 2 + 2: more than QUORUM
        ("ALL", 5),
    ],
)
def test_block_for_with_two_data_centres(lvl, expected):
    assert block_for(lvl, {"dc1": 3, "dc2": 2}, "dc1") == expected


def test_local_quorum_follows_the_coordinators_data_centre():
    assert block_for("LOCAL_QUORUM", {"dc1": 5, "dc2": 1}, "dc1") == 3
    assert block_for("LOCAL_QUORUM", {"dc1": 5, "dc2": 1}, "dc2") == 1


def test_pending_endpoints_raise_the_write_count():
    assert block_for_write("QUORUM", TWO_DCS, "dc1", ["b1"], dc_of) == 5
    assert block_for_write("ALL", TWO_DCS, "dc1", ["a1", "b1"], dc_of) == 8
    assert block_for_write("LOCAL_QUORUM", TWO_DCS, "dc1", ["b1"], dc_of) == 2  # a remote pending does not count
    assert block_for_write("LOCAL_QUORUM", TWO_DCS, "dc1", ["a1"], dc_of) == 3
    assert block_for_write("ANY", TWO_DCS, "dc1", ["a1", "b1"], dc_of) == 1


# -- Unavailable with SimpleStrategy -------------------------------------------------------------------------------


@pytest.mark.parametrize("rf", [1, 3, 5])
def test_simple_strategy_unavailable_counts(rf):
    replicas = [f"a{i}" for i in range(1, rf + 1)]
    simple = {"dc1": rf}
    q = rf // 2 + 1
    for alive in range(rf + 1):
        live = replicas[:alive]
        for lvl, need in [("ONE", 1), ("LOCAL_ONE", 1), ("TWO", 2), ("THREE", 3), ("QUORUM", q),
                          ("LOCAL_QUORUM", q), ("EACH_QUORUM", q), ("ALL", rf)]:
            for for_write in (False, True):
                expected = None if alive >= need else (need, alive)
                assert check(lvl, replicas, live, simple, for_write) == expected, (lvl, alive, for_write)


def test_any_write_needs_nobody_alive():
    assert check("ANY", ["a1", "a2", "a3"], [], {"dc1": 3}, for_write=True) is None


def test_any_read_is_an_invalid_request():
    with pytest.raises(InvalidRequest, match="only supported for writes"):
        check("ANY", ["a1"], ["a1"], {"dc1": 1})


@pytest.mark.parametrize("lvl", ["SERIAL", "LOCAL_SERIAL"])
@pytest.mark.parametrize("for_write", [False, True])
def test_serial_levels_are_not_supported(lvl, for_write):
    with pytest.raises(InvalidRequest, match="not supported"):
        check(lvl, ["a1"], ["a1"], {"dc1": 1}, for_write)


# -- Unavailable with two data centres -----------------------------------------------------------------------------

ALL6 = ["a1", "a2", "a3", "b1", "b2", "b3"]


def test_local_levels_count_local_replicas_only():
    # All of dc2 is up but only one of dc1: LOCAL_QUORUM needs 2 local, sees 1.
    live = ["a1", "b1", "b2", "b3"]
    assert check("LOCAL_QUORUM", ALL6, live, TWO_DCS) == (2, 1)
    assert check("LOCAL_ONE", ALL6, live, TWO_DCS) is None
    assert check("LOCAL_ONE", ALL6, ["b1", "b2", "b3"], TWO_DCS) == (1, 0)
    assert check("QUORUM", ALL6, live, TWO_DCS) is None  # 4 of 6 alive
    # Seen from dc2 the same cluster is fine.
    assert check("LOCAL_QUORUM", ALL6, live, TWO_DCS, local_dc="dc2") is None


def test_each_quorum_checks_every_data_centre():
    # Five alive in total, more than QUORUM's 4, but dc2 has only one.
    live = ["a1", "a2", "a3", "b1"]
    assert check("QUORUM", ALL6, live, TWO_DCS) is None
    assert check("EACH_QUORUM", ALL6, live, TWO_DCS) == (2, 1)
    assert check("EACH_QUORUM", ALL6, ["a1", "a2", "b1", "b2"], TWO_DCS) is None
    assert check("EACH_QUORUM", ALL6, ["a1", "b1", "b2"], TWO_DCS, for_write=True) == (2, 1)


def test_quorum_and_all_count_both_data_centres():
    assert check("QUORUM", ALL6, ["a1", "a2", "a3"], TWO_DCS) == (4, 3)
    assert check("ALL", ALL6, ALL6[:-1], TWO_DCS) == (6, 5)
    assert check("ALL", ALL6, ALL6, TWO_DCS) is None


def test_pending_endpoints_count_as_required_and_alive_for_writes():
    replicas = ["a1", "a2", "a3"]
    rf = {"dc1": 3}
    # QUORUM with one pending needs 3: two natural alive plus the pending one will do, two alone will not.
    assert check("QUORUM", replicas, ["a1", "a2", "p"], rf, True, ["p"]) is None
    assert check("QUORUM", replicas, ["a1", "a2"], rf, True, ["p"]) == (3, 2)
    # Reads ignore pending endpoints.
    assert check("QUORUM", replicas, ["a1", "a2"], rf, False, ["p"]) is None


def test_replicas_listed_twice_count_once():
    assert check("TWO", ["a1", "a1"], ["a1"], {"dc1": 3}) == (2, 1)

