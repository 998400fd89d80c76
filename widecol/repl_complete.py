"""Tab completion for the shell: CQL keywords, shell commands, keyspaces, tables and columns.

How this works: `complete(text, schema, keyspace)` looks only at the statement being typed (the text after the
last `;`, comments removed), splits it into words, and takes the last, unfinished word as the prefix to
complete. The word before it picks the kind of candidate: a keyspace after USE or KEYSPACE; a table after
FROM, INTO, UPDATE, TABLE or TRUNCATE (tables of the session keyspace, and `ks.` forms); a level after
CONSISTENCY; ON/OFF after PAGING and EXPAND. Elsewhere in a statement that names a table, that table's columns
come first, then keywords. Candidates keep the prefix's case for keywords. `schema` is anything with the three
name methods of `SchemaInfo`; the shell passes a cached one. `Completer` adapts this to prompt_toolkit.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Protocol

from prompt_toolkit.completion import CompleteEvent, Completion
from prompt_toolkit.completion import Completer as _Completer
from prompt_toolkit.document import Document

from widecol.cql.describe import quote
from widecol.repl_statements import split, strip_comments

STARTERS = ["SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "APPLY", "CREATE", "DROP", "ALTER", "USE",
            "TRUNCATE", "GRANT", "REVOKE", "LIST"]
SHELL = ["CONSISTENCY", "PAGING", "EXPAND", "DESCRIBE", "DESC", "SOURCE", "HELP", "EXIT", "QUIT"]
KEYWORDS = sorted({
    "ADD", "ALL", "ALLOW", "AND", "APPLY", "AS", "ASC", "BATCH", "BEGIN", "BY", "CLUSTERING", "COMPACT",
    "CONTAINS", "COUNT", "CREATE", "DELETE", "DESC", "DISTINCT", "DROP", "EXISTS", "FILTERING", "FROM", "IF",
    "IN", "INSERT", "INTO", "JSON", "KEY", "KEYSPACE", "LIMIT", "LOGGED", "NOT", "NULL", "ORDER", "PARTITION",
    "PER", "PRIMARY", "REPLICATION", "SELECT", "SET", "STATIC", "TABLE", "TIMESTAMP", "TOKEN", "TRUNCATE", "TTL",
    "TYPE", "UNLOGGED", "UPDATE", "USE", "USING", "VALUES", "WHERE", "WITH", "WRITETIME", "DURABLE_WRITES",
    "ALTER", "RENAME", "TO", "FROZEN", "LIST", "MAP", "TUPLE", "TEXT", "INT", "BIGINT", "BLOB", "BOOLEAN",
    "DOUBLE", "FLOAT", "TIMEUUID", "UUID", "VARCHAR", "VARINT", "DECIMAL", "INET", "DATE", "TIME", "ASCII",
    "SMALLINT", "TINYINT", "COUNTER", "DURATION",
})
LEVELS = ["ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL",
          "LOCAL_ONE"]
DESCRIBE_WORDS = ["KEYSPACES", "KEYSPACE", "TABLES", "TABLE", "SCHEMA"]
TABLE_AFTER = {"FROM", "INTO", "UPDATE", "TABLE", "TRUNCATE", "COLUMNFAMILY"}
_WORD = re.compile(r'"(?:[^"]|"")*"?|[A-Za-z0-9_]+|\.|\S')


class SchemaNames(Protocol):
    def keyspace_names(self) -> list[str]: ...

    def table_names(self, keyspace: str) -> list[str]: ...

    def column_names(self, keyspace: str, table: str) -> list[str]: ...


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def _unquote(word: str) -> str:
    if word.startswith('"'):
        return word[1:-1].replace('""', '"') if len(word) > 1 and word.endswith('"') else word[1:]
    return word.lower()


def _match_case(words: Iterable[str], prefix: str) -> list[str]:
    lower = bool(prefix) and prefix == prefix.lower() and prefix != prefix.upper()
    return [w.lower() if lower else w for w in words]


def _table_refs(words: list[str]) -> list[tuple[str | None, str]]:
    """The (keyspace or None, table) names after FROM/INTO/UPDATE/TABLE in the words of a statement."""
    refs: list[tuple[str | None, str]] = []
    for i, w in enumerate(words[:-1]):
        name = words[i + 1]
        if w.upper() not in TABLE_AFTER or not (name[0].isalnum() or name[0] in '_"'):
            continue
        if words[i + 2:i + 3] == ["."] and i + 3 < len(words):
            refs.append((_unquote(name), _unquote(words[i + 3])))
        else:
            refs.append((None, _unquote(name)))
    return refs


def complete(text: str, schema: SchemaNames | None, keyspace: str | None) -> tuple[str, list[str]]:
    """The prefix being completed at the end of TEXT and the candidates that can replace it, best first.
    SCHEMA may be None (not reachable): then only keywords and commands are offered."""
    _statements, rest = split(text)
    rest = strip_comments(rest)
    if rest.count("'") % 2 == 1:
        return "", []  # inside a string literal
    words = _words(rest)
    prefix = ""
    if words and not rest[-1:].isspace() and (words[-1][0].isalnum() or words[-1][0] in '_"'):
        prefix = words.pop()
    # A qualified name being typed: `ks.` or `ks.ta`.
    qualifier = None
    if len(words) >= 2 and words[-1] == "." and not rest[-1:].isspace():
        qualifier = _unquote(words[-2])
        words = words[:-2]
    before = [w.upper() for w in words]
    last = before[-1] if before else ""
    candidates: list[str]
    if not before:
        candidates = _match_case(STARTERS + SHELL, prefix)
    elif before[0] == "CONSISTENCY" and len(before) == 1:
        candidates = _match_case(LEVELS, prefix)
    elif before[0] in ("PAGING", "EXPAND") and len(before) == 1:
        candidates = _match_case(["ON", "OFF"], prefix)
    elif before[0] in ("HELP", "?") and len(before) == 1:
        candidates = _match_case(SHELL + STARTERS, prefix)
    elif before[0] in ("DESCRIBE", "DESC"):
        candidates = _describe_candidates(before, prefix, schema, keyspace, qualifier)
    elif last in ("USE", "KEYSPACE") or before[-2:] == ["KEYSPACE", "IF"]:
        candidates = _keyspaces(schema)
    elif last in TABLE_AFTER:
        candidates = _tables(schema, keyspace, qualifier)
    else:
        candidates = []
        refs = _table_refs(words)
        if refs and schema is not None:
            ks, table = refs[0]
            ks = ks or keyspace
            if ks is not None:
                candidates = [quote(c) for c in schema.column_names(ks, table)]
        candidates += _match_case(KEYWORDS, prefix)
    wanted = _unquote(prefix) if prefix.startswith('"') else prefix.lower()
    out = []
    for c in candidates:
        if _unquote(c).lower().startswith(wanted.lower()) and c not in out:
            out.append(c)
    return prefix, out


def _keyspaces(schema: SchemaNames | None) -> list[str]:
    return [quote(ks) for ks in schema.keyspace_names()] if schema is not None else []


def _tables(schema: SchemaNames | None, keyspace: str | None, qualifier: str | None) -> list[str]:
    if schema is None:
        return []
    if qualifier is not None:
        return [quote(t) for t in schema.table_names(qualifier)]
    names = [quote(t) for t in schema.table_names(keyspace)] if keyspace is not None else []
    return names + [quote(ks) + "." for ks in schema.keyspace_names()]


def _describe_candidates(before: list[str], prefix: str, schema: SchemaNames | None, keyspace: str | None,
                         qualifier: str | None) -> list[str]:
    if len(before) == 1 and qualifier is None:
        return _match_case(DESCRIBE_WORDS, prefix) + _keyspaces(schema) + _tables(schema, keyspace, None)
    if before[-1] == "KEYSPACE":
        return _keyspaces(schema)
    if before[-1] in ("TABLE", "COLUMNFAMILY") or qualifier is not None:
        return _tables(schema, keyspace, qualifier)
    return []


class Completer(_Completer):
    """prompt_toolkit's view of `complete`: SCHEMA() gives the cached schema names (or None when they cannot
    be read), KEYSPACE() the session keyspace."""

    def __init__(self, schema: Callable[[], SchemaNames | None], keyspace: Callable[[], str | None]) -> None:
        self.schema = schema
        self.keyspace = keyspace

    def get_completions(self, document: Document, complete_event: CompleteEvent) -> Iterable[Completion]:
        prefix, candidates = complete(document.text_before_cursor, self.schema(), self.keyspace())
        for c in candidates:
            yield Completion(c, start_position=-len(prefix))
