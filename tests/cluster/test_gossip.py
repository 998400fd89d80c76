"""Gossip scenarios on the simulator, each named after the behaviour it pins."""

import math

from widecol.cluster.gossip import SCHEMA, STATUS, TOKENS
from widecol.cluster.simulator import Simulator


def names(n):
    return [f"n{i:03d}" for i in range(n)]


def test_a_new_cluster_converges_through_its_seed():
    sim = Simulator(names(30), seed=1)
    sim.run(15)
    assert sim.converged()
    assert all(len(node.live) == 29 for node in sim.nodes.values())


def test_a_new_state_reaches_every_node_in_a_few_rounds():
    n = 100
    sim = Simulator(names(n), seed=2)
    sim.run(20)
    sim.nodes["n050"].set_local_state(SCHEMA, "v2")
    rounds = 0
    while not all(node.state("n050", SCHEMA) == "v2" for node in sim.nodes.values()):
        sim.run(1)
        rounds += 1
        assert rounds <= 2 * (math.log(n, 3) + math.log(math.log(n))) + 2
    assert sim.converged()


def test_a_crashed_node_is_marked_down_by_every_live_node():
    sim = Simulator(names(20), seed=3)
    sim.run(20)
    sim.crash("n007")
    sim.run(30)
    assert sim.who_sees_down("n007") == set(sim.alive()) - {"n007"}
    downs = {name for _, name, e in sim.events if e.kind == "down" and e.endpoint == "n007"}
    assert downs == set(sim.alive()) - {"n007"}


def test_no_false_conviction_with_ten_percent_loss():
    sim = Simulator(names(20), seed=4, loss=0.10)
    sim.run(20)
    sim.events.clear()
    sim.run(600)
    assert [e for _, _, e in sim.events if e.kind == "down"] == []


def test_a_partition_heals_and_views_converge():
    sim = Simulator(names(20), seed=5)
    sim.run(20)
    left, right = names(20)[:10], names(20)[10:]
    sim.partition(left, right)
    sim.nodes["n003"].set_local_state(TOKENS, "a")
    sim.nodes["n013"].set_local_state(TOKENS, "b")
    sim.run(40)
    assert sim.nodes["n000"].state("n013", TOKENS) is None
    assert "n015" not in sim.nodes["n000"].live  # convicted across the partition
    sim.heal()
    sim.run(30)
    assert sim.converged()
    assert all(node.state("n013", TOKENS) == "b" for node in sim.nodes.values())
    assert all(len(node.live) == 19 for node in sim.nodes.values())


def test_a_restarted_nodes_new_generation_supersedes_its_old_state():
    sim = Simulator(names(15), seed=6)
    sim.run(20)
    sim.nodes["n004"].set_local_state(TOKENS, "old")
    sim.run(10)
    sim.crash("n004")
    sim.run(30)
    node = sim.start("n004")  # generation 2, no TOKENS yet
    node.set_local_state(SCHEMA, "fresh")
    sim.run(20)
    for other in sim.nodes.values():
        assert other.endpoints["n004"].generation == 2
        assert other.state("n004", TOKENS) is None
        assert other.state("n004", SCHEMA) == "fresh"
    assert all("n004" in n.live for name, n in sim.nodes.items() if name != "n004")


def test_a_node_that_left_does_not_come_back_from_stale_gossip():
    sim = Simulator(names(12), seed=7)
    sim.run(20)
    stale = names(12)[11]
    sim.partition(names(12)[:11], [stale])  # the stale node will not hear of the departure
    sim.nodes["n005"].set_local_state(STATUS, "left")
    sim.run(10)
    sim.crash("n005")
    sim.run(5)
    sim.heal()
    sim.run(30)  # the stale node gossips its old view of n005 (same generation, older versions)
    for name, node in sim.nodes.items():
        if name in ("n005", stale):
            continue
        assert node.state("n005", STATUS) == "left"
        assert "n005" not in node.live


def test_the_same_seed_replays_exactly():
    def trace(seed):
        sim = Simulator(names(25), seed=seed, loss=0.05)
        sim.run(15)
        sim.crash("n003")
        sim.run(25)
        return [(round(t, 9), n, e) for t, n, e in sim.events]

    assert trace(11) == trace(11)
    assert trace(11) != trace(12)
