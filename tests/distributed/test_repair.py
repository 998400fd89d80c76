"""Anti-entropy repair on a real three-node cluster (hints off): a replica that missed writes while it was down
gets them from `widecol repair`, and only what differs is streamed. Also the replica side's trees on a real
engine, and the REPAIR statement on a standalone node."""

import re
import socket
import subprocess
import sys

import pytest
import trio
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from widecol.client import AsyncClient, connect
from widecol.config import NodeConfig
from widecol.coordinator.merkle import MerkleTree
from widecol.coordinator.read import digest, wire_of_raw
from widecol.errors import InvalidRequest
from widecol.net.repair import RepairService, repair_statement
from widecol.node import serve
from widecol.repair_cmd import statement
from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.mutation import Mutation
from widecol.storage.token import MAX_TOKEN, MIN_TOKEN, token
from widecol.testing import LocalCluster

ONE, QUORUM, ALL = ConsistencyLevel.ONE, ConsistencyLevel.QUORUM, ConsistencyLevel.ALL


def _write(session, keys, level):
    insert = session.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
    insert.consistency_level = level
    for k in keys:
        session.execute(insert, (k, f"value-{k}"))


def _repair(cluster, name, *args):
    out = subprocess.run([sys.executable, "-m", "widecol.cli", "repair", *args, "--host",
                          f"{cluster.hosts[name]}:{cluster.native_port}"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    report = {m.group(1): int(m.group(2)) for m in re.finditer(r"^\s+([a-z ]+):\s+(\d+)", out.stdout, re.M)}
    return report, out


def _diverged_cluster(tmp_path, total, missed, lose_sstables=False):
    """A three-node cluster, RF 3, hints off: TOTAL rows of which the last MISSED were written while n3 was
    down (and, with LOSE_SSTABLES, every SSTable of ks.t on n3 deleted meanwhile). Returns the cluster (every node
    up again)."""
    cluster = LocalCluster(tmp_path, 3, hints=False).start_all()
    drv, s = cluster.session("n1")
    try:
        s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}")
        s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
        _write(s, range(total - missed), ALL)
        cluster.stop("n3")
        cluster.wait_view("n1", up={"n1", "n2"}, down={"n3"})
        _write(s, range(total - missed, total), QUORUM)
    finally:
        drv.shutdown()
    if lose_sstables:
        files = list((tmp_path / "data" / "n3" / "storage" / "tables").glob("ks.t-*/[0-9]*-*"))
        assert files  # the clean stop flushed n3's rows into SSTables
        for path in files:
            path.unlink()
    cluster.start("n3")
    for name in cluster.hosts:
        cluster.wait_view(name, up=set(cluster.hosts))
    return cluster


@pytest.mark.slow
def test_repair_restores_a_replica_that_missed_writes_and_lost_its_sstables(tmp_path):
    cluster = _diverged_cluster(tmp_path, 300, 100, lose_sstables=True)
    try:
        assert "have no files" in cluster.log_text("n3")  # it started without them, and said so
        report, out = _repair(cluster, "n1", "ks")
        assert report["ranges compared"] > 0
        assert report["ranges out of sync"] > 0, out.stdout
        assert report["ranges skipped"] == 0
        assert report["partitions streamed"] == 300  # every row to n3, and nothing else
        again, _ = _repair(cluster, "n2", "ks", "t")
        assert again["ranges out of sync"] == 0 and again["partitions streamed"] == 0
        cluster.stop("n1")
        cluster.stop("n2")
        cluster.wait_view("n3", up={"n3"}, down={"n1", "n2"})
        drv, s = cluster.session("n3")
        try:
            select = s.prepare("SELECT v FROM ks.t WHERE k = ?")
            select.consistency_level = ONE
            values = {k: s.execute(select, (k,)).one() for k in range(300)}
            assert {k: r.v if r else None for k, r in values.items()} == {k: f"value-{k}" for k in range(300)}
            rows = s.execute(SimpleStatement("SELECT k FROM ks.t", consistency_level=ONE))
            assert sorted(r.k for r in rows) == list(range(300))
        finally:
            drv.shutdown()
    finally:
        cluster.kill_all()


@pytest.mark.slow
def test_a_small_divergence_streams_a_small_fraction_and_progress_is_visible(tmp_path):
    total, missed = 3000, 30
    cluster = _diverged_cluster(tmp_path, total, missed)
    try:
        report, out = _repair(cluster, "n3")  # every keyspace, from the node that missed the writes
        assert report["partitions streamed"] == missed
        per_partition = report["bytes streamed"] / missed
        assert report["bytes streamed"] < 0.2 * per_partition * total
        # The trees narrowed the comparison: far fewer partitions were read than the table holds.
        with connect(f"{cluster.hosts['n3']}:{cluster.native_port}") as client:
            rows = client.execute("SELECT * FROM system_views.repair").as_dicts()
        assert [r["state"] for r in rows] == ["done"]
        assert rows[0]["ranges_done"] == rows[0]["ranges_total"] == report["ranges compared"]
        assert rows[0]["partitions_compared"] < total / 2, rows
        assert "repair: " in out.stderr or out.stderr == ""  # plain progress lines when stderr is a pipe
    finally:
        cluster.kill_all()


@pytest.mark.slow
def test_a_replica_that_is_down_makes_its_ranges_skipped_and_the_command_fail(tmp_path):
    cluster = LocalCluster(tmp_path, 3, hints=False).start_all()
    try:
        with connect(f"{cluster.hosts['n1']}:{cluster.native_port}") as client:
            client.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', "
                           "'replication_factor': 2}")
            client.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
        cluster.kill("n2")
        cluster.wait_view("n1", up={"n1", "n3"}, down={"n2"})
        out = subprocess.run([sys.executable, "-m", "widecol.cli", "repair", "ks", "--host",
                              f"{cluster.hosts['n1']}:{cluster.native_port}"], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 1
        assert "ranges skipped" in out.stdout and cluster.hosts["n2"] in out.stderr.splitlines()[-1]
        bad = subprocess.run([sys.executable, "-m", "widecol.cli", "repair", "nope", "--host",
                              f"{cluster.hosts['n1']}:{cluster.native_port}"], capture_output=True, text=True,
                             timeout=60)
        assert bad.returncode == 1 and bad.stderr.strip().endswith("Keyspace 'nope' does not exist")
    finally:
        cluster.kill_all()


async def test_a_standalone_node_answers_repair_with_invalid_request(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = NodeConfig(data_dir=tmp_path, native_port=port)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve, config)
        async with await AsyncClient.connect(f"127.0.0.1:{port}") as client:
            with pytest.raises(InvalidRequest, match="repair needs a cluster"):
                await client.execute("REPAIR ks")
        nursery.cancel_scope.cancel()


def test_repair_statement_is_recognised_before_the_cql_parser():
    assert repair_statement("REPAIR") == (None, None)
    assert repair_statement(" repair Ks ;") == ("ks", None)
    assert repair_statement('REPAIR "Ks"."My""T"') == ("Ks", 'My"T')
    assert repair_statement("repair ks . t") == ("ks", "t")
    assert repair_statement("REPAIRS ks") is None
    assert repair_statement("SELECT * FROM repair") is None
    assert statement(None, None) == "REPAIR" and statement("ks", "t") == "REPAIR ks.t"
    assert repair_statement(statement("Odd Name", None)) == ("Odd Name", None)


def test_a_replicas_tree_hashes_the_digests_reads_use(tmp_path):
    engine = Engine.open(tmp_path / "storage", EngineOptions())
    try:
        engine.create_table("ks.t")
        muts = []
        for i in range(500):
            key = i.to_bytes(4, "big")
            muts.append(Mutation("ks.t", key, None, [], [[b"", None, [[b"v", 10 + i, b"x" * (i % 7), 0, 0]]]]))
        engine.apply_batch(muts)
        service = RepairService(local="a:1", engine=engine, replica=None, messaging=None,  # type: ignore[arg-type]
                                membership=None, store=None)  # type: ignore[arg-type]
        table = engine.table("ks.t")
        expected = [(token(key), digest(wire_of_raw("ks.t", key, raw))) for _sk, key, raw in table.scan_raw()]
        assert service.digests("ks.t", MIN_TOKEN, MAX_TOKEN) == expected
        tree = service.tree("ks.t", MIN_TOKEN, MAX_TOKEN, 4)
        assert tree == MerkleTree.build(MIN_TOKEN, MAX_TOKEN, 4, expected)
        engine.flush("ks.t")
        assert service.tree("ks.t", MIN_TOKEN, MAX_TOKEN, 4) == tree  # same data, wherever it lives
    finally:
        engine.close()
