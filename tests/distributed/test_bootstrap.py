"""Adding a node to a cluster that holds data: it streams its ranges while writes go on, and loses none."""

import re
import subprocess
import sys
import threading

import pytest
from cassandra import ConsistencyLevel, Unavailable
from cassandra.query import SimpleStatement

from widecol.testing import LocalCluster

pytestmark = pytest.mark.slow


def test_a_fourth_node_joins_under_quorum_writes_and_holds_every_key_it_replicates(tmp_path):
    cluster = LocalCluster(tmp_path, 4)
    for name in ("n1", "n2", "n3"):
        cluster.start(name)
    try:
        cluster.wait_view("n1", up={"n1", "n2", "n3"})
        drv, s = cluster.session("n1")
        acknowledged = []
        try:
            s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
            s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
            insert = s.prepare("INSERT INTO ks.t (k, v) VALUES (?, ?)")
            insert.consistency_level = ConsistencyLevel.QUORUM
            for k in range(500):
                s.execute(insert, (k, f"v{k}"))
                acknowledged.append(k)
            stop = threading.Event()
            errors = []

            def writer():
                k = 500
                while not stop.is_set():
                    try:
                        s.execute(insert, (k, f"v{k}"))
                        acknowledged.append(k)
                    except Exception as exc:  # noqa: BLE001 - a failed write is not acknowledged; keep count
                        errors.append(exc)
                    k += 1

            thread = threading.Thread(target=writer)
            thread.start()
            try:
                cluster.start("n4")
                cluster.wait_log("n4", "bootstrap streamed")
                for name in cluster.hosts:
                    cluster.wait_view(name, up=set(cluster.hosts))
            finally:
                stop.set()
                thread.join()
        finally:
            drv.shutdown()
        assert len(acknowledged) > 500
        ring = cluster.ring("n1")
        assert ring[cluster.hosts["n4"]].owns > 0.15  # it took a share of the ring

        # n1 gave ranges to n4: cleanup drops its copies of them, and nothing it still replicates.
        n1 = f"{cluster.hosts['n1']}:{cluster.native_port}"
        out = subprocess.run([sys.executable, "-m", "widecol.cli", "cleanup", "ks", "--host", n1],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        m = re.search(r"ks\.t: (\d+) SSTables rewritten, (\d+) -> (\d+) bytes", out.stdout)
        assert m and int(m.group(1)) > 0 and int(m.group(3)) < int(m.group(2)), out.stdout
        # ...and a repair of n1's ranges finds nothing missing on it (read repair would hide a loss from reads).
        repair = subprocess.run([sys.executable, "-m", "widecol.cli", "repair", "ks", "--host", n1],
                                capture_output=True, text=True, timeout=300)
        assert repair.returncode == 0, repair.stdout + repair.stderr
        assert re.search(r"partitions streamed:\s+0$", repair.stdout, re.M), repair.stdout
        bad = subprocess.run([sys.executable, "-m", "widecol.cli", "cleanup", "nope", "--host", n1],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 1 and "Keyspace 'nope' does not exist" in bad.stderr
        for name in ("n1", "n2", "n3"):
            cluster.stop(name)
        cluster.wait_view("n4", down={"n1", "n2", "n3"})
        drv, s = cluster.session("n4")
        try:
            on_n4 = 0
            for k in acknowledged:
                try:
                    row = s.execute(SimpleStatement(f"SELECT v FROM ks.t WHERE k = {k}",
                                                    consistency_level=ConsistencyLevel.ONE)).one()
                except Unavailable:
                    continue  # n4 is not a replica of k
                assert row is not None and row.v == f"v{k}", k
                on_n4 += 1
            assert on_n4 > len(acknowledged) * 0.2
        finally:
            drv.shutdown()
    finally:
        cluster.kill_all()


def test_a_node_that_dies_while_joining_leaves_no_trace_once_restarted(tmp_path):
    cluster = LocalCluster(tmp_path, 3)
    for name in ("n1", "n2"):
        cluster.start(name)
    try:
        cluster.wait_view("n1", up={"n1", "n2"})
        drv, s = cluster.session("n1")
        try:
            s.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 2}")
            s.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
            for k in range(100):
                s.execute(f"INSERT INTO ks.t (k, v) VALUES ({k}, 'v{k}')")
        finally:
            drv.shutdown()
        cluster.start("n3", wait=False)
        cluster.wait_log("n3", "joining")
        cluster.kill("n3")
        assert not (tmp_path / "data" / "n3" / "identity.json").exists()
        first = cluster.ring("n1")[cluster.hosts["n3"]]
        assert first.state in ("UJ", "DJ") and first.owns == 0.0  # it never owned anything

        cluster.start("n3")
        for name in ("n1", "n2", "n3"):
            cluster.wait_view(name, up={"n1", "n2", "n3"})
        ring = cluster.ring("n1")
        assert len(ring) == 3 and ring[cluster.hosts["n3"]].host_id != first.host_id
        assert sum(r.owns for r in ring.values()) == pytest.approx(1.0)
        drv, s = cluster.session("n3")
        try:
            assert s.execute(SimpleStatement("SELECT count(*) FROM ks.t",
                                             consistency_level=ConsistencyLevel.ALL)).one().count == 100
        finally:
            drv.shutdown()
    finally:
        cluster.kill_all()
