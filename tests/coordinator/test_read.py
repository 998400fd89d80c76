"""Reads: the handler's digest match and mismatch flows, digests, and read repair that makes replicas agree."""

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.coordinator.read import (
    ReadHandler,
    canonical,
    digest,
    empty_partition,
    raw_of_wire,
    resolve,
    resolve_many,
    wire_of_raw,
)
from widecol.errors import InvalidRequest, ReadTimeout, Unavailable
from widecol.storage.cells import cells_from_wire
from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.merge import live_row, merge_versions
from widecol.storage.mutation import Mutation
from widecol.storage.token import partition_sort_key

T = "ks.t"
K = b"k"


def dc_of(endpoint):
    return "dc2" if endpoint.startswith("b") else "dc1"


def handler(lvl, replicas, live=None, rf_by_dc=None, local_dc="dc1"):
    return ReadHandler(
        lvl, replicas, live=set(replicas if live is None else live), dc_of=dc_of, local_dc=local_dc,
        rf_by_dc=rf_by_dc or {"dc1": len(replicas)},
    )


def part(*cells, key=K, deletion=None, ranges=()):
    """A partition of single-cell rows: cells are (ck, colkey, ts, value)."""
    rows: dict = {}
    for ck, col, ts, value in cells:
        rows.setdefault(ck, []).append([col, ts, value, 0 if value is not None else 100, 0])
    return [T, key, deletion, [list(r) for r in ranges], [[ck, None, cs] for ck, cs in rows.items()]]


def version(wire):
    """A wire partition as a version for merge_versions (what a memtable or an SSTable would hand over)."""
    _t, _k, d, ranges, rows = wire
    return (
        None if d is None else tuple(d),
        [tuple(r) for r in ranges],
        [(ck, None if rd is None else tuple(rd), cells_from_wire(cells)) for ck, rd, cells in rows],
    )


def apply(wire, mutation):
    """The replica's partition after it applies MUTATION, merged by the one rule, in canonical wire form."""
    return wire_of_raw(wire[0], wire[1], merge_versions([version(wire), version(mutation)]))


# -- digests -------------------------------------------------------------------------------------------------------


def test_digest_is_16_bytes_and_ignores_list_order():
    a = part((b"1", b"x", 5, b"v"), (b"1", b"y", 6, b"w"), (b"2", b"x", 7, None))
    b = [T, K, None, [], [[ck, rowdel, list(reversed(cells))] for ck, rowdel, cells in reversed(a[4])]]
    assert a != b
    assert len(digest(a)) == 16
    assert digest(a) == digest(b)


def test_digest_differs_when_a_cell_differs():
    base = part((b"1", b"x", 5, b"v"))
    assert digest(base) != digest(part((b"1", b"x", 5, b"w")))
    assert digest(base) != digest(part((b"1", b"x", 6, b"v")))
    assert digest(base) != digest(part((b"1", b"x", 5, None)))
    assert digest(base) != digest(part((b"1", b"x", 5, b"v"), key=b"other"))


def test_digest_ignores_what_the_partitions_own_deletions_shadow():
    deleted = [5, 100]
    a = part((b"1", b"x", 3, b"old"), (b"2", b"x", 9, b"new"), deletion=deleted)
    b = part((b"2", b"x", 9, b"new"), deletion=deleted)
    assert digest(a) == digest(b)
    assert canonical(a) == canonical(b)


# -- resolve and repair --------------------------------------------------------------------------------------------


def test_resolve_sends_each_replica_only_what_it_lacks():
    a = part((b"1", b"x", 5, b"v"), (b"2", b"x", 5, b"v"))
    b = part((b"1", b"x", 6, b"new"), (b"2", b"x", 5, b"v"))
    c = part((b"1", b"x", 6, b"new"), (b"2", b"x", 5, b"v"))
    merged, repairs = resolve({"a": a, "b": b, "c": c})
    assert merged == canonical(b)
    assert list(repairs) == ["a"]
    assert repairs["a"] == [T, K, None, [], [[b"1", None, [[b"x", 6, b"new", 0, 0]]]]]


def test_resolve_repairs_deletions():
    a = part((b"1", b"x", 5, b"v"), (b"2", b"x", 5, b"v"))
    b = part(deletion=[7, 50], ranges=[(b"3", b"5", 8, 60)])
    b[4] = [[b"2", [9, 70], []]]
    merged, repairs = resolve({"a": a, "b": b})
    assert repairs["a"] == [T, K, [7, 50], [[b"3", b"5", 8, 60]], [[b"2", [9, 70], []]]]
    assert "b" not in repairs  # everything a has is shadowed by b's deletions
    raw = raw_of_wire(merged)
    assert all(not live_row(raw, ck, 0) for ck in raw[2])


def test_resolve_rejects_mixed_partitions():
    with pytest.raises(ValueError):
        resolve({"a": part(key=b"1"), "b": part(key=b"2")})
    with pytest.raises(ValueError):
        resolve({})


def test_resolve_many_merges_partitions_in_token_order_and_repairs_missing_ones():
    keys = [b"k%d" % i for i in range(6)]
    a = [part((b"1", b"x", 1, b"a"), key=k) for k in keys[:4]]
    b = [part((b"1", b"x", 2, b"b"), key=k) for k in keys[2:]]
    merged, repairs = resolve_many({"a": a, "b": b})
    assert [m[1] for m in merged] == sorted(keys, key=partition_sort_key)
    assert sorted(m[1] for m in repairs["a"]) == keys[2:]  # a is older on k2, k3 and lacks k4, k5
    assert sorted(m[1] for m in repairs["b"]) == keys[:2]
    assert resolve_many({"a": [empty_partition(T, b"z")], "b": []}) == ([], {})


# -- Hypothesis: repair converges, merge order does not matter -----------------------------------------------------

timestamps = st.integers(0, 6)
cell = st.tuples(timestamps, st.one_of(st.none(), st.sampled_from([b"", b"a", b"b"])), st.integers(0, 2),
                 st.sampled_from([0, 0, 5]))
deletion = st.one_of(st.none(), st.tuples(timestamps, st.integers(0, 2)).map(list))
cks = st.sampled_from([b"1", b"2", b"3", b"4"])
bound = st.one_of(st.none(), cks)
range_tombstone = st.tuples(bound, bound, timestamps, st.integers(0, 2)).map(list)
row = st.tuples(deletion, st.dictionaries(st.sampled_from([b"", b"x", b"y", b"c\x00", b"c\x00k"]), cell, max_size=4))


@st.composite
def partitions(draw):
    rows = draw(st.dictionaries(cks, row, max_size=4))
    wire_rows = [[ck, rd, [[col, *c] for col, c in cells.items()]] for ck, (rd, cells) in rows.items()]
    ranges = draw(st.lists(range_tombstone, max_size=2))
    return [T, K, draw(st.one_of(st.none(), deletion)), ranges, wire_rows]


@settings(max_examples=300, deadline=None)
@given(st.lists(partitions(), min_size=1, max_size=4))
def test_applying_its_repair_brings_every_replica_to_the_merged_state(versions):
    responses = {f"r{i}": w for i, w in enumerate(versions)}
    merged, repairs = resolve(responses)
    for endpoint, wire in responses.items():
        if endpoint in repairs:
            after = apply(wire, repairs[endpoint])
            assert after != canonical(wire)
        else:
            after = canonical(wire)
        assert after == merged, endpoint
        assert digest(after) == digest(merged)
    for order in itertools.permutations(versions):
        assert wire_of_raw(T, K, merge_versions(version(w) for w in order)) == merged
    # The merged result is what the client sees, replica by replica, once repaired.
    raw = raw_of_wire(merged)
    for endpoint, wire in responses.items():
        fixed = raw_of_wire(apply(wire, repairs[endpoint]) if endpoint in repairs else wire)
        for ck in raw[2]:
            live = live_row(fixed, ck, 1) if ck in fixed[2] else {}
            assert live == live_row(raw, ck, 1)


@settings(max_examples=200, deadline=None)
@given(partitions(), st.randoms(use_true_random=False))
def test_digest_is_order_independent(wire, rnd):
    shuffled = [wire[0], wire[1], wire[2], list(wire[3]), [[r[0], r[1], list(r[2])] for r in wire[4]]]
    rnd.shuffle(shuffled[3])
    rnd.shuffle(shuffled[4])
    for r in shuffled[4]:
        rnd.shuffle(r[2])
    assert digest(shuffled) == digest(wire)


@settings(max_examples=200, deadline=None)
@given(partitions(), cks, st.sampled_from([b"x", b"y"]), cell)
def test_digest_differs_when_a_visible_cell_differs(wire, ck, col, new):
    merged, _ = resolve({"a": wire})
    changed = resolve({"a": wire, "b": [T, K, None, [], [[ck, None, [[col, *new]]]]]})[0]
    assert (digest(changed) == digest(merged)) == (changed == merged)


# -- the handler ---------------------------------------------------------------------------------------------------

R3 = ["a1", "a2", "a3"]


def test_quorum_asks_one_replica_for_data_and_one_for_a_digest():
    h = handler("QUORUM", R3)
    assert h.data_endpoint == "a1" and h.digest_endpoints == ["a2"]
    data = part((b"1", b"x", 5, b"v"))
    h.on_data("a1", data)
    assert h.state == "waiting"
    h.on_digest("a2", digest(data))
    assert h.state == "match"
    assert h.result() is data


def test_one_is_a_match_as_soon_as_data_arrives():
    h = handler("ONE", R3, live=["a2", "a3"])
    assert h.data_endpoint == "a2" and h.digest_endpoints == []
    h.on_data("a2", part())
    assert h.state == "match"


def test_a_digest_mismatch_asks_every_contacted_replica_for_data():
    h = handler("ALL", R3)
    h.on_digest("a3", digest(part((b"1", b"x", 5, b"v"))))
    h.on_data("a1", part((b"1", b"x", 6, b"w")))
    assert h.state == "waiting"
    h.on_digest("a2", digest(part((b"1", b"x", 6, b"w"))))
    assert h.state == "mismatch"
    assert h.full_read_endpoints() == R3
    with pytest.raises(RuntimeError):
        h.result()


def test_a_failed_contact_fails_the_read_and_the_timeout_says_what_arrived():
    h = handler("QUORUM", R3)
    h.on_digest("a2", b"\x00" * 16)
    err = h.timeout_error()
    assert isinstance(err, ReadTimeout)
    assert (err.consistency, err.received, err.required, err.data_present) == ("QUORUM", 1, 2, False)
    h.on_failure("a1")
    assert h.state == "failed"
    h2 = handler("QUORUM", R3)
    h2.on_data("a1", part())
    assert h2.timeout_error().data_present


def test_read_unavailable_and_invalid_levels():
    with pytest.raises(Unavailable) as e:
        handler("QUORUM", R3, live=["a3"])
    assert (e.value.required, e.value.alive) == (2, 1)
    with pytest.raises(InvalidRequest):
        handler("ANY", R3)
    with pytest.raises(InvalidRequest):
        handler("SERIAL", R3)


def test_local_quorum_contacts_the_local_data_centre_only():
    replicas = ["b1", "a1", "b2", "a2", "a3", "b3"]
    h = handler("LOCAL_QUORUM", replicas, rf_by_dc={"dc1": 3, "dc2": 3})
    assert [h.data_endpoint, *h.digest_endpoints] == ["a1", "a2"]
    h = handler("LOCAL_ONE", replicas, live=["b1", "a3"], rf_by_dc={"dc1": 3, "dc2": 3})
    assert h.data_endpoint == "a3"


def test_each_quorum_contacts_a_quorum_in_each_data_centre():
    replicas = ["a1", "a2", "a3", "b1", "b2", "b3"]
    h = handler("EACH_QUORUM", replicas, live=["a1", "a3", "a2", "b2", "b3"], rf_by_dc={"dc1": 3, "dc2": 3})
    assert [h.data_endpoint, *h.digest_endpoints] == ["a1", "a2", "b2", "b3"]


def test_answers_from_endpoints_not_contacted_are_ignored():
    h = handler("ONE", R3)
    h.on_data("a2", part())
    assert h.state == "waiting"


# -- scenario: replicas on real engines ------------------------------------------------------------------------------


@pytest.fixture
def engines(tmp_path, clock):
    opened = {}
    for name in R3:
        opened[name] = Engine.open(tmp_path / name, EngineOptions(background_compaction=False), clock=clock)
        opened[name].create_table(T)
    yield opened
    for engine in opened.values():
        engine.close()


def answer(engine, key):
    raw, _boundary = engine.table(T).read_raw(key)
    return wire_of_raw(T, key, raw)


def test_a_quorum_read_repairs_replicas_that_missed_writes(engines, clock):
    now = int(clock())
    a1, a2, a3 = engines["a1"], engines["a2"], engines["a3"]
    for e in (a1, a2, a3):
        e.apply(Mutation(T, K).put(b"1", {b"v": b"one"}, timestamp=10, now=now))
    a1.flush()  # one replica holds the old data in an SSTable
    # a2 missed an update and a row deletion; a3 missed a partition-range tombstone and wrote a stale cell.
    for e in (a1, a3):
        e.apply(Mutation(T, K).set(b"1", b"v", b"uno", timestamp=20))
        e.apply(Mutation(T, K).put(b"2", {b"v": b"two"}, timestamp=21).delete_row(b"3", timestamp=22, now=now))
    for e in (a1, a2):
        e.apply(Mutation(T, K).delete_range(b"4", b"6", timestamp=30, now=now))
    a3.apply(Mutation(T, K).put(b"5", {b"v": b"stale"}, timestamp=25))
    a2.apply(Mutation(T, K).put(b"7", {b"v": b"only-a2"}, timestamp=40))

    h = ReadHandler("QUORUM", ["a2", "a3", "a1"], live=set(R3), dc_of=dc_of, local_dc="dc1", rf_by_dc={"dc1": 3})
    h.on_data(h.data_endpoint, answer(engines[h.data_endpoint], K))
    for e in h.digest_endpoints:
        h.on_digest(e, digest(answer(engines[e], K)))
    assert h.state == "mismatch"
    merged, repairs = resolve({e: answer(engines[e], K) for e in h.full_read_endpoints()})
    assert set(repairs) == {"a2", "a3"}
    for e, mutation in repairs.items():
        engines[e].apply_batch([Mutation.from_wire(mutation)])
    assert answer(a2, K) == answer(a3, K) == merged
    expected = [(b"1", b"uno"), (b"2", b"two"), (b"7", b"only-a2")]
    assert [(ck, cells[b"v"][1]) for ck, cells in a2.table(T).read(K)] == expected
    assert [(ck, cells[b"v"][1]) for ck, cells in a3.table(T).read(K)] == expected
    # a1 was not contacted at QUORUM; a full resolve including it repairs it as well.
    _merged, later = resolve({e: answer(engines[e], K) for e in R3})
    assert set(later) == {"a1"}


def test_a_range_read_repairs_every_partition(engines, clock):
    rnd = random.Random(7)
    keys = [b"p%02d" % i for i in range(20)]
    for i, key in enumerate(keys):
        for name, e in engines.items():
            if rnd.random() < 0.7:
                e.apply(Mutation(T, key).put(b"c", {b"v": name.encode()}, timestamp=i * 10 + rnd.randrange(5)))
    engines["a2"].flush()
    scans = {n: [wire_of_raw(T, key, raw) for _sk, key, raw in e.table(T).scan_raw()] for n, e in engines.items()}
    merged, repairs = resolve_many(scans)
    assert [m[1] for m in merged] == sorted({w[1] for ws in scans.values() for w in ws}, key=partition_sort_key)
    for name, mutations in repairs.items():
        engines[name].apply_batch([Mutation.from_wire(m) for m in mutations])
    after = {n: [wire_of_raw(T, key, raw) for _sk, key, raw in e.table(T).scan_raw()] for n, e in engines.items()}
    assert after["a1"] == after["a2"] == after["a3"] == merged
