"""Decommission: a node leaves, its data is on the new owners, and reads at ALL succeed without it."""

import subprocess
import sys

import pytest
from cassandra import ConsistencyLevel
from cassandra.query import SimpleStatement

from widecol.testing import LocalCluster, wait_until

pytestmark = pytest.mark.slow


def _load(cluster, rows):
    """ks.t with RF 2 and ROWS rows written at ALL, so every replica holds them."""
    drv, s = cluster.session("n1")
    try:
        s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
        s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
        insert = s.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
        insert.consistency_level = ConsistencyLevel.ALL
        for k in range(rows):
            s.execute(insert, (k, f"v{k}"))
    finally:
        drv.shutdown()


def test_a_decommissioned_node_hands_its_data_over_and_stays_gone(tmp_path):
    cluster = LocalCluster(tmp_path, 4).start_all()
    try:
        _load(cluster, 400)
        done = subprocess.run([sys.executable, "-m", "widecol.cli", "decommission",
                               f"{cluster.hosts['n4']}:{cluster.native_port}"], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        assert "decommissioned" in done.stdout
        assert cluster.procs["n4"].wait(timeout=60) == 0  # it stopped by itself, cleanly
        cluster.procs.pop("n4")
        assert not (tmp_path / "data" / "n4" / "identity.json").exists()  # a restart would join as a new node
        wait_until(lambda: cluster.hosts["n4"] not in cluster.ring("n1"), 30, "n4 to leave n1's ring")
        ring = cluster.ring("n2")
        assert set(ring) == {cluster.hosts[n] for n in ("n1", "n2", "n3")}
        assert sum(r.owns for r in ring.values()) == pytest.approx(1.0)
        drv, s = cluster.session("n2")
        try:
            for k in range(400):
                row = s.execute(SimpleStatement(f"SELECT v FROM ks.t WHERE k = {k}",
                                                consistency_level=ConsistencyLevel.ALL)).one()
                assert row is not None and row.v == f"v{k}", k
        finally:
            drv.shutdown()
    finally:
        cluster.kill_all()


def test_removenode_restores_replication_after_a_node_dies(tmp_path):
    cluster = LocalCluster(tmp_path, 4).start_all()
    try:
        _load(cluster, 300)
        dead = cluster.ring("n1")[cluster.hosts["n4"]].host_id
        cluster.kill("n4")
        cluster.wait_view("n1", down={"n4"})
        done = subprocess.run([sys.executable, "-m", "widecol.cli", "removenode", dead, "--host",
                               f"{cluster.hosts['n1']}:{cluster.native_port}"], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, done.stderr
        for name in ("n1", "n2", "n3"):
            wait_until(lambda name=name: cluster.hosts["n4"] not in cluster.ring(name), 30, f"{name} to drop n4")
        # Every surviving replica holds its keys: a node reads its own copy first at ONE.
        for name in ("n1", "n2", "n3"):
            drv, s = cluster.session(name)
            try:
                for k in range(300):
                    row = s.execute(SimpleStatement(f"SELECT v FROM ks.t WHERE k = {k}",
                                                    consistency_level=ConsistencyLevel.ONE)).one()
                    assert row is not None and row.v == f"v{k}", (name, k)
            finally:
                drv.shutdown()
    finally:
        cluster.kill_all()
