"""The real Cassandra shell (cqlsh) and our client against one real `widecol serve` process."""

import subprocess
import sys
from pathlib import Path

import pytest

import widecol.client
from widecol.testing import single_node

CQLSH = Path(sys.executable).parent / "cqlsh"


@pytest.fixture(scope="module")
def serve(tmp_path_factory):
    # cqlsh resets its connections; single_node checks that the server took that quietly.
    with single_node(tmp_path_factory.mktemp("cqlsh"), "shell") as (_proc, port, _log):
        yield port


def cqlsh(port, statements):
    done = subprocess.run([str(CQLSH), "127.0.0.1", str(port), "-e", statements], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "error" not in done.stderr.lower(), done.stderr
    return done.stdout


def table(output):
    """The cells of cqlsh's table output: one list per data row, header excluded."""
    lines = [line for line in output.splitlines() if "|" in line]
    return [[cell.strip() for cell in line.split("|")] for line in lines[1:]]


def test_cqlsh_creates_writes_and_reads(serve):
    out = cqlsh(serve, "CREATE KEYSPACE shell WITH replication = {'class': 'SimpleStrategy', "
                       "'replication_factor': 1}; "
                       "CREATE TABLE shell.t (k int, c int, v text, l list<int>, PRIMARY KEY (k, c)); "
                       "INSERT INTO shell.t (k, c, v, l) VALUES (1, 1, 'one', [1, 2]); "
                       "INSERT INTO shell.t (k, c, v) VALUES (1, 2, 'two'); "
                       "SELECT * FROM shell.t WHERE k = 1;")
    assert table(out) == [["1", "1", "[1, 2]", "one"], ["1", "2", "null", "two"]]
    assert "(2 rows)" in out
    # what cqlsh wrote, our client reads; what our client writes, cqlsh reads
    with widecol.client.connect(f"127.0.0.1:{serve}", keyspace="shell") as c:
        assert c.get_partition("shell", "t", {"k": 1}) == [
            {"k": 1, "c": 1, "l": [1, 2], "v": "one"}, {"k": 1, "c": 2, "l": None, "v": "two"}]
        c.put("shell", "t", {"k": 2, "c": 5, "v": "it's ours"})
    assert table(cqlsh(serve, "SELECT c, v FROM shell.t WHERE k = 2")) == [["5", "it's ours"]]


def test_cqlsh_reads_the_schema_tables(serve):
    cqlsh(serve, "CREATE KEYSPACE IF NOT EXISTS meta WITH replication = {'class': 'SimpleStrategy', "
                 "'replication_factor': 1}; CREATE TABLE IF NOT EXISTS meta.m (a int, b text, PRIMARY KEY (a, b))")
    names = [row[0] for row in table(cqlsh(serve, "SELECT keyspace_name, durable_writes FROM system_schema.keyspaces"))]
    assert {"meta", "system", "system_schema"} <= set(names)
    columns = table(cqlsh(serve, "SELECT column_name, kind, type FROM system_schema.columns "
                                 "WHERE keyspace_name = 'meta' AND table_name = 'm'"))
    assert sorted(columns) == [["a", "partition_key", "int"], ["b", "clustering", "text"]]


def test_cqlsh_describe(serve):
    cqlsh(serve, "CREATE KEYSPACE IF NOT EXISTS described WITH replication = {'class': 'SimpleStrategy', "
                 "'replication_factor': 1}; CREATE TABLE IF NOT EXISTS described.t (k int PRIMARY KEY, v text)")
    assert "described" in cqlsh(serve, "DESCRIBE KEYSPACES")
    assert "CREATE TABLE described.t" in cqlsh(serve, "DESCRIBE TABLE described.t")
    out = cqlsh(serve, "DESCRIBE KEYSPACE described")
    assert "CREATE KEYSPACE described WITH replication" in out and "CREATE TABLE described.t" in out
    assert "Cluster: shell" in cqlsh(serve, "DESCRIBE CLUSTER")
