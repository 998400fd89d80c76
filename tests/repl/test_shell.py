"""The Shell over the real client and a real node: results, shell commands, paging, DESCRIBE, errors."""

import io

import pytest

from widecol import client as wclient
from widecol.repl import Shell


class Session:
    def __init__(self, server, interactive=False, answers=()):
        self.client = wclient.connect(server)
        self.out, self.err = io.StringIO(), io.StringIO()
        self.answers = list(answers)
        self.asked = 0
        self.shell = Shell(self.client, out=self.out, err=self.err, interactive=interactive, ask_more=self.more)

    def more(self):
        self.asked += 1
        return self.answers.pop(0) if self.answers else True

    def run(self, text):
        self.out.seek(0), self.out.truncate()
        self.err.seek(0), self.err.truncate()
        ok = self.shell.run(text)
        return ok, self.out.getvalue(), self.err.getvalue()


@pytest.fixture
def session(server):
    s = Session(server)
    yield s
    s.client.close()


def test_rows_are_printed_as_a_table_with_a_count(session, keyspace):
    ok, out, err = session.run(
        f"USE {keyspace}; CREATE TABLE t (k int PRIMARY KEY, v text, m map<text, int>);"
        "INSERT INTO t (k, v, m) VALUES (1, 'one', {'a': 1}); INSERT INTO t (k) VALUES (22);"
    )
    assert ok and out == "" and err == ""
    assert session.shell.prompt() == f"cql:{keyspace}> "
    ok, out, err = session.run("SELECT * FROM t WHERE k IN (1, 22)")
    assert ok, err
    assert out == (
        "\n"
        " k  | m        | v\n"
        "----+----------+------\n"
        "  1 | {'a': 1} |  one\n"
        " 22 |     null | null\n"
        "\n"
        "(2 rows)\n"
    )


def test_errors_are_one_line_and_the_shell_goes_on(session, keyspace):
    ok, out, err = session.run(f"SELECT * FROM {keyspace}.missing; SELEC 1; USE {keyspace}")
    assert not ok
    lines = err.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith('InvalidRequest: Error from server: code=2200 [Invalid query] message="')
    assert lines[1].startswith("SyntaxException: Error from server: code=2000 [Syntax error in CQL query]")
    assert session.shell.keyspace == keyspace  # the statement after the errors ran


def test_consistency_is_shown_set_and_used(session, keyspace):
    assert session.run("CONSISTENCY")[1] == "Current consistency level is ONE.\n"
    assert session.run("consistency quorum;")[1] == "Consistency level set to QUORUM.\n"
    assert session.shell.consistency == "QUORUM"
    ok, _, err = session.run("CONSISTENCY SOMETIMES")
    assert not ok and err.startswith("Improper CONSISTENCY command")
    # The level reaches the node: one replica cannot give THREE.
    session.run(f"CREATE TABLE {keyspace}.c (k int PRIMARY KEY); CONSISTENCY THREE")
    ok, _, err = session.run(f"INSERT INTO {keyspace}.c (k) VALUES (1)")
    assert not ok and err.startswith("Unavailable: Error from server: code=1000"), err


def test_paging_asks_between_pages_and_q_stops(server, keyspace):
    s = Session(server, interactive=True, answers=[True, False])
    try:
        s.run(f"USE {keyspace}; CREATE TABLE p (k int, c int, PRIMARY KEY (k, c))")
        s.run("".join(f"INSERT INTO p (k, c) VALUES (0, {i});" for i in range(25)))
        assert s.run("PAGING 10")[1] == "Now Query paging is enabled\nPage size: 10\n"
        ok, out, _ = s.run("SELECT c FROM p WHERE k = 0")
        assert ok and s.asked == 2
        assert out.count(" c\n---") == 2  # two pages shown, the third refused
        assert out.endswith("\n(20 rows)\n")
        s.asked = 0
        assert s.run("PAGING OFF")[1] == "Disabled Query paging.\n"
        ok, out, _ = s.run("SELECT c FROM p WHERE k = 0")
        assert s.asked == 0 and out.endswith("\n 24\n\n(25 rows)\n")
    finally:
        s.client.close()


def test_without_a_terminal_every_page_is_fetched(session, keyspace):
    session.run(f"USE {keyspace}; CREATE TABLE big (k int, c int, PRIMARY KEY (k, c))")
    session.run("".join(f"INSERT INTO big (k, c) VALUES (1, {i});" for i in range(120)))
    ok, out, _ = session.run("PAGING ON; SELECT c FROM big WHERE k = 1")
    assert ok and session.asked == 0
    assert out.endswith("\n(120 rows)\n") and out.count("----") == 1


def test_expand_shows_one_block_per_row(session, keyspace):
    session.run(f"USE {keyspace}; CREATE TABLE e (k int PRIMARY KEY, v text); INSERT INTO e (k, v) VALUES (7, 'x')")
    assert session.run("EXPAND ON")[1] == "Now Expanded output is enabled\n"
    ok, out, _ = session.run("SELECT * FROM e")
    assert out == "\n@ Row 1\n---+---\n k | 7\n v | x\n\n(1 rows)\n"
    assert session.run("expand off")[1] == "Disabled Expanded output.\n"


def test_describe_recreates_the_schema(session, keyspace):
    session.run(
        f"USE {keyspace}; CREATE TABLE orders (shop text, day int, at timestamp, id uuid, note text static, "
        "items map<text, int>, PRIMARY KEY ((shop, day), at, id)) WITH CLUSTERING ORDER BY (at DESC, id ASC) "
        "AND comment = 'it''s' AND gc_grace_seconds = 99; CREATE TABLE \"Users\" (id int PRIMARY KEY, name text)"
    )
    ok, before, err = session.run(f"DESCRIBE KEYSPACE {keyspace}")
    assert ok, err
    assert "PRIMARY KEY ((shop, day), at, id)" in before
    assert "WITH CLUSTERING ORDER BY (at DESC, id ASC)" in before
    assert f'CREATE TABLE {keyspace}."Users" (\n    id int PRIMARY KEY,' in before
    ok, _, err = session.run(f"DROP KEYSPACE {keyspace}")
    assert ok, err
    ok, _, err = session.run(before)
    assert ok, err
    assert session.run(f"DESC KEYSPACE {keyspace}")[1] == before
    assert session.run("DESC TABLES")[1] == '\n"Users"  orders\n\n'
    assert keyspace in session.run("DESC KEYSPACES")[1]
    assert f"CREATE KEYSPACE {keyspace} WITH" in session.run("DESCRIBE SCHEMA")[1]


def test_source_runs_a_file_and_reports_its_failures(session, keyspace, tmp_path):
    script = tmp_path / "s.cql"
    script.write_text(f"USE {keyspace};\nCREATE TABLE s (k int PRIMARY KEY);\n\nINSERT INTO s (k) VALUES ('x');\n")
    ok, _, err = session.run(f"SOURCE '{script}'")
    assert not ok
    assert err.splitlines()[0].startswith(f"{script}:4:InvalidRequest: ")
    assert session.shell.keyspace == keyspace
    ok, _, err = session.run(f"SOURCE '{tmp_path / 'absent.cql'}'")
    assert not ok and "Could not open" in err


def test_help_and_exit(session):
    ok, out, _ = session.run("HELP")
    assert ok and "CONSISTENCY" in out and "DESCRIBE" in out
    assert "KEYSPACES" in session.run("help describe")[1]
    assert not session.run("HELP nonsense")[0]
    session.run("EXIT; CONSISTENCY ALL")
    assert session.shell.done and session.shell.consistency == "ONE"
