"""Gossip scenarios on the simulator, each named after the behaviour it pins."""

import math
import random

import pytest

from widecol.cluster.gossip import ACK, ACK2, ACK3, SCHEMA, STATUS, SYN, TOKENS, VERBS, Gossiper
from widecol.cluster.simulator import Simulator
from widecol.errors import ProtocolError


def names(n):
    return [f"n{i:03d}" for i in range(n)]


def test_a_new_cluster_converges_through_its_seed():
    sim = Simulator(names(30), seed=1)
    sim.run(15)
    assert sim.converged()
    assert all(len(node.live) == 29 for node in sim.nodes.values())


def test_a_new_state_reaches_every_node_within_the_push_pull_bound():
    n = 100
    sim = Simulator(names(n), seed=2)
    sim.run(20)
    bound = math.log(n, 3) + math.log(math.log(n))
    for trial, origin in enumerate(["n050", "n007", "n099"]):
        sim.nodes[origin].set_local_state(SCHEMA, f"v{trial}")
        rounds = 0
        while not all(node.state(origin, SCHEMA) == f"v{trial}" for node in sim.nodes.values()):
            sim.run(1)
            rounds += 1
        assert rounds <= 2 * bound
    assert sim.converged()


def test_a_crashed_node_is_marked_down_by_every_live_node_within_ten_rounds():
    sim = Simulator(names(200), seed=3, seeds=2, warm=True)
    sim.run(10)
    for victim in ("n007", "n150", "n033"):
        sim.crash(victim)
        rounds = 0
        while sim.who_sees_down(victim) != set(sim.alive()) - {victim}:
            sim.run(1)
            rounds += 1
            assert rounds <= 10
    downs = {name for _, name, e in sim.events if e.kind == "down" and e.endpoint == "n007"}
    assert downs >= set(sim.alive())


def test_a_driver_that_only_ticks_still_detects_a_crash_within_ten_rounds():
    sim = Simulator(names(100), seed=13, warm=True, timers=False)
    sim.run(10)
    sim.crash("n042")
    sim.run(10)
    assert sim.who_sees_down("n042") == set(sim.alive())


def test_no_false_conviction_with_ten_percent_loss():
    sim = Simulator(names(20), seed=4, loss=0.10)
    sim.run(20)
    sim.events.clear()
    sim.run(900)
    assert [e for _, _, e in sim.events if e.kind == "down"] == []
    assert sim.lost > 1000


def test_a_node_stalled_two_seconds_at_a_time_is_suspected_but_never_convicted():
    sim = Simulator(names(20), seed=14)
    sim.run(20)
    sim.events.clear()
    suspected = 0
    for _ in range(60):
        sim.pause("n005", 2.0)
        sim.run(1.5)
        suspected += any(node.endpoints["n005"].suspected() for node in sim.nodes.values())
        sim.run(8.5)
    assert suspected > 10  # the stalls were noticed...
    assert [e for _, _, e in sim.events if e.kind == "down"] == []  # ...and refuted in time
    assert sim.nodes["n005"].local.alive > 0


def test_a_node_one_peer_cannot_reach_is_vouched_for_by_indirect_probes():
    sim = Simulator(names(20), seed=15, warm=True)
    sim.block("n001", "n002")
    sim.run(120)
    assert [e for _, _, e in sim.events if e.kind == "down"] == []
    assert sim.verbs["GOSSIP_PING_REQ"] > 0


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
    assert sim.nodes["n000"].live == set(left) - {"n000"}
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
    assert "n004" not in sim.nodes["n000"].live
    node = sim.start("n004")  # generation 2, no TOKENS yet
    node.set_local_state(SCHEMA, "fresh")
    sim.run(20)
    for other in sim.nodes.values():
        assert other.endpoints["n004"].generation == 2
        assert other.state("n004", TOKENS) is None
        assert other.state("n004", SCHEMA) == "fresh"
    assert all("n004" in n.live for name, n in sim.nodes.items() if name != "n004")


@pytest.mark.parametrize("status", ["left", "removed"])
def test_a_node_that_left_does_not_come_back_from_stale_gossip(status):
    sim = Simulator(names(12), seed=7)
    sim.run(20)
    stale = names(12)[11]
    sim.partition(names(12)[:11], [stale])  # the stale node will not hear of the departure
    sim.nodes["n005"].set_local_state(STATUS, status)
    sim.run(10)
    sim.crash("n005")
    sim.run(5)
    sim.heal()
    sim.run(30)  # the stale node gossips its old view of n005 (same generation, older versions)
    for name, node in sim.nodes.items():
        if name in ("n005", stale):
            continue
        assert node.state("n005", STATUS) == status
        assert "n005" not in node.live
    assert not any(e.kind == "up" and e.endpoint == "n005" for t, _, e in sim.events if t > 35)


def test_a_quiet_cluster_exchanges_only_summaries_and_probes():
    sim = Simulator(names(200), seed=8, seeds=2, warm=True)
    sim.run(10)
    sim.verbs.clear()
    before = sum(sim.bytes_sent().values())
    sim.run(20)
    assert set(sim.verbs) <= {SYN, "GOSSIP_PING", "GOSSIP_PONG"}
    assert (sum(sim.bytes_sent().values()) - before) / 200 / 20 < 1000  # bytes per node per second


def test_every_verb_the_simulator_saw_is_exported_for_routing():
    sim = Simulator(names(20), seed=9, loss=0.2)
    sim.run(60)
    sim.crash("n003")
    sim.run(20)
    assert set(sim.verbs) <= set(VERBS)
    assert {SYN, ACK, ACK2, ACK3, "GOSSIP_RUMOR", "GOSSIP_PING", "GOSSIP_PONG", "GOSSIP_PING_REQ"} <= set(sim.verbs)


def _exchange(a, b, now):
    """Run one full A -> B anti-entropy exchange by hand; returns the ACK3 body B sent (or None)."""
    syn = next(body for _peer, verb, body in a.tick(now) if verb == SYN)
    ack = b.handle(a.endpoint, SYN, syn, now)
    if not ack:
        return None
    ack2 = a.handle(b.endpoint, ACK, ack[0][2], now)
    if not ack2:
        return None
    ack3 = [m for m in b.handle(a.endpoint, ACK2, ack2[0][2], now) if m[1] == ACK3]
    if ack3:
        a.handle(b.endpoint, ACK3, ack3[0][2], now)
        return ack3[0][2]
    return None


def test_when_a_delta_does_not_fit_the_budget_the_endpoints_furthest_behind_go_first():
    full = Gossiper("full", 1, [], random.Random(1), max_message_bytes=300)
    behind = Gossiper("behind", 1, ["full"], random.Random(2), max_message_bytes=300)
    for i in range(6):
        peer = Gossiper(f"p{i}", 1, [], random.Random(i))
        peer.set_local_state(TOKENS, "t" * 100)
        if i < 3:
            behind.preload(peer.endpoint, peer.local)
        peer.set_local_state(SCHEMA, "s" if i < 3 else "x")
        full.preload(peer.endpoint, peer.local)
    sent = _exchange(behind, full, 1.0)
    assert sent is not None and len(sent[0]) < 4  # the budget cut it short...
    assert all(e in ("full", "p3", "p4", "p5") for e in sent[0])  # ...and the unknown endpoints went first
    for now in range(2, 12):
        _exchange(behind, full, float(now))
    assert behind.view() == full.view()  # later exchanges bring the rest


def test_view_hash_agrees_on_converged_nodes_and_ignores_heartbeats():
    sim = Simulator(names(10), seed=10)
    sim.run(20)
    hashes = {node.view_hash() for node in sim.nodes.values()}
    assert len(hashes) == 1
    node = sim.nodes["n001"]
    before = node.view_hash()
    node.tick(sim.now)  # a heartbeat
    assert node.view_hash() == before
    node.set_local_state(SCHEMA, "new")
    assert node.view_hash() != before and len(before) == 16


def test_statistics_count_rounds_messages_bytes_and_heartbeat_ages():
    sim = Simulator(names(10), seed=11)
    sim.run(30)
    sim.crash("n009")
    sim.run(15)
    stats = sim.nodes["n000"].statistics(sim.now)
    assert stats.rounds in (44, 45, 46)
    assert stats.messages_sent > stats.rounds and stats.messages_received > 0
    assert stats.bytes_sent > 10 * stats.messages_sent // 2 and stats.bytes_received > 0
    assert stats.convictions == 1 and stats.down == 1 and stats.live == 8
    assert stats.suspicions >= 0 and stats.refutations == 0
    assert set(stats.heartbeat_age) == set(names(10)) - {"n000"}
    assert stats.heartbeat_age["n009"] >= 14.0
    with pytest.raises(AttributeError):
        stats.rounds = 0  # frozen


def test_a_malformed_message_is_the_peers_protocol_error():
    node = Gossiper("a", 1, [], random.Random(0))
    with pytest.raises(ProtocolError):
        node.handle("b", SYN, [3, b"xx"], 0.0)  # 3 buckets: not a power of two
    with pytest.raises(ProtocolError):
        node.handle("b", ACK2, ["nonsense"], 0.0)


def test_a_summary_changes_only_in_the_bucket_of_the_endpoint_that_changed():
    from widecol.cluster.summary import Summary, bucket_count, digest_hash

    a, b = Summary(), Summary()
    for i in range(400):
        a.add(f"e{i}", digest_hash(f"e{i}", 1, i, -1, -1))
        b.add(f"e{i}", digest_hash(f"e{i}", 1, i, -1, -1))
    buckets = bucket_count(400)
    assert buckets == 64 and a.fold(buckets) == b.fold(buckets)
    b.change("e17", digest_hash("e17", 1, 17, -1, -1), digest_hash("e17", 1, 999, -1, -1))
    differing = a.differing(buckets, b.fold(buckets))
    assert len(differing) == 1 and "e17" in a.members(buckets, differing[0])
    assert len(a.differing(8, b.fold(8))) == 1  # a node with a smaller view folds the same fine buckets
    b.change("e17", digest_hash("e17", 1, 999, -1, -1), digest_hash("e17", 1, 17, -1, -1))
    assert a.differing(buckets, b.fold(buckets)) == []


def test_a_pool_samples_distinct_items_and_stays_consistent():
    from widecol.cluster.pool import Pool

    pool, rng = Pool(), random.Random(1)
    for i in range(10):
        pool.add(f"x{i}")
    pool.discard("x3")
    pool.discard("x3")
    assert len(pool) == 9 and "x3" not in pool
    sample = pool.sample(rng, 5, exclude=["x0"])
    assert len(set(sample)) == 5 and "x0" not in sample
    assert sorted(pool.sample(rng, 50, exclude=["x1"])) == sorted(set(pool.items) - {"x1"})
    assert pool == {f"x{i}" for i in range(10)} - {"x3"} and {"x1", "zz"} - pool == {"zz"}  # reads as a set
    pool.discard("x9")
    assert list(pool) == pool.items and len(set(pool.items)) == 8 and "x9" not in pool


def test_a_node_joining_after_a_crash_learns_the_dead_node_as_down_never_up():
    sim = Simulator(names(20), seed=16, warm=True)
    sim.run(10)
    sim.crash("n010")
    sim.run(15)
    late = sim.start("n019")  # restarts knowing nothing but the seed
    sim.run(15)
    assert "n010" in late.endpoints and "n010" not in late.live
    kinds = [e.kind for _, name, e in sim.events if name == "n019" and e.endpoint == "n010"]
    assert kinds[-1] == "down" and "up" not in kinds[kinds.index("joined"):]


def test_shared_states_stay_unmodified_and_every_summary_matches_its_view():
    """Invariant: each node's summary folds exactly the digests of the states it holds, and a state shared by
    several nodes (warm start) is never changed in place by any of them."""
    from widecol.cluster.summary import Summary, bucket_count, digest_hash

    sim = Simulator(names(30), seed=17, warm=True, loss=0.1)
    shared = {name: sim.nodes["n001"].endpoints[name] for name in names(30) if name != "n001"}
    frozen = {name: (s.generation, s.version, s.states, s.suspect, s.alive) for name, s in shared.items()}
    sim.run(20)
    sim.nodes["n007"].set_local_state(SCHEMA, "v2")
    sim.crash("n012")
    sim.run(20)
    sim.start("n012")
    sim.run(20)
    for name, s in shared.items():
        assert s.owner is None and (s.generation, s.version, s.states, s.suspect, s.alive) == frozen[name]
    for node in sim.nodes.values():
        fresh = Summary()
        for e, s in node.endpoints.items():
            fresh.add(e, digest_hash(e, s.generation, s.app_version, s.suspect, s.alive))
        b = bucket_count(len(node.endpoints))
        assert fresh.fold(b) == node._summary.fold(b)
