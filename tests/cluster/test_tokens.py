"""Token allocation: a joining node's tokens keep ownership even, and differ between seeds."""

import pytest

from widecol.cluster.replication import NetworkTopologyStrategy, SimpleStrategy
from widecol.cluster.ring import Ring
from widecol.cluster.tokens import allocate_tokens
from widecol.storage.token import MAX_TOKEN, MIN_TOKEN


def grow(num_tokens, nodes, seed="s", dc="datacenter1", ring=None, prefix="n"):
    """Add NODES endpoints one at a time; yield the ring after each join."""
    ring = ring or Ring()
    for i in range(nodes):
        endpoint = f"{prefix}{i}:7000"
        tokens = allocate_tokens(ring, num_tokens, endpoint, dc=dc, rack="rack1", seed=f"{seed}-{i}")
        assert len(tokens) == num_tokens == len(set(tokens))
        assert tokens == sorted(tokens) and not set(tokens) & set(ring.sorted_tokens)
        assert all(MIN_TOKEN < t <= MAX_TOKEN for t in tokens)
        ring = ring.with_endpoint(endpoint, tokens, dc=dc, rack="rack1")
        ring.check()
        yield ring


def spread(shares):
    return max(shares.values()) / min(shares.values())


def test_the_first_node_gets_evenly_spaced_tokens_rotated_by_its_seed():
    a = allocate_tokens(Ring(), 4, "a", seed="host-a")
    b = allocate_tokens(Ring(), 4, "a", seed="host-b")
    assert a != b
    for tokens in (a, b):
        gaps = {y - x for x, y in zip(tokens, tokens[1:], strict=False)}
        assert gaps == {2**62}
    assert allocate_tokens(Ring(), 4, "a", seed="host-a") == a


# The brief asks 1.25 for 16 tokens. Measured worst over 100 seeds (docs/ring.md): 1.36 with 4 tokens (fewer
# tokens than endpoints: only 4 of them can give), 1.02 with 16, 1.0004 with 256.
@pytest.mark.parametrize(("num_tokens", "bound", "seeds"), [(16, 1.05, 5), (4, 1.45, 5), (256, 1.01, 1)])
def test_adding_nodes_one_at_a_time_keeps_primary_ownership_even(num_tokens, bound, seeds):
    for seed in range(seeds):
        for n, ring in enumerate(grow(num_tokens, 10, seed=seed), start=1):
            shares = ring.ownership()
            assert sum(shares.values()) == pytest.approx(1.0)
            assert spread(shares) <= bound, (n, shares)


def test_effective_ownership_with_rf_3_sums_to_3_as_the_ring_grows():
    for n, ring in enumerate(grow(16, 10), start=1):
        shares = ring.ownership(SimpleStrategy(3))
        assert sum(shares.values()) == pytest.approx(min(n, 3))
        assert spread(shares) <= 1.6


def test_two_nodes_allocating_against_one_ring_with_different_seeds_pick_different_tokens():
    ring = list(grow(16, 3))[-1]
    a = allocate_tokens(ring, 16, "x:7000", seed="host-x")
    b = allocate_tokens(ring, 16, "y:7000", seed="host-y")
    assert not set(a) & set(b)
    both = ring.with_endpoint("x:7000", a).with_endpoint("y:7000", b)
    both.check()
    assert sum(both.ownership().values()) == pytest.approx(1.0)


def test_a_token_already_in_the_ring_is_never_chosen():
    # A ring whose tokens sit exactly where an evenly spaced first node of dc2 might land, for any seed: a
    # single-token dc2 node goes at its seed's offset, and we occupy that offset in dc1 beforehand.
    probe = allocate_tokens(Ring(), 1, "z", dc="dc2", seed=7)
    ring = Ring({"a": probe}, dc={"a": "dc1"})
    tokens = allocate_tokens(ring, 1, "z", dc="dc2", seed=7)
    assert tokens != probe and tokens[0] == probe[0] + 1


def test_a_new_dc_is_balanced_on_its_own_and_leaves_the_old_dc_alone():
    dc1 = list(grow(16, 4, dc="dc1", prefix="a"))[-1]
    before = dc1.ownership(NetworkTopologyStrategy.of({"dc1": 1}))
    ring = list(grow(16, 5, dc="dc2", ring=dc1, prefix="b"))[-1]
    dc1_shares = ring.ownership(NetworkTopologyStrategy.of({"dc1": 1}))
    assert {e: s for e, s in dc1_shares.items() if s} == pytest.approx(before)
    dc2_shares = {e: s for e, s in ring.ownership(NetworkTopologyStrategy.of({"dc2": 1})).items()
                  if ring.dc_of(e) == "dc2"}
    assert sum(dc2_shares.values()) == pytest.approx(1.0)
    assert spread(dc2_shares) <= 1.25


def test_reallocating_for_a_member_ignores_its_old_tokens():
    ring = list(grow(8, 3))[-1]
    again = allocate_tokens(ring, 8, "n1:7000", seed="other")
    assert again == allocate_tokens(ring.without("n1:7000"), 8, "n1:7000", seed="other")


def test_num_tokens_must_be_positive():
    with pytest.raises(ValueError):
        allocate_tokens(Ring(), 0, "a")
