"""Replication on a real three-node cluster: consistency levels, hinted handoff, read repair, routing, schema."""

import subprocess
import sys

import pytest
from cassandra import ConsistencyLevel, Unavailable
from cassandra.policies import TokenAwarePolicy
from cassandra.query import SimpleStatement

from widecol.testing import LocalCluster, wait_until

pytestmark = pytest.mark.slow

ONE, QUORUM, ALL = ConsistencyLevel.ONE, ConsistencyLevel.QUORUM, ConsistencyLevel.ALL


@pytest.fixture
def cluster(tmp_path):
    c = LocalCluster(tmp_path, 3)
    try:
        yield c.start_all()
    finally:
        c.kill_all()


def _schema(session, rf=3):
    session.execute(f"CREATE KEYSPACE ks WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': {rf}}}")
    session.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")


def _write(session, keys, level, value="v"):
    insert = session.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
    insert.consistency_level = level
    for k in keys:
        session.execute(insert, (k, f"{value}{k}"))


def _read(session, k, level):
    select = SimpleStatement(f"SELECT v FROM ks.t WHERE k = {k}", consistency_level=level)
    row = session.execute(select).one()
    return None if row is None else row.v


def test_ownership_sums_to_one_and_status_shows_every_node(cluster):
    ring = cluster.ring("n2")
    assert {r.state for r in ring.values()} == {"UN"}
    assert sum(r.owns for r in ring.values()) == pytest.approx(1.0)
    assert [r.tokens for r in ring.values()] == [8, 8, 8], ring
    out = subprocess.run([sys.executable, "-m", "widecol.cli", "status", f"{cluster.hosts['n3']}:{cluster.native_port}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stdout.splitlines() if line.startswith("UN")]
    assert len(lines) == 3
    assert {line.split()[1] for line in lines} == set(cluster.hosts.values())


def test_quorum_survives_one_dead_replica_and_is_unavailable_with_two(cluster):
    drv, s = cluster.session("n1")
    try:
        _schema(s)
        _write(s, range(20), QUORUM)
        cluster.kill("n3")
        cluster.wait_view("n1", up={"n1", "n2"}, down={"n3"})
        _write(s, range(20, 40), QUORUM)
        assert [_read(s, k, QUORUM) for k in range(40)] == [f"v{k}" for k in range(40)]
        with pytest.raises(Unavailable) as info:
            _read(s, 1, ALL)
        assert (info.value.required_replicas, info.value.alive_replicas) == (3, 2)
        cluster.kill("n2")
        cluster.wait_view("n1", up={"n1"}, down={"n2", "n3"})
        with pytest.raises(Unavailable) as info:
            _write(s, [99], QUORUM)
        assert (info.value.required_replicas, info.value.alive_replicas) == (2, 1)
        assert _read(s, 5, ONE) == "v5"
    finally:
        drv.shutdown()


def test_hinted_handoff_delivers_writes_a_replica_missed(cluster):
    drv, s = cluster.session("n1")
    try:
        _schema(s)
        cluster.stop("n3")
        cluster.wait_view("n1", up={"n1", "n2"}, down={"n3"})
        _write(s, range(100), QUORUM, value="h")
    finally:
        drv.shutdown()
    cluster.start("n3")
    cluster.wait_log("n1", f"hints: replayed to {cluster.hosts['n3']}", timeout=60)
    cluster.stop("n1")
    cluster.stop("n2")
    drv, s = cluster.session("n3")
    try:
        assert [_read(s, k, ONE) for k in range(100)] == [f"h{k}" for k in range(100)]
    finally:
        drv.shutdown()


def test_read_repair_fixes_a_stale_replica(tmp_path):
    cluster = LocalCluster(tmp_path, 3, hints=False).start_all()
    try:
        drv, s = cluster.session("n1")
        try:
            _schema(s)
            cluster.stop("n3")
            cluster.wait_view("n1", up={"n1", "n2"}, down={"n3"})
            _write(s, range(30), QUORUM, value="r")
            cluster.start("n3")
            cluster.wait_view("n1", up={"n1", "n2", "n3"})
            assert [_read(s, k, ALL) for k in range(30)] == [f"r{k}" for k in range(30)]
        finally:
            drv.shutdown()
        cluster.stop("n1")
        cluster.stop("n2")
        drv, s = cluster.session("n3")
        try:
            assert [_read(s, k, ONE) for k in range(30)] == [f"r{k}" for k in range(30)]
        finally:
            drv.shutdown()
    finally:
        cluster.kill_all()


def test_driver_token_aware_routing_reaches_a_replica_and_schema_agrees(cluster):
    from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
    from cassandra.policies import RoundRobinPolicy

    profile = ExecutionProfile(load_balancing_policy=TokenAwarePolicy(RoundRobinPolicy()))
    drv = Cluster([cluster.hosts["n1"]], port=cluster.native_port, protocol_version=4,
                  execution_profiles={EXEC_PROFILE_DEFAULT: profile})
    s = drv.connect()
    try:
        _schema(s, rf=1)
        assert drv.control_connection.wait_for_schema_agreement(wait_time=10)
        insert = s.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
        coordinators = set()
        for k in range(30):
            future = s.execute_async(insert, (k, "x"))
            future.result()
            replicas = drv.metadata.get_replicas("ks", insert.bind((k, "x")).routing_key)
            assert len(replicas) == 1
            coordinators.add(future.coordinator_host)
            assert future.coordinator_host == replicas[0].endpoint.address
        assert len(coordinators) > 1
        # Every node answers the rows written through the others, and the schema exists everywhere.
        for name in cluster.hosts:
            d, session = cluster.session(name)
            try:
                wait_until(lambda session=session: session.execute("SELECT count(*) FROM ks.t").one().count == 30,
                           10, "rows")
            finally:
                d.shutdown()
    finally:
        drv.shutdown()


def test_a_range_scan_pages_through_every_node_once(cluster):
    drv, s = cluster.session("n2")
    try:
        s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
        s.execute("CREATE TABLE ks.t (k int, c int, v text, PRIMARY KEY (k, c))")
        insert = s.prepare("INSERT INTO ks.t (k, c, v) VALUES (?, ?, ?)")
        insert.consistency_level = QUORUM
        for k in range(300):
            for c in range(3):
                s.execute(insert, (k, c, f"{k}.{c}"))
        rows = list(s.execute(SimpleStatement("SELECT k, c FROM ks.t", fetch_size=100, consistency_level=QUORUM)))
        assert sorted((r.k, r.c) for r in rows) == [(k, c) for k in range(300) for c in range(3)]
        assert s.execute(SimpleStatement("SELECT count(*) FROM ks.t", consistency_level=ALL)).one().count == 900
    finally:
        drv.shutdown()


def test_network_topology_strategy_and_local_levels(tmp_path):
    cluster = LocalCluster(tmp_path, 4)
    text = cluster.file.read_text()
    for name in ("n3", "n4"):  # n3 and n4 form a second data centre
        text = text.replace(f'name = "{name}"\n', f'name = "{name}"\ndc = "dc2"\n')
    cluster.file.write_text(text)
    cluster.start_all()
    try:
        drv, s = cluster.session("n1")
        try:
            s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 2, "
                      "'dc2': 2}")
            s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
            _write(s, range(20), ConsistencyLevel.EACH_QUORUM)
            cluster.kill("n3")
            cluster.wait_view("n1", down={"n3"})
            _write(s, range(20, 40), ConsistencyLevel.LOCAL_QUORUM)  # dc1 is whole
            assert _read(s, 25, ConsistencyLevel.LOCAL_QUORUM) == "v25"
            with pytest.raises(Unavailable):
                _write(s, [99], ConsistencyLevel.EACH_QUORUM)  # dc2 has one of two replicas
            cluster.kill("n2")
            cluster.wait_view("n1", down={"n2", "n3"})
            with pytest.raises(Unavailable):
                _read(s, 1, ConsistencyLevel.LOCAL_QUORUM)
            assert _read(s, 1, ConsistencyLevel.LOCAL_ONE) == "v1"
        finally:
            drv.shutdown()
        ring = cluster.ring("n1", "ks")
        assert sum(r.owns for r in ring.values()) == pytest.approx(4.0)  # effective ownership sums to RF
    finally:
        cluster.kill_all()


def test_a_stalled_replica_times_writes_out_then_gets_them_as_hints(tmp_path):
    import signal

    from cassandra import WriteTimeout

    cluster = LocalCluster(tmp_path, 3, extra="").start_all()
    try:
        drv, s = cluster.session("n1")
        try:
            _schema(s)
            cluster.procs["n3"].send_signal(signal.SIGSTOP)  # alive to gossip a moment longer, answering nothing
            with pytest.raises(WriteTimeout) as info:
                _write(s, [7], ALL, value="t")
            assert (info.value.received_responses, info.value.required_responses) == (2, 3)
            cluster.wait_view("n1", down={"n3"})
            cluster.procs["n3"].send_signal(signal.SIGCONT)
            cluster.wait_log("n1", f"hints: replayed to {cluster.hosts['n3']}", timeout=60)
        finally:
            drv.shutdown()
        cluster.stop("n1")
        cluster.stop("n2")
        cluster.wait_view("n3", down={"n1", "n2"})
        drv, s = cluster.session("n3")
        try:
            assert _read(s, 7, ONE) == "t7"  # the timed-out write reached n3 as a hint
        finally:
            drv.shutdown()
    finally:
        for proc in cluster.procs.values():
            proc.send_signal(signal.SIGCONT)
        cluster.kill_all()


def test_a_write_at_any_with_every_replica_down_is_kept_as_hints(tmp_path):
    cluster = LocalCluster(tmp_path, 2).start_all()
    try:
        drv, s = cluster.session("n1")
        try:
            s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
            s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
            cluster.stop("n2")
            cluster.wait_view("n1", down={"n2"})
            keys = range(40)
            _write(s, keys, ConsistencyLevel.ANY, value="a")  # n2 owns some of these: they become hints
            cluster.start("n2")
            cluster.wait_log("n1", f"hints: replayed to {cluster.hosts['n2']}", timeout=60)
            assert [_read(s, k, ONE) for k in keys] == [f"a{k}" for k in keys]
        finally:
            drv.shutdown()
    finally:
        cluster.kill_all()
