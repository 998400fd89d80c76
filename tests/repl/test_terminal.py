"""The interactive shell in a pseudo-terminal (pexpect): multi-line input, history across sessions, completion,
the paging prompt and Ctrl-D."""

import os
import sys

import pexpect
import pytest

from widecol import client as wclient

TIMEOUT = 30


@pytest.fixture
def table(server, keyspace):
    with wclient.connect(server, keyspace) as c:
        c.execute("CREATE TABLE tabby_cats (k int, c int, name text, PRIMARY KEY (k, c))")
        for i in range(12):
            c.execute(f"INSERT INTO tabby_cats (k, c, name) VALUES (1, {i}, 'cat{i}')")
    return keyspace


def spawn(server, tmp_path, *args):
    env = dict(os.environ, TERM="xterm", PROMPT_TOOLKIT_NO_CPR="1", HOME=str(tmp_path),
               WIDECOL_HISTORY=str(tmp_path / "history"))
    child = pexpect.spawn(sys.executable, ["-m", "widecol.cli", "cql", server, *args], env=env,
                          encoding="utf-8", timeout=TIMEOUT, dimensions=(40, 200))
    child.expect_exact("Use HELP for help.")
    return child


def finish(child):
    child.expect(r"cql(:\w+)?>")  # keys typed before the prompt is up would go to the terminal, not the editor
    child.sendcontrol("d")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def test_multi_line_statement_with_continuation_prompt(server, table, tmp_path):
    child = spawn(server, tmp_path, "-k", table)
    child.expect_exact(f"cql:{table}>")
    child.send("SELECT name\r")
    child.expect_exact("...")
    child.send("FROM tabby_cats\r")
    child.expect_exact("...")
    child.send("WHERE k = 1 AND c = 3;\r")
    child.expect_exact("cat3")
    child.expect_exact("(1 rows)")
    finish(child)


def test_history_is_recalled_in_a_new_session(server, table, tmp_path):
    child = spawn(server, tmp_path)
    child.send(f"SELECT name FROM {table}.tabby_cats\rWHERE k = 1 AND c = 7;\r")
    child.expect_exact("cat7")
    finish(child)
    assert f"SELECT name FROM {table}.tabby_cats\n" in (tmp_path / "history").read_text()

    child = spawn(server, tmp_path)
    child.expect_exact("cql>")
    child.send("\x1b[A")  # Up: the last statement, both lines
    child.expect_exact("c = 7;")
    child.send("\r")
    child.expect_exact("cat7")
    child.expect_exact("(1 rows)")
    finish(child)


def test_tab_completes_a_table_name(server, table, tmp_path):
    child = spawn(server, tmp_path, "-k", table)
    child.expect_exact(f"cql:{table}>")
    child.send("SELECT name FROM tab\t")
    child.expect_exact("by_cats")  # the editor draws only what completion added
    child.send(" WHERE k = 1 AND c = 11;\r")
    child.expect_exact("cat11")
    child.expect_exact("(1 rows)")
    finish(child)


def test_paging_waits_for_enter_and_q_stops(server, table, tmp_path):
    child = spawn(server, tmp_path, "-k", table)
    child.send("PAGING 5\r")
    child.expect_exact("Page size: 5")
    child.send("SELECT c FROM tabby_cats WHERE k = 1;\r")
    child.expect_exact("---MORE---")
    assert " 4\r\n" in child.before and " 5\r\n" not in child.before
    child.send("\r")
    child.expect_exact("---MORE---")
    assert " 9\r\n" in child.before
    child.send("q\r")
    child.expect_exact("(10 rows)")
    finish(child)


def test_errors_do_not_end_the_session_and_exit_ends_it(server, tmp_path):
    child = spawn(server, tmp_path)
    child.send("SELECT * FROM nowhere.nothing;\r")
    child.expect_exact("InvalidRequest: Error from server")
    child.expect_exact("cql>")
    child.send("EXIT\r")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in child.before
