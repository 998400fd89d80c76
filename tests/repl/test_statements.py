"""Splitting shell input into statements: `;` ends a statement only outside literals and comments."""

import pytest

from widecol.repl_statements import Statement, finish, is_complete, is_shell_command, pending, split


def texts(statements):
    return [s.text for s in statements]


def test_several_statements_on_one_line():
    statements, rest = split("SELECT 1 FROM a; SELECT 2 FROM b;  ")
    assert texts(statements) == ["SELECT 1 FROM a", "SELECT 2 FROM b"]
    assert rest == "  "


def test_unfinished_statement_is_left_in_the_rest():
    statements, rest = split("INSERT INTO t (k) VALUES (1); SELECT *\nFROM t")
    assert texts(statements) == ["INSERT INTO t (k) VALUES (1)"]
    assert rest == " SELECT *\nFROM t"


@pytest.mark.parametrize("text", [
    "INSERT INTO t (k, v) VALUES (1, 'a;b');",
    "INSERT INTO t (k, v) VALUES (1, 'it''s; here');",
    'SELECT "we;ird" FROM t;',
    "INSERT INTO t (k, v) VALUES (1, $$a;b$$);",
    "SELECT * FROM t -- not; the end\n WHERE k = 1;",
    "SELECT * FROM t // not; the end\n WHERE k = 1;",
    "SELECT * FROM t /* not; the\n end */ WHERE k = 1;",
])
def test_semicolon_inside_literal_or_comment_does_not_end_a_statement(text):
    statements, rest = split(text)
    assert texts(statements) == [text[:-1]]
    assert rest == ""


def test_open_string_keeps_everything_in_the_rest():
    statements, rest = split("INSERT INTO t (k, v) VALUES (1, 'a;")
    assert statements == []
    assert rest.startswith("INSERT")


def test_comment_only_statements_are_dropped_and_lines_counted():
    statements, _ = split("-- a comment;\n/* another; */ ;\n\nSELECT 1\nFROM t;")
    assert statements == [Statement("SELECT 1\nFROM t", 4)]


def test_shell_commands_are_complete_without_semicolon():
    assert is_shell_command("  consistency quorum")
    assert is_shell_command("DESC KEYSPACES")
    assert not is_shell_command("SELECT * FROM describe")
    assert is_complete("EXPAND ON")
    assert is_complete("paging off")
    assert not is_complete("SELECT * FROM t")
    assert not is_complete("SELECT * FROM t; SELECT")
    assert is_complete("SELECT * FROM t;")
    assert is_complete("")
    assert is_complete("-- only a comment")
    assert not is_complete("SOURCE 'unfinished")


def test_pending_runs_complete_statements_and_a_trailing_shell_command():
    statements, rest = pending("SELECT * FROM t; EXPAND ON")
    assert texts(statements) == ["SELECT * FROM t", "EXPAND ON"]
    assert rest == ""
    statements, rest = pending("SELECT * FROM t; SELECT *")
    assert texts(statements) == ["SELECT * FROM t"]
    assert rest == " SELECT *"


def test_finish_accepts_a_last_statement_without_semicolon():
    statements, unfinished = finish("USE ks; SELECT * FROM t")
    assert texts(statements) == ["USE ks", "SELECT * FROM t"]
    assert unfinished == ""
    statements, unfinished = finish("SELECT * FROM t WHERE v = 'open")
    assert statements == [] and unfinished
