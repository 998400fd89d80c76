"""Replication strategies: parsing the schema's options and placing replicas on hand-built and random rings."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.cluster.replication import (
    LocalStrategy,
    NetworkTopologyStrategy,
    SimpleStrategy,
    replication_strategy,
)
from widecol.cluster.ring import Ring
from widecol.errors import ConfigurationException
from widecol.storage.token import MAX_TOKEN, MIN_TOKEN

# ---------------------------------------------------------------------------------------------------------------
# Options


def test_short_and_long_class_names_build_the_same_strategy():
    assert replication_strategy({"class": "SimpleStrategy", "replication_factor": "3"}) == SimpleStrategy(3)
    long = {"class": "org.apache.cassandra.locator.SimpleStrategy", "replication_factor": "3"}
    assert replication_strategy(long) == SimpleStrategy(3)
    nts = replication_strategy({"class": "NetworkTopologyStrategy", "dc2": "2", "dc1": "3"})
    assert nts == NetworkTopologyStrategy((("dc1", 3), ("dc2", 2)))
    assert replication_strategy({"class": "org.apache.cassandra.locator.LocalStrategy"}) == LocalStrategy()


def test_strategies_report_their_options_in_normalised_form():
    nts = replication_strategy({"class": "NetworkTopologyStrategy", "dc1": "3", "dc2": "2"})
    assert nts.options() == {"class": "org.apache.cassandra.locator.NetworkTopologyStrategy",
                             "dc1": "3", "dc2": "2"}
    assert replication_strategy(nts.options()) == nts
    assert SimpleStrategy(2).options()["replication_factor"] == "2"


@pytest.mark.parametrize("options", [
    {"class": "SimpleStrategy"},
    {"class": "SimpleStrategy", "replication_factor": "x"},
    {"class": "SimpleStrategy", "replication_factor": "-1"},
    {"class": "NetworkTopologyStrategy", "dc1": "three"},
    {"class": "NoSuchStrategy"},
    {"replication_factor": "1"},
])
def test_invalid_options_are_configuration_errors(options):
    with pytest.raises(ConfigurationException):
        replication_strategy(options)


def test_replication_factors_by_dc_and_total():
    ring = Ring({"a": [1], "b": [2], "c": [3]}, dc={"a": "dc1", "b": "dc2", "c": "dc2"}, local="a")
    nts = NetworkTopologyStrategy.of({"dc1": 3, "dc2": 2, "dc3": 0})
    assert nts.total_rf == 5
    # The configured factors, not capped by the endpoints present: dc1 has one node, yet QUORUM there needs 2.
    assert nts.replication_factor_by_dc(ring) == {"dc1": 3, "dc2": 2}
    assert SimpleStrategy(3).replication_factor_by_dc(ring) == {"dc1": 3, "dc2": 3}
    assert SimpleStrategy(3).total_rf == 3
    assert LocalStrategy().replication_factor_by_dc(ring) == {"dc1": 1}
    assert LocalStrategy().total_rf == 1
    assert nts.dc_aware and not SimpleStrategy(1).dc_aware


# ---------------------------------------------------------------------------------------------------------------
# SimpleStrategy on hand-built rings

FOUR = Ring({"a": [-300], "b": [-100], "c": [100], "d": [300]})


def test_simple_strategy_takes_the_next_endpoints_clockwise():
    s = SimpleStrategy(3)
    assert s.replicas(FOUR, -200) == ["b", "c", "d"]
    assert s.replicas(FOUR, -100) == ["b", "c", "d"]
    assert s.replicas(FOUR, 0) == ["c", "d", "a"]


def test_simple_strategy_wraps_around_the_ring():
    s = SimpleStrategy(3)
    assert s.replicas(FOUR, 301) == ["a", "b", "c"]
    assert s.replicas(FOUR, MAX_TOKEN) == ["a", "b", "c"]
    assert s.replicas(FOUR, MIN_TOKEN + 1) == ["a", "b", "c"]
    assert s.replicas(FOUR, 200) == ["d", "a", "b"]


def test_simple_strategy_skips_an_endpoints_other_tokens():
    ring = Ring({"a": [10, 20], "b": [30, 50], "c": [40]})
    assert SimpleStrategy(2).replicas(ring, 5) == ["a", "b"]
    assert SimpleStrategy(3).replicas(ring, 25) == ["b", "c", "a"]


def test_fewer_endpoints_than_rf_gives_all_of_them():
    ring = Ring({"a": [1, 5], "b": [3]})
    assert SimpleStrategy(3).replicas(ring, 2) == ["b", "a"]
    assert SimpleStrategy(0).replicas(ring, 2) == []
    assert SimpleStrategy(3).replicas(Ring(), 2) == []


# ---------------------------------------------------------------------------------------------------------------
# NetworkTopologyStrategy on hand-built rings


def test_nts_places_each_dcs_replicas_on_that_dcs_endpoints():
    ring = Ring({"a1": [0], "b2": [10], "c1": [20], "d2": [30], "e1": [40]},
                dc={"a1": "dc1", "c1": "dc1", "e1": "dc1", "b2": "dc2", "d2": "dc2"})
    nts = NetworkTopologyStrategy.of({"dc1": 2, "dc2": 1})
    assert nts.replicas(ring, 5) == ["b2", "c1", "e1"]
    assert nts.replicas(ring, 35) == ["e1", "a1", "b2"]
    assert NetworkTopologyStrategy.of({"dc2": 3}).replicas(ring, 35) == ["b2", "d2"]


def test_nts_spreads_rf_3_over_two_racks_and_fills_from_skipped_endpoints():
    # Clockwise from token 0: A and B on rack r1, then C and D on r2.
    ring = Ring({"A": [0], "B": [10], "C": [20], "D": [30]}, rack={"A": "r1", "B": "r1", "C": "r2", "D": "r2"})
    nts = NetworkTopologyStrategy.of({"datacenter1": 3})
    # A (r1), B skipped (r1 used), C (r2): both racks used, so skipped B fills the last place before D.
    assert nts.replicas(ring, 0) == ["A", "C", "B"]
    assert nts.replicas(ring, 15) == ["C", "A", "D"]
    # SimpleStrategy ignores racks: three in a row.
    assert SimpleStrategy(3).replicas(ring, 0) == ["A", "B", "C"]


def test_nts_uses_every_rack_before_repeating_one():
    racks = {"A": "r1", "B": "r1", "C": "r1", "D": "r2", "E": "r3", "F": "r3"}
    ring = Ring({e: [i * 10] for i, e in enumerate("ABCDEF")}, rack=racks)
    assert NetworkTopologyStrategy.of({"datacenter1": 3}).replicas(ring, 0) == ["A", "D", "E"]
    assert NetworkTopologyStrategy.of({"datacenter1": 4}).replicas(ring, 0) == ["A", "D", "E", "B"]


def test_nts_with_a_small_or_missing_dc_takes_what_there_is():
    ring = Ring({"a": [0], "b": [10], "x": [20]}, dc={"x": "dc2", "a": "dc1", "b": "dc1"})
    nts = NetworkTopologyStrategy.of({"dc1": 5, "dc2": 3, "dc9": 2})
    assert sorted(nts.replicas(ring, 15)) == ["a", "b", "x"]
    assert NetworkTopologyStrategy.of({"dc9": 2}).replicas(ring, 15) == []
    assert NetworkTopologyStrategy.of({"dc1": 0}).replicas(ring, 15) == []


def test_local_strategy_keeps_data_on_the_local_endpoint_even_before_it_joins():
    assert LocalStrategy().replicas(FOUR.with_local("c"), 301) == ["c"]
    assert LocalStrategy().replicas(Ring(local="me"), 0) == ["me"]
    assert LocalStrategy().replicas(FOUR, 0) == []


def test_effective_ownership_sums_to_the_replica_count():
    assert sum(FOUR.ownership(SimpleStrategy(3)).values()) == pytest.approx(3.0)
    assert sum(FOUR.ownership(SimpleStrategy(9)).values()) == pytest.approx(4.0)
    assert FOUR.ownership(SimpleStrategy(4)) == pytest.approx(dict.fromkeys("abcd", 1.0))


# ---------------------------------------------------------------------------------------------------------------
# Properties on random multi-DC, multi-rack rings

tokens_st = st.integers(MIN_TOKEN, MAX_TOKEN)


@st.composite
def topologies(draw, dcs=("dc1", "dc2"), max_endpoints=9):
    n = draw(st.integers(1, max_endpoints))
    tokens = draw(st.lists(tokens_st, min_size=n * 3, max_size=n * 3, unique=True))
    names = [f"e{i}" for i in range(n)]
    return Ring(
        {e: tokens[i * 3 : i * 3 + draw(st.integers(1, 3))] for i, e in enumerate(names)},
        dc={e: draw(st.sampled_from(dcs)) for e in names},
        rack={e: draw(st.sampled_from(["r1", "r2", "r3"])) for e in names},
    )


nts_st = st.dictionaries(st.sampled_from(["dc1", "dc2", "dc3"]), st.integers(0, 4), min_size=1).map(
    NetworkTopologyStrategy.of
)
any_strategy = st.one_of(st.integers(1, 5).map(SimpleStrategy), nts_st)


@settings(max_examples=100, deadline=None)
@given(topologies(), any_strategy, tokens_st)
def test_replicas_are_distinct_and_the_owner_comes_first(ring, strategy, t):
    replicas = strategy.replicas(ring, t)
    assert len(set(replicas)) == len(replicas)
    owner = ring.token_owner(t)
    if isinstance(strategy, SimpleStrategy) or dict(strategy.factors).get(ring.dc_of(owner), 0) > 0:
        assert replicas[0] == owner


@settings(max_examples=100, deadline=None)
@given(topologies(), nts_st, tokens_st)
def test_nts_gives_each_dc_min_rf_endpoints_over_as_many_racks_as_it_can(ring, strategy, t):
    replicas = strategy.replicas(ring, t)
    for dc, rf in strategy.factors:
        mine = [e for e in replicas if ring.dc_of(e) == dc]
        in_dc = ring.endpoints_in(dc)
        assert len(mine) == min(rf, len(in_dc))
        racks_in_dc = {ring.rack_of(e) for e in in_dc}
        assert len({ring.rack_of(e) for e in mine}) == min(len(mine), len(racks_in_dc))
    assert {ring.dc_of(e) for e in replicas} <= {dc for dc, rf in strategy.factors if rf > 0}


def _rack_repeats_reference(ring, strategy, t):
    """Cassandra 4's formulation, written independently: walk clockwise; per DC allow rf - racks rack repeats."""
    chosen = []
    for dc, rf in strategy.factors:
        in_dc = ring.endpoints_in(dc)
        want = min(rf, len(in_dc))
        repeats = want - len({ring.rack_of(e) for e in in_dc})
        racks: set[str] = set()
        mine: list[str] = []
        i = ring.token_index(t)
        for j in range(len(ring.sorted_tokens)):
            e = ring.owner_at(i + j)
            if len(mine) == want:
                break
            if ring.dc_of(e) != dc or e in mine:
                continue
            if ring.rack_of(e) not in racks:
                racks.add(ring.rack_of(e))
                mine.append(e)
            elif repeats > 0:
                repeats -= 1
                mine.append(e)
        chosen.extend(mine)
    return set(chosen)


@settings(max_examples=100, deadline=None)
@given(topologies(), nts_st, tokens_st)
def test_nts_picks_the_same_endpoints_as_cassandra_4s_rack_repeat_rule(ring, strategy, t):
    assert set(strategy.replicas(ring, t)) == _rack_repeats_reference(ring, strategy, t)


@settings(max_examples=100, deadline=None)
@given(topologies(dcs=("dc1", "dc2")), nts_st.filter(lambda s: "dc3" not in dict(s.factors)),
       st.lists(tokens_st, min_size=1, max_size=6, unique=True), tokens_st)
def test_replicas_are_stable_under_adding_an_unrelated_dc(ring, strategy, new_tokens, t):
    before = strategy.replicas(ring, t)
    bigger = ring
    for i, nt in enumerate(new_tokens):
        if nt not in bigger.sorted_tokens:
            bigger = bigger.with_endpoint(f"x{i}", [nt], dc="dc3", rack=f"r{i % 2}")
    assert strategy.replicas(bigger, t) == before


@settings(max_examples=100, deadline=None)
@given(topologies(), any_strategy)
def test_effective_ownership_sums_to_the_replicas_per_range(ring, strategy):
    per_range = len(strategy.replicas(ring, 0))  # the same count for every range of a given ring
    for _, end in ring.ranges():
        assert len(strategy.replicas(ring, end)) == per_range
    assert sum(ring.ownership(strategy).values()) == pytest.approx(per_range)
    for start, end in ring.ranges():
        holders = [e for e in ring.endpoints if (start, end) in ring.ranges_for(strategy, e)]
        assert sorted(holders) == sorted(strategy.replicas(ring, end))
