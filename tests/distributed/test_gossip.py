"""Gossip between real processes: membership, failure detection, restarts and the cluster secret."""

import pytest

from widecol.client import connect
from widecol.testing import LocalCluster, wait_until

pytestmark = pytest.mark.slow


def _gossip(cluster, name):
    with connect(f"{cluster.hosts[name]}:{cluster.native_port}", timeout=5) as c:
        return {r["endpoint"].rpartition(":")[0]: r for r in c.execute("SELECT * FROM system_views.gossip").as_dicts()}


def _metrics(cluster, name):
    with connect(f"{cluster.hosts[name]}:{cluster.native_port}", timeout=5) as c:
        return {r["name"]: r["value"] for r in c.execute("SELECT * FROM system_views.metrics").as_dicts()}


def test_four_nodes_see_each_other_and_a_killed_node_goes_down_then_comes_back(tmp_path):
    cluster = LocalCluster(tmp_path, 4).start_all()
    try:
        names = set(cluster.hosts)
        for name in names:
            cluster.wait_view(name, up=names)
        hashes = {next(iter(_gossip(cluster, n).values()))["view_hash"] for n in names}
        before = _gossip(cluster, "n1")[cluster.hosts["n4"]]["generation"]

        cluster.kill("n4")
        for name in names - {"n4"}:
            cluster.wait_view(name, up=names - {"n4"}, down={"n4"})

        cluster.start("n4")
        for name in names:
            cluster.wait_view(name, up=names)
        after = _gossip(cluster, "n1")[cluster.hosts["n4"]]["generation"]
        assert after > before  # the restart's new generation superseded the old state
        assert hashes  # every node could compute its view hash
        metrics = _metrics(cluster, "n2")
        assert metrics["gossip.rounds"] > 0 and metrics["messaging.sent_bytes"] > 0
    finally:
        cluster.kill_all()


def test_a_node_with_the_wrong_secret_never_joins(tmp_path):
    good = tmp_path / "good"
    good.mkdir()
    cluster = LocalCluster(good, 2, extra="")
    text = cluster.file.read_text().replace('name = "test"\n', 'name = "test"\nsecret = "right"\n', 1)
    cluster.file.write_text(text)
    cluster.start("n1")
    try:
        # n2 uses the same cluster file except for the secret.
        (tmp_path / "bad").mkdir()
        bad_file = tmp_path / "bad" / "cluster.toml"
        bad_file.write_text(text.replace('secret = "right"', 'secret = "wrong"')
                            .replace('data_dir = "data/', f'data_dir = "{tmp_path}/bad/data/'))
        cluster.file, good_file = bad_file, cluster.file
        cluster.start("n2")
        cluster.file = good_file
        wait_until(lambda: _metrics(cluster, "n1").get("messaging.rejected", 0) > 0, 30, "rejected messages")
        assert cluster.hosts["n2"] not in _gossip(cluster, "n1")
        assert set(cluster.ring("n1")) == {cluster.hosts["n1"]}
    finally:
        cluster.kill_all()
