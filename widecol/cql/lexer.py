"""CQL lexer: text -> list of Token.

How this works: one master regular expression, tried at the current offset, with alternatives ordered so
that the longer or more specific literal wins (UUID before blob before duration before float before integer
before identifier), the way ANTLR's longest-match lexer resolves them. Whitespace and comments are skipped.
A '-' directly followed by a digit starts a negative number unless the previous token ends a value (then it
is the minus operator). Every token carries its line (1-based) and column (0-based). Anything the regex does
not match raises SyntaxException worded like Cassandra's ANTLR lexer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NoReturn

from widecol.errors import SyntaxException

# Token kinds.
IDENT = "IDENT"  # unquoted identifier or keyword, value lowercased
QIDENT = "QIDENT"  # "quoted" identifier, value keeps case
STRING = "STRING"
INTEGER = "INTEGER"
FLOAT = "FLOAT"
BLOB = "BLOB"
UUID = "UUID"
DURATION = "DURATION"
QMARK = "QMARK"
OP = "OP"  # operators and punctuation, value is the symbol
EOF = "EOF"


@dataclass(frozen=True)
class Token:
    kind: str
    value: str  # lowercased identifier, unescaped string, or literal text as written
    text: str  # the source text, as ANTLR quotes it in error messages
    line: int
    column: int


_HEX = "[0-9a-fA-F]"
_DUR_UNIT = r"(?:[yY]|[mM][oO]|[wW]|[dD]|[hH]|[mM][sS]|[mM]|[sS]|[uU][sS]|µ[sS]|[nN][sS])"
_ISO = (
    r"[pP](?:\d+[wW]|(?=\d|[tT]\d)(?:\d+[yY])?(?:\d+[mM])?(?:\d+[dD])?(?:[tT](?=\d)(?:\d+[hH])?(?:\d+[mM])?(?:\d+[sS])?)?)"
    r"|[pP]\d{4}-\d{2}-\d{2}[tT]\d{2}:\d{2}:\d{2}"
)
_MASTER = re.compile(
    rf"""
    (?P<ws>[ \t\r\n]+)
  | (?P<lcomment>(?:--|//)[^\n]*)
  | (?P<bcomment>/\*.*?\*/)
  | (?P<unclosed>/\*)
  | (?P<string>'(?:[^']|'')*')
  | (?P<pgstring>\$\$.*?\$\$)
  | (?P<qident>"(?:[^"]|"")*")
  | (?P<uuid>{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}})(?![0-9a-zA-Z_])
  | (?P<blob>0[xX]{_HEX}*)(?![0-9a-zA-Z_])
  | (?P<duration>-?(?:(?:\d+{_DUR_UNIT})+|{_ISO}))(?![0-9a-zA-Z_])
  | (?P<float>-?(?:\d+\.\d*(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+))
  | (?P<integer>-?\d+)
  | (?P<ident>[a-zA-Z][a-zA-Z0-9_]*)
  | (?P<op><=|>=|!=|\+=|-=|[=<>+\-*/(),;:.?\[\]{{}}%])
    """,
    re.VERBOSE | re.DOTALL,
)
_KINDS = {"uuid": UUID, "blob": BLOB, "duration": DURATION, "float": FLOAT, "integer": INTEGER}
_VALUE_END = {IDENT, QIDENT, STRING, INTEGER, FLOAT, BLOB, UUID, DURATION, QMARK}


def tokenize(text: str) -> list[Token]:
    """Split `text` into tokens, ending with one EOF token.

    Guarantees: returns normally or raises SyntaxException (never another error); line/column of each token
    point at its first character; the EOF token sits just past the last character.
    """
    tokens: list[Token] = []
    pos, line, line_start = 0, 1, 0
    n = len(text)
    while pos < n:
        m = _MASTER.match(text, pos)
        col = pos - line_start
        if m is None:
            _lex_error(text, pos, line, col)
        kind = m.lastgroup
        raw = m.group()
        assert kind is not None
        if raw.startswith("-") and kind in ("duration", "float", "integer"):
            prev = tokens[-1] if tokens else None
            if prev is not None and (prev.kind in _VALUE_END or prev.value in (")", "]", "}")):
                tokens.append(Token(OP, "-", "-", line, col))
                pos += 1
                continue
        if kind == "unclosed":
            _lex_error(text, pos, line, col)
        if kind == "ident":
            tokens.append(Token(IDENT, raw.lower(), raw, line, col))
        elif kind == "qident":
            if len(raw) == 2:
                raise SyntaxException(f"line {line}:{col} no viable alternative at input '{raw}'", line, col)
            tokens.append(Token(QIDENT, raw[1:-1].replace('""', '"'), raw, line, col))
        elif kind == "string":
            tokens.append(Token(STRING, raw[1:-1].replace("''", "'"), raw, line, col))
        elif kind == "pgstring":
            tokens.append(Token(STRING, raw[2:-2], raw, line, col))
        elif kind in _KINDS:
            tokens.append(Token(_KINDS[kind], raw, raw, line, col))
        elif kind == "op":
            tokens.append(Token(QMARK if raw == "?" else OP, raw, raw, line, col))
        newlines = raw.count("\n")
        if newlines:
            line += newlines
            line_start = pos + raw.rindex("\n") + 1
        pos = m.end()
    tokens.append(Token(EOF, "<EOF>", "<EOF>", line, pos - line_start))
    return tokens


def _lex_error(text: str, pos: int, line: int, col: int) -> NoReturn:
    ch = text[pos]
    if ch in "'\"" or text.startswith("$$", pos) or text.startswith("/*", pos):
        closing = {"'": "'", '"': '"', "$": "$", "/": "*"}[ch]
        raise SyntaxException(
            f"line {line}:{col} mismatched character '<EOF>' expecting '{closing}'", line, col
        )
    raise SyntaxException(f"line {line}:{col} token recognition error at: '{ch}'", line, col)
