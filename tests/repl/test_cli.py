"""`widecol cql` as a process: -e, -f, piped stdin, -k, exit codes and an unreachable node."""

from tests.repl.conftest import cql
from widecol.testing import free_port


def test_execute_prints_results_and_exits_0(server, keyspace):
    r = cql(server, "-e", f"CREATE TABLE {keyspace}.t (k int PRIMARY KEY, b blob); "
                          f"INSERT INTO {keyspace}.t (k, b) VALUES (1, 0xcafe); SELECT * FROM {keyspace}.t")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "\n k | b\n---+--------\n 1 | 0xcafe\n\n(1 rows)\n"
    assert r.stderr == ""


def test_a_failed_statement_exits_2_after_running_the_rest(server, keyspace):
    r = cql(server, "-k", keyspace, "-e", "CREATE TABLE t (k int PRIMARY KEY); SELECT * FROM nope; SELECT * FROM t")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and r.stderr.startswith("InvalidRequest: Error from server: code=2200")
    assert "Traceback" not in r.stderr
    assert r.stdout.endswith("(0 rows)\n")


def test_file_runs_every_statement_and_names_the_failing_line(server, keyspace, tmp_path):
    script = tmp_path / "schema.cql"
    script.write_text(
        f"-- set up\nUSE {keyspace};\nCREATE TABLE f (\n  k int PRIMARY KEY,\n  v text\n);\n"
        "INSERT INTO f (k, v) VALUES (1, 'a;b'); /* ; */\nINSERT INTO f (k, v)\n  VALUES ('bad', 'x');\n"
        "SELECT v FROM f"
    )
    r = cql(server, "-f", str(script))
    assert r.returncode == 2
    assert r.stderr.startswith(f"{script}:8:InvalidRequest:"), r.stderr
    assert " a;b\n\n(1 rows)\n" in r.stdout
    script.write_text(f"USE {keyspace}; SELECT v FROM f;")
    assert cql(server, "-f", str(script)).returncode == 0


def test_statements_from_a_pipe(server, keyspace):
    r = cql(server, input=f"use {keyspace};\nCREATE TABLE p (k int PRIMARY KEY);\nINSERT INTO p (k)\n VALUES (5);\n"
                          "EXPAND ON\nSELECT * FROM p;\nEXIT\nSELECT * FROM nope;\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Now Expanded output is enabled\n\n@ Row 1\n---+---\n k | 5\n\n(1 rows)\n"
    r = cql(server, input="SELECT * FROM nope;")
    assert r.returncode == 2 and r.stderr.startswith("InvalidRequest")


def test_unknown_keyspace_option_fails(server):
    r = cql(server, "-k", "no_such_keyspace", "-e", "SELECT * FROM t")
    assert r.returncode == 2 and "InvalidRequest" in r.stderr


def test_unreachable_node_is_one_line_and_exit_1():
    port = free_port()
    r = cql(f"127.0.0.1:{port}", "-e", "SELECT * FROM t")
    assert r.returncode == 1
    assert r.stderr.startswith(f"widecol cql: cannot connect to 127.0.0.1:{port}: ")
    assert r.stderr.count("\n") == 1, r.stderr


def test_bad_address_and_conflicting_options_exit_2(server):
    r = cql("127.0.0.1:notaport", "-e", "SELECT * FROM t")
    assert r.returncode == 2 and r.stderr.startswith("widecol cql: bad port"), r.stderr
    r = cql(server, "-e", "SELECT * FROM t", "-f", "x.cql")
    assert r.returncode == 2 and "not both" in r.stderr
