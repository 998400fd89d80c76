"""widecol.client routes each request with a known partition key to the node that owns its token."""

import pytest

from widecol.client import connect
from widecol.testing import LocalCluster

pytestmark = pytest.mark.slow


def _writes(cluster, name):
    with connect(f"{cluster.hosts[name]}:{cluster.native_port}") as c:
        rows = c.execute("SELECT * FROM system_views.metrics").as_dicts()
    return {r["name"]: r["value"] for r in rows}["coordinator.writes"]


def test_the_client_sends_each_write_to_the_owner_of_its_partition(tmp_path):
    cluster = LocalCluster(tmp_path, 3).start_all()
    try:
        with connect(f"{cluster.hosts['n1']}:{cluster.native_port}") as c:  # one contact point only
            c.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
            c.execute("CREATE TABLE ks.t (k int PRIMARY KEY, v text)")
            before = {n: _writes(cluster, n) for n in cluster.hosts}
            for k in range(90):
                c.put("ks", "t", {"k": k, "v": f"v{k}"})
            assert [c.get("ks", "t", {"k": k})["v"] for k in range(90)] == [f"v{k}" for k in range(90)]
        coordinated = {n: _writes(cluster, n) - before[n] for n in cluster.hosts}
        assert sum(coordinated.values()) == 90
        assert all(count > 0 for count in coordinated.values()), coordinated  # not all through n1
    finally:
        cluster.kill_all()
