"""Noticing a dead peer sooner: transport hints (unreachable) and confirmed suspicions (Lifeguard), on the
simulator and on single Gossipers driven by hand."""

import math
import random

import pytest

from widecol.cluster.failure_detector import FailureDetector
from widecol.cluster.gossip import Gossiper
from widecol.cluster.probes import PING, PING_REQ
from widecol.cluster.simulator import Simulator

RUMOR = "GOSSIP_RUMOR"


def names(n):
    return [f"n{i:03d}" for i in range(n)]


def seconds_until_all_see_down(sim, victim, limit=30.0):
    start = sim.now
    sim.crash(victim)
    while sim.who_sees_down(victim) != set(sim.alive()) - {victim}:
        sim.run(0.05)
        assert sim.now - start < limit
    return sim.now - start


def test_an_unreachable_peer_is_probed_at_once_directly_and_through_helpers():
    node = Gossiper("a", 1, [], random.Random(1))
    for peer in ("b", "c", "d"):
        node.preload(peer, Gossiper(peer, 1, [], random.Random(0)).local)
    out = node.unreachable("b", 0.0)
    assert (("b", PING) in [(p, v) for p, v, _ in out])
    assert {p for p, v, _ in out if v == PING_REQ} == {"c", "d"}
    assert node.unreachable("b", 0.1) == []  # already being probed
    assert node.unreachable("zz", 0.1) == []  # not a peer we know
    node.advance(0.59)
    assert not node.endpoints["b"].suspected()
    node.advance(0.61)  # direct and indirect probes both unanswered: now, and only now, a suspicion
    assert node.endpoints["b"].suspected()


def test_a_refused_connection_alone_never_suspects_a_live_node():
    sim = Simulator(names(20), seed=21, warm=True)
    sim.run(5)
    for round_ in range(30):
        for sender in names(20)[:10]:
            sim.refuse(sender, "n015")  # a burst of false alarms about a live node, every second
        sim.run(1)
        assert not any(node.endpoints["n015"].suspected() for node in sim.nodes.values()), round_
    assert sim.verbs[PING_REQ] > 30 * 10 * 3  # each alarm was checked through helpers
    assert [e for _, _, e in sim.events if e.kind == "down"] == []


def test_with_refused_connections_every_survivor_marks_a_crash_down_within_four_seconds():
    for seed in range(5):
        sim = Simulator(names(5), seed=seed, warm=True, refusals=True)
        sim.run(10.3 + seed / 10)
        assert seconds_until_all_see_down(sim, "n004") < 4.0


def test_without_confirmations_or_refusals_detection_is_slower():
    fast, slow = [], []
    for seed in range(5):
        sim = Simulator(names(5), seed=seed, warm=True, refusals=True)
        sim.run(10.3)
        fast.append(seconds_until_all_see_down(sim, "n004"))
        sim = Simulator(names(5), seed=seed, warm=True, confirmations=0)
        sim.run(10.3)
        slow.append(seconds_until_all_see_down(sim, "n004"))
    assert max(fast) < min(slow)
    assert min(slow) > 8 * math.log(10) / 4  # a lone suspicion stands the full 4.6 s


def test_probes_that_fail_during_an_open_suspicion_confirm_it():
    sim = Simulator(names(20), seed=22, warm=True)
    sim.run(10)
    sim.crash("n010")
    sim.run(2.5)
    confirmed = [len(node.detector.confirmers("n010")) for name, node in sim.nodes.items() if name != "n010"]
    assert max(confirmed) >= 3
    sim.run(10)
    assert all(node.detector.confirmers("n010") == set() or "n010" not in node.live
               for node in sim.nodes.values())


def _observer():
    node = Gossiper("a", 1, [], random.Random(1), FailureDetector(threshold=8.0))
    for peer in ("b", "c", "d", "e"):
        node.preload(peer, Gossiper(peer, 1, [], random.Random(0)).local)
    return node


def _convicted_at(node, confirmers):
    """Tell `node` at t=0 that e is suspected, confirmed by `confirmers`; step its timers until it convicts."""
    node.handle("b", RUMOR, [["e", 1, 0, 0, 0.0, -1, confirmers]], 0.0)
    t = 0.0
    while "e" in node.live:
        t = round(t + 0.05, 2)
        node.advance(t)
        assert t < 10
    return t


def test_confirmations_shorten_a_suspicion_and_a_lone_one_stands_the_full_time():
    full = 8 * math.log(10) / 4
    assert _convicted_at(_observer(), ["b"]) == pytest.approx(full, abs=0.06)
    assert _convicted_at(_observer(), ["b", "c"]) < full * 0.8
    assert _convicted_at(_observer(), ["b", "c", "d"]) < full * 0.65
    assert _convicted_at(_observer(), ["b", "c", "d", "a"]) == pytest.approx(full / 2, abs=0.06)


def test_confirmations_of_a_refuted_suspicion_are_ignored():
    node = _observer()
    node.handle("b", RUMOR, [["e", 1, 0, 0, 0.0, -1, ["b"]]], 0.0)
    node.handle("e", RUMOR, [["e", 1, 1, 0, 0.0, 1, []]], 0.1)  # e refutes
    assert not node.endpoints["e"].suspected()
    node.handle("c", RUMOR, [["e", 1, 0, 0, 0.0, -1, ["c", "d", "b"]]], 0.2)  # late news of the old suspicion
    assert not node.endpoints["e"].suspected() and node.detector.confirmers("e") == set()


def test_the_confirmed_fraction_scales_the_threshold_log_shaped():
    fd = FailureDetector(confirmed_fraction=0.5)
    assert fd.scale(0, 3) == 1.0 and fd.scale(5, 0) == 1.0
    assert fd.scale(3, 3) == fd.scale(7, 3) == 0.5
    assert 1.0 > fd.scale(1, 3) > fd.scale(2, 3) > 0.5
    fd.suspect("x", 0.0)
    assert fd.confirm("x", ["p"]) and not fd.confirm("x", ["p"])
    assert fd.conviction_delay("x", 0.5) == pytest.approx(fd.conviction_delay("x") / 2)
    fd.refute("x", 1.0)
    assert fd.confirmers("x") == set() and not fd.confirm("x", ["q"])  # nothing open to confirm
