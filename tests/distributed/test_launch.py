"""`widecol launch`: every node of a cluster file as child processes, stopped cleanly on Ctrl-C."""

import signal
import subprocess
import sys

import pytest

from widecol.client import connect
from widecol.testing import LocalCluster, wait_until

pytestmark = pytest.mark.slow


def test_launch_starts_every_node_and_ctrl_c_stops_them_all(tmp_path):
    cluster = LocalCluster(tmp_path, 3)  # only for its cluster file
    out = tmp_path / "launch.out"
    with out.open("w") as f:
        # As from a terminal: SIGINT not ignored, even when this test runs in a background job (`cmd &` in a
        # script, or under nohup), whose children inherit SIGINT ignored and would never see the Ctrl-C.
        proc = subprocess.Popen([sys.executable, "-m", "widecol.cli", "launch", "--config", str(cluster.file)],
                                stdout=f, stderr=subprocess.STDOUT,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        wait_until(lambda: "cluster 'test' up: 3 nodes" in out.read_text() or proc.poll() is not None, 90,
                   "the cluster to come up")
        text = out.read_text()
        assert [line.split()[0] for line in text.splitlines() if " up: cql " in line] == ["n1", "n2", "n3"]
        assert all((tmp_path / "data" / f"n{i}.log").exists() for i in (1, 2, 3))
        with connect(f"{cluster.hosts['n2']}:{cluster.native_port}") as c:
            wait_until(lambda: len(c.execute("SELECT * FROM system_views.ring WHERE keyspace_name = ''").rows)
                       == 3, 30, "three nodes in the ring")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=90) == 0
        text = out.read_text()
        assert all(f"n{i} stopped" in text for i in (1, 2, 3)), text
        for i in (1, 2, 3):
            assert "stopped cleanly" in (tmp_path / "data" / f"n{i}.log").read_text()
    finally:
        proc.kill()
        proc.wait()
