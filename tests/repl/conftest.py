"""A real `widecol serve` process for the shell's tests, and helpers to run `widecol cql` against it."""

import itertools
import subprocess
import sys
import time

import pytest

from widecol import client as wclient
from widecol.testing import single_node

_names = itertools.count()


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    """(address "127.0.0.1:PORT") of one node serving CQL for the whole session."""
    with single_node(tmp_path_factory.mktemp("replnode"), "repl") as (_proc, port, _log):
        yield f"127.0.0.1:{port}"


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
