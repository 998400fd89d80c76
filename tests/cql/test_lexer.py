"""The CQL lexer: token kinds, values, positions, comments and lexical errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.cql.lexer import (
    BLOB,
    DURATION,
    EOF,
    FLOAT,
    IDENT,
    INTEGER,
    OP,
    QIDENT,
    QMARK,
    STRING,
    UUID,
    tokenize,
)
from widecol.errors import SyntaxException


def kinds_values(text):
    return [(t.kind, t.value) for t in tokenize(text)[:-1]]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SeLeCt", [(IDENT, "select")]),
        ('"MyCol"', [(QIDENT, "MyCol")]),
        ('"a""b"', [(QIDENT, 'a"b')]),
        ("'it''s'", [(STRING, "it's")]),
        ("$$a 'b' ; c$$", [(STRING, "a 'b' ; c")]),
        ("''", [(STRING, "")]),
        ("42", [(INTEGER, "42")]),
        ("-7", [(INTEGER, "-7")]),
        ("1.5", [(FLOAT, "1.5")]),
        ("-2.5e-3", [(FLOAT, "-2.5e-3")]),
        ("3E10", [(FLOAT, "3E10")]),
        ("0xCafe", [(BLOB, "0xCafe")]),
        ("0x", [(BLOB, "0x")]),
        ("123e4567-e89b-12d3-a456-426614174000", [(UUID, "123e4567-e89b-12d3-a456-426614174000")]),
        ("1h30m", [(DURATION, "1h30m")]),
        ("2d", [(DURATION, "2d")]),
        ("3mo2w1ms5us7ns", [(DURATION, "3mo2w1ms5us7ns")]),
        ("-1y", [(DURATION, "-1y")]),
        ("P1DT2H", [(DURATION, "P1DT2H")]),
        ("P3W", [(DURATION, "P3W")]),
        ("PT5M", [(DURATION, "PT5M")]),
        ("P0001-02-03T04:05:06", [(DURATION, "P0001-02-03T04:05:06")]),
        ("PRIMARY", [(IDENT, "primary")]),
        ("P", [(IDENT, "p")]),
        ("?", [(QMARK, "?")]),
        (":name", [(OP, ":"), (IDENT, "name")]),
        ("a<=b", [(IDENT, "a"), (OP, "<="), (IDENT, "b")]),
        ("c-1", [(IDENT, "c"), (OP, "-"), (INTEGER, "1")]),
        ("c = -1", [(IDENT, "c"), (OP, "="), (INTEGER, "-1")]),
        ("x += 1", [(IDENT, "x"), (OP, "+="), (INTEGER, "1")]),
        ("a -- comment\nb", [(IDENT, "a"), (IDENT, "b")]),
        ("a // comment\nb", [(IDENT, "a"), (IDENT, "b")]),
        ("a /* multi\nline */ b", [(IDENT, "a"), (IDENT, "b")]),
        ("{}[](),;.*", [(OP, c) for c in "{}[](),;.*"]),
    ],
)
def test_token_kinds_and_values(text, expected):
    assert kinds_values(text) == expected


def test_positions_are_line_1_based_column_0_based():
    toks = tokenize("SELECT a\n  FROM /* x\n y */ t")
    assert [(t.value, t.line, t.column) for t in toks] == [
        ("select", 1, 0), ("a", 1, 7), ("from", 2, 2), ("t", 3, 6), ("<EOF>", 3, 7),
    ]
    assert toks[-1].kind == EOF


def test_multiline_string_moves_the_line_counter():
    toks = tokenize("'a\nb' x")
    assert (toks[1].line, toks[1].column) == (2, 3)


@pytest.mark.parametrize(
    "text, message, line, column",
    [
        ("SELECT 'abc", "line 1:7 mismatched character '<EOF>' expecting '''", 1, 7),
        ('SELECT "abc', "line 1:7 mismatched character '<EOF>' expecting '\"'", 1, 7),
        ("a\n  $$x", "line 2:2 mismatched character '<EOF>' expecting '$'", 2, 2),
        ("a /* never closed", "line 1:2 mismatched character '<EOF>' expecting '*'", 1, 2),
        ("SELECT # FROM", "line 1:7 token recognition error at: '#'", 1, 7),
        ('SELECT "" FROM t', "line 1:7 no viable alternative at input '\"\"'", 1, 7),
    ],
)
def test_lexical_errors(text, message, line, column):
    with pytest.raises(SyntaxException) as info:
        tokenize(text)
    assert (str(info.value), info.value.line, info.value.column) == (message, line, column)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_lexer_raises_only_syntax_exception(text):
    try:
        toks = tokenize(text)
    except SyntaxException:
        return
    assert toks[-1].kind == EOF


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab1'\"$-/*\n :;.?xP", max_size=40))
def test_lexer_raises_only_syntax_exception_on_tricky_alphabet(text):
    try:
        tokenize(text)
    except SyntaxException as exc:
        assert str(exc).startswith(f"line {exc.line}:{exc.column} ")
