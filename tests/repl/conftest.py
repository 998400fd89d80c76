"""A real `widecol serve` process for the shell's tests, and helpers to run `widecol cql` against it."""

import itertools
import signal
import socket
import subprocess
import sys
import time

import pytest

from widecol import client as wclient

_names = itertools.count()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(log, text, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text():
            return
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not seen; log was:\n{log.read_text()}")


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """(address "127.0.0.1:PORT") of one node serving CQL for the whole session."""
    tmp = tmp_path_factory.mktemp("replnode")
    port, internode = free_port(), free_port()
    (tmp / "c.toml").write_text(
        '[cluster]\nname = "repl"\nnum_tokens = 4\n[[nodes]]\nname = "n1"\naddress = "127.0.0.1"\n'
        f'native_port = {port}\ninternode_port = {internode}\ndata_dir = "n1"\n'
    )
    log = tmp / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "widecol.cli", "serve", "--config", "c.toml", "--node", "n1"], cwd=tmp, stderr=out
        )
    try:
        wait_for(log, f"native protocol listening on 127.0.0.1:{port}")
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        finally:
            proc.kill()
            proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture
def keyspace(server):
    """A fresh keyspace name, created on the server."""
    name = f"ks{next(_names)}_{int(time.time() * 1000) % 100000}"
    with wclient.connect(server) as c:
        c.execute(f"CREATE KEYSPACE {name} WITH replication = {{'class': 'SimpleStrategy', 'replication_factor': 1}}")
    return name


def cql(server, *args, input=None, env=None, timeout=60):
    """Run `widecol cql SERVER ARGS...` to completion; the CompletedProcess (text)."""
    return subprocess.run(
        [sys.executable, "-m", "widecol.cli", "cql", server, *args],
        input=input if input is not None else "", capture_output=True, text=True, timeout=timeout, env=env,
    )
