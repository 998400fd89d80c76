"""The simulator itself: determinism, its controls, and that N = 1,000-class runs are cheap."""

from widecol.cluster.gossip import SCHEMA
from widecol.cluster.simulator import Simulator


def names(n):
    return [f"n{i:03d}" for i in range(n)]


def test_the_same_seed_replays_exactly():
    def trace(seed):
        sim = Simulator(names(25), seed=seed, loss=0.05)
        sim.run(15)
        sim.crash("n003")
        sim.run(25)
        return [(round(t, 9), n, e) for t, n, e in sim.events]

    assert trace(11) == trace(11)
    assert trace(11) != trace(12)


def test_a_warm_start_is_converged_and_all_live_before_any_message():
    sim = Simulator(names(50), seed=1, warm=True)
    assert sim.messages == 0
    assert sim.converged()
    assert all(len(node.live) == 49 for node in sim.nodes.values())


def test_a_paused_node_neither_ticks_nor_reads_until_it_resumes():
    sim = Simulator(names(5), seed=2, warm=True)
    sim.run(5)
    node = sim.nodes["n002"]
    rounds, received = node.rounds, node.statistics(sim.now).messages_received
    sim.pause("n002", 3.0)
    sim.run(2.9)
    assert node.rounds == rounds and node.statistics(sim.now).messages_received == received
    sim.run(1.0)
    assert node.rounds > rounds and node.statistics(sim.now).messages_received > received


def test_a_crashed_node_receives_nothing_and_a_cut_link_carries_nothing():
    sim = Simulator(names(6), seed=3, warm=True)
    sim.crash("n001")
    sim.block("n002", "n003")
    sim.run(20)
    assert sim.nodes["n001"].statistics(sim.now).messages_received == 0
    assert sim.cut > 0
    assert "n003" in sim.nodes["n002"].live  # what it hears of n003 comes through others


def test_loss_drops_about_the_given_fraction():
    sim = Simulator(names(10), seed=4, loss=0.25)
    sim.run(60)
    assert 0.2 < sim.lost / sim.messages < 0.3


def test_a_quiet_round_costs_a_linear_number_of_messages():
    sim = Simulator(names(200), seed=5, seeds=2, warm=True)
    sim.run(300)
    sim.nodes["n100"].set_local_state(SCHEMA, "v")
    sim.run(10)
    assert all(node.state("n100", SCHEMA) == "v" for node in sim.nodes.values())
    assert sim.messages < 200 * 310 * 6  # O(N) messages a round: a SYN, two probes and their answers
