"""`widecol serve` as a real process: it starts, says it is ready, and stops cleanly on SIGTERM and SIGINT."""

import signal
import socket
import subprocess
import sys
import time

import pytest


def start(*args, cwd):
    return subprocess.Popen(
        [sys.executable, "-m", "widecol.cli", "serve", *args], cwd=cwd, stderr=subprocess.PIPE, text=True
    )


def wait_for(proc, text, timeout=30.0):
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not seen; stderr was:\n{''.join(seen)}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_starts_and_stops_cleanly(tmp_path, signum):
    proc = start(cwd=tmp_path)
    try:
        wait_for(proc, "ready")
        assert (tmp_path / "widecol-data" / "storage" / "commitlog").is_dir()
        proc.send_signal(signum)
        wait_for(proc, "stopped cleanly")
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_node_of_a_cluster_file(tmp_path):
    (tmp_path / "c.toml").write_text(
        '[cluster]\nname = "t"\n[[nodes]]\nname = "a"\naddress = "127.0.0.1"\ndata_dir = "nodes/a"\n'
        f"native_port = {_free_port()}\ninternode_port = {_free_port()}\n"
    )
    proc = start("--config", "c.toml", "--node", "a", cwd=tmp_path)
    try:
        wait_for(proc, "node a: ready")
        assert (tmp_path / "nodes" / "a" / "storage").is_dir()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_an_address_in_use_is_one_clear_line_and_exit_status_1(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        (tmp_path / "c.toml").write_text(
            '[cluster]\nname = "t"\n[[nodes]]\nname = "a"\naddress = "127.0.0.1"\n'
            f"native_port = {_free_port()}\ninternode_port = {port}\n"
        )
        proc = start("--config", "c.toml", "--node", "a", cwd=tmp_path)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1
    assert f"widecol: cannot listen for internode messaging on 127.0.0.1:{port}: Address already in use" in err
    assert "Traceback" not in err
