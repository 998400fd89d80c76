"""CQL parser: text -> statement objects (widecol.cql.ast), hand-written recursive descent.

How this works: the lexer gives a token list ending in EOF. `_Parser` walks it with one-token lookahead (two
at a few places: a function call `name(`, a type hint `(int) 3`, `c = c + v`). Keywords are IDENT tokens
compared by lowercased value; the reserved ones (Cassandra's list) cannot be used as unquoted names, the rest
(key, type, ttl, writetime, ...) can. Bind markers are numbered in text order as they are met; each statement
records those it contains. DML, SELECT, terms and WHERE live here; DDL is in parser_ddl (a mixin).

Errors are SyntaxException(message, line, column) phrased like Cassandra's ANTLR parser:
`line L:C no viable alternative at input 'X'` where no rule can start (or no name/term can be read),
`line L:C mismatched input 'X' expecting K_FROM` where one token was required, and
`line L:C missing EOF at 'X'` when a complete statement is followed by more text.
"""

from __future__ import annotations

import dataclasses
from typing import Any, NoReturn

from widecol.cql import ast
from widecol.cql.ast import BindMarker, CollectionLiteral, Literal
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
    Token,
    tokenize,
)
from widecol.cql.parser_ddl import MAX_DEPTH, DdlMixin
from widecol.errors import SyntaxException

RESERVED = frozenset(
    """add allow alter and apply asc authorize batch begin by columnfamily create delete desc describe drop
    entries execute from full grant if in index infinity insert into is keyspace limit modify nan norecursive
    not null of on or order primary rename replace revoke schema select set table to token truncate unlogged
    update use using view where with""".split()
)
_NOT_FUNCTIONS = (RESERVED - {"token"}) | {"true", "false"}
_RELATION_OPS = ("=", "<", "<=", ">", ">=", "!=")
_CONSTANT_KINDS = {STRING: "string", INTEGER: "integer", FLOAT: "float", BLOB: "blob", UUID: "uuid",
                   DURATION: "duration"}



def parse(text: str) -> ast.Statement:
    """Parse exactly one statement (a trailing ';' is allowed). Raises SyntaxException, nothing else."""
    p = _Parser(text)
    stmt = p.statement()
    p.accept_op(";")
    if p.peek().kind != EOF:
        p.fail_extra()
    return stmt


def parse_script(text: str) -> list[ast.Statement]:
    """Parse ';'-separated statements (empty ones skipped). Raises SyntaxException at the first error."""
    p = _Parser(text)
    out: list[ast.Statement] = []
    while True:
        while p.accept_op(";"):
            pass
        if p.peek().kind == EOF:
            return out
        out.append(p.statement())
        if p.peek().kind != EOF and not p.at_op(";"):
            p.fail_mismatch("';'")


class _Parser(DdlMixin):
    def __init__(self, text: str) -> None:
        self.toks: list[Token] = tokenize(text)
        self.i = 0
        self.markers: list[BindMarker] = []
        self.depth = 0

    # ---- token stream -------------------------------------------------------------------------------------
    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def advance(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != EOF:
            self.i += 1
        return tok

    def at_kw(self, *words: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == IDENT and tok.value in words

    def accept_kw(self, word: str) -> bool:
        if self.at_kw(word):
            self.i += 1
            return True
        return False

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            self.fail_mismatch("K_" + word.upper())

    def at_op(self, sym: str, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == OP and tok.value == sym

    def accept_op(self, sym: str) -> bool:
        if self.at_op(sym):
            self.i += 1
            return True
        return False

    def expect_op(self, sym: str) -> None:
        if not self.accept_op(sym):
            self.fail_mismatch(f"'{sym}'")

    def _raise(self, tok: Token, what: str) -> NoReturn:
        raise SyntaxException(f"line {tok.line}:{tok.column} {what}", tok.line, tok.column)

    def fail_mismatch(self, expecting: str) -> Any:
        tok = self.peek()
        self._raise(tok, f"mismatched input '{tok.text}' expecting {expecting}")

    def fail_noviable(self) -> Any:
        tok = self.peek()
        self._raise(tok, f"no viable alternative at input '{tok.text}'")

    def fail_extra(self) -> Any:
        tok = self.peek()
        self._raise(tok, f"missing EOF at '{tok.text}'")

    # ---- names --------------------------------------------------------------------------------------------
    def at_ident(self, k: int = 0) -> bool:
        tok = self.peek(k)
        return tok.kind == QIDENT or (tok.kind == IDENT and tok.value not in RESERVED)

    def ident(self) -> str:
        """An unreserved or quoted name, normalised."""
        if not self.at_ident():
            self.fail_noviable()
        return self.advance().value

    def table_name(self) -> tuple[str | None, str]:
        first = self.ident()
        if self.accept_op("."):
            return first, self.ident()
        return None, first

    def ident_list(self) -> tuple[str, ...]:
        names = [self.ident()]
        while self.accept_op(","):
            names.append(self.ident())
        return tuple(names)

    def finish(self, stmt: Any, start: int) -> Any:
        """Attach the bind markers met since marker index `start`."""
        return dataclasses.replace(stmt, bind_markers=tuple(self.markers[start:]))

    # ---- statements ---------------------------------------------------------------------------------------
    def statement(self) -> ast.Statement:
        start = len(self.markers)
        tok = self.peek()
        word = tok.value if tok.kind == IDENT else ""
        handler = {
            "select": self.select, "insert": self.insert, "update": self.update, "delete": self.delete,
            "begin": self.batch, "use": self.use, "truncate": self.truncate, "create": self.create,
            "alter": self.alter, "drop": self.drop,
        }.get(word)
        if handler is not None:
            return self.finish(handler(), start)
        if word in ("grant", "revoke", "list", "describe", "desc"):
            return self.unsupported(word.upper())
        return self.fail_noviable()

    def unsupported(self, what: str) -> ast.Unsupported:
        """Skip to the end of the statement; the executor answers 'not supported yet'."""
        while self.peek().kind != EOF and not self.at_op(";"):
            self.advance()
        return ast.Unsupported(what)

    def use(self) -> ast.Use:
        self.expect_kw("use")
        return ast.Use(self.ident())

    def truncate(self) -> ast.Truncate:
        self.expect_kw("truncate")
        if not self.accept_kw("table"):
            self.accept_kw("columnfamily")
        ks, table = self.table_name()
        return ast.Truncate(ks, table)

    def using(self, allow_ttl: bool = True) -> tuple[Any, Any]:
        ttl = timestamp = None
        self.expect_kw("using")
        while True:
            if allow_ttl and self.accept_kw("ttl"):
                ttl = self.term()
            elif self.accept_kw("timestamp"):
                timestamp = self.term()
            else:
                self.fail_mismatch("K_TIMESTAMP" if not allow_ttl else "K_TTL")
            if not self.accept_kw("and"):
                return ttl, timestamp

    def insert(self) -> ast.Insert:
        self.expect_kw("insert")
        self.expect_kw("into")
        ks, table = self.table_name()
        columns: tuple[str, ...] = ()
        values: tuple = ()
        json = default = None
        if self.accept_kw("json"):
            json = self.term()
            if self.accept_kw("default"):
                if self.accept_kw("null"):
                    default = "NULL"
                else:
                    self.expect_kw("unset")
                    default = "UNSET"
        else:
            self.expect_op("(")
            columns = self.ident_list()
            self.expect_op(")")
            self.expect_kw("values")
            self.expect_op("(")
            values = self.term_list(")")
            self.expect_op(")")
        if_not_exists = False
        ttl = timestamp = None
        for _ in range(2):
            if self.at_kw("if"):
                self.advance()
                self.expect_kw("not")
                self.expect_kw("exists")
                if_not_exists = True
            elif self.at_kw("using"):
                ttl, timestamp = self.using()
        return ast.Insert(ks, table, columns, values, json, if_not_exists, ttl, timestamp, default)

    def update(self) -> ast.Update:
        self.expect_kw("update")
        ks, table = self.table_name()
        ttl = timestamp = None
        if self.at_kw("using"):
            ttl, timestamp = self.using()
        self.expect_kw("set")
        assignments = [self.assignment()]
        while self.accept_op(","):
            assignments.append(self.assignment())
        where = self.where()
        conditions, if_exists = self.if_clause()
        return ast.Update(ks, table, tuple(assignments), where, conditions, if_exists, ttl, timestamp)

    def assignment(self) -> ast.Assignment:
        column = self.ident()
        if self.accept_op("["):
            key = self.term()
            self.expect_op("]")
            self.expect_op("=")
            return ast.Assignment(column, "set_element", self.term(), key)
        if self.accept_op("+="):
            return ast.Assignment(column, "add", self.term())
        if self.accept_op("-="):
            return ast.Assignment(column, "remove", self.term())
        self.expect_op("=")
        if self.at_ident() and self.peek().value == column and self.peek(1).value in ("+", "-"):
            self.advance()
            op = "add" if self.advance().value == "+" else "remove"
            return ast.Assignment(column, op, self.term())
        value = self.term()
        if self.accept_op("+"):
            if not self.at_ident() or self.peek().value != column:
                self.fail_noviable()
            self.advance()
            return ast.Assignment(column, "prepend", value)
        return ast.Assignment(column, "set", value)

    def delete(self) -> ast.Delete:
        self.expect_kw("delete")
        targets = []
        if not self.at_kw("from"):
            while True:
                column = self.ident()
                key = None
                if self.accept_op("["):
                    key = self.term()
                    self.expect_op("]")
                targets.append(ast.DeleteTarget(column, key))
                if not self.accept_op(","):
                    break
        self.expect_kw("from")
        ks, table = self.table_name()
        timestamp = None
        if self.at_kw("using"):
            _, timestamp = self.using(allow_ttl=False)
        where = self.where()
        conditions, if_exists = self.if_clause()
        return ast.Delete(ks, table, tuple(targets), where, conditions, if_exists, timestamp)

    def batch(self) -> ast.Batch:
        self.expect_kw("begin")
        kind = "LOGGED"
        if self.accept_kw("unlogged"):
            kind = "UNLOGGED"
        elif self.accept_kw("counter"):
            kind = "COUNTER"
        elif self.accept_kw("logged"):
            kind = "LOGGED"
        self.expect_kw("batch")
        timestamp = None
        if self.at_kw("using"):
            _, timestamp = self.using(allow_ttl=False)
        stmts = []
        while not self.at_kw("apply"):
            start = len(self.markers)
            if self.at_kw("insert"):
                stmts.append(self.finish(self.insert(), start))
            elif self.at_kw("update"):
                stmts.append(self.finish(self.update(), start))
            elif self.at_kw("delete"):
                stmts.append(self.finish(self.delete(), start))
            elif self.peek().kind == EOF:
                self.fail_mismatch("K_APPLY")
            else:
                self.fail_noviable()
            self.accept_op(";")
        self.expect_kw("apply")
        self.expect_kw("batch")
        return ast.Batch(kind, tuple(stmts), timestamp)

    def if_clause(self) -> tuple[tuple, bool]:
        if not self.accept_kw("if"):
            return (), False
        if self.accept_kw("exists"):
            return (), True
        conds = [self.condition()]
        while self.accept_kw("and"):
            conds.append(self.condition())
        return tuple(conds), False

    def condition(self) -> ast.Condition:
        column = self.ident()
        key = None
        if self.accept_op("["):
            key = self.term()
            self.expect_op("]")
        if self.accept_kw("in"):
            return ast.Condition(column, "IN", self.in_values(), key)
        tok = self.peek()
        if tok.kind == OP and tok.value in _RELATION_OPS:
            self.advance()
            return ast.Condition(column, tok.value, self.term(), key)
        return self.fail_noviable()

    # ---- SELECT -------------------------------------------------------------------------------------------
    def select(self) -> ast.Select:
        self.expect_kw("select")
        json = self.accept_kw("json")
        distinct = self.accept_kw("distinct")
        selectors: list[ast.Selector] = []
        if not self.accept_op("*"):
            selectors.append(self.selector())
            while self.accept_op(","):
                selectors.append(self.selector())
        self.expect_kw("from")
        ks, table = self.table_name()
        where = self.where()
        group_by: tuple[str, ...] = ()
        order_by = []
        per_partition_limit = limit = None
        if self.accept_kw("group"):
            self.expect_kw("by")
            group_by = self.ident_list()
        if self.accept_kw("order"):
            self.expect_kw("by")
            while True:
                column = self.ident()
                direction = "DESC" if self.accept_kw("desc") else ("ASC" if self.accept_kw("asc") else "ASC")
                order_by.append((column, direction))
                if not self.accept_op(","):
                    break
        if self.accept_kw("per"):
            self.expect_kw("partition")
            self.expect_kw("limit")
            per_partition_limit = self.limit_value()
        if self.accept_kw("limit"):
            limit = self.limit_value()
        allow_filtering = False
        if self.accept_kw("allow"):
            self.expect_kw("filtering")
            allow_filtering = True
        return ast.Select(ks, table, tuple(selectors), distinct, json, where, group_by, tuple(order_by),
                          per_partition_limit, limit, allow_filtering)

    def limit_value(self) -> Any:
        tok = self.peek()
        if tok.kind == INTEGER or tok.kind == QMARK or self.at_op(":"):
            return self.term()
        return self.fail_noviable()

    def selector(self) -> ast.Selector:
        expr = self.selector_expr()
        alias = self.ident() if self.accept_kw("as") else None
        return ast.Selector(expr, alias)

    def selector_expr(self) -> Any:
        tok = self.peek()
        self.depth += 1
        try:
            return self._selector_expr(tok)
        finally:
            self.depth -= 1

    def _selector_expr(self, tok: Token) -> Any:
        if self.depth > MAX_DEPTH:
            self._raise(tok, f"no viable alternative at input '{tok.text}' (nesting deeper than {MAX_DEPTH})")
        if self.at_kw("count") and self.at_op("(", k=1):
            if self.at_op("*", k=2) or (self.peek(2).kind == INTEGER and self.peek(2).value == "1"):
                if self.at_op(")", k=3):
                    self.i += 4
                    return ast.CountRows()
        if self.at_kw("cast") and self.at_op("(", k=1):
            self.i += 2
            value = self.selector_expr()
            self.expect_kw("as")
            type_text = self.cql_type()
            self.expect_op(")")
            return ast.Cast(value, type_text)
        callable_name = tok.kind == QIDENT or (tok.kind == IDENT and tok.value not in _NOT_FUNCTIONS)
        if callable_name and self.at_op("(", k=1):
            self.i += 2
            args = []
            if not self.at_op(")"):
                args.append(self.selector_expr())
                while self.accept_op(","):
                    args.append(self.selector_expr())
            self.expect_op(")")
            return ast.FunctionCall(tok.value, tuple(args))
        if self.at_ident() and not self.at_kw("true", "false"):
            return ast.ColumnRef(self.advance().value)
        return self.term()

    # ---- WHERE --------------------------------------------------------------------------------------------
    def where(self) -> tuple:
        if not self.accept_kw("where"):
            return ()
        rels = [self.relation()]
        while self.accept_kw("and"):
            rels.append(self.relation())
        return tuple(rels)

    def relation(self) -> ast.Relation:
        if self.at_kw("token"):
            self.advance()
            self.expect_op("(")
            cols = self.ident_list()
            self.expect_op(")")
            lhs: Any = ast.FunctionCall("token", tuple(ast.ColumnRef(c) for c in cols))
            return ast.Relation(lhs, self.relation_op(), self.term())
        if self.accept_op("("):
            names = self.ident_list()
            self.expect_op(")")
            if self.accept_kw("in"):
                return ast.Relation(names, "IN", self.in_values())
            return ast.Relation(names, self.relation_op(), self.term())
        column = ast.ColumnRef(self.ident())
        if self.accept_kw("in"):
            return ast.Relation(column, "IN", self.in_values())
        if self.accept_kw("contains"):
            op = "CONTAINS KEY" if self.accept_kw("key") else "CONTAINS"
            return ast.Relation(column, op, self.term())
        if self.accept_kw("like"):
            return ast.Relation(column, "LIKE", self.term())
        return ast.Relation(column, self.relation_op(), self.term())

    def relation_op(self) -> str:
        tok = self.peek()
        if tok.kind == OP and tok.value in _RELATION_OPS:
            self.advance()
            return tok.value
        return self.fail_noviable()

    def in_values(self) -> Any:
        if self.peek().kind == QMARK or self.at_op(":"):
            return self.term()
        self.expect_op("(")
        values = self.term_list(")")
        self.expect_op(")")
        return values

    # ---- terms --------------------------------------------------------------------------------------------
    def term_list(self, closing: str) -> tuple:
        if self.at_op(closing):
            return ()
        items = [self.term()]
        while self.accept_op(","):
            items.append(self.term())
        return tuple(items)

    def term(self) -> Any:
        """A value: constant, collection/tuple literal, bind marker, function call or (type) hint."""
        tok = self.peek()
        self.depth += 1
        try:
            return self._term(tok)
        finally:
            self.depth -= 1

    def _term(self, tok: Token) -> Any:
        if self.depth > MAX_DEPTH:
            self._raise(tok, f"no viable alternative at input '{tok.text}' (nesting deeper than {MAX_DEPTH})")
        if tok.kind in _CONSTANT_KINDS:
            self.advance()
            return Literal(_CONSTANT_KINDS[tok.kind], tok.value)
        if tok.kind == QMARK:
            self.advance()
            return self.new_marker(None)
        if tok.kind == OP:
            return self.punct_term(tok)
        if tok.kind == IDENT:
            word = tok.value
            if word in ("true", "false"):
                self.advance()
                return Literal("boolean", word)
            if word == "null":
                self.advance()
                return Literal("null", "null")
            if word == "nan":
                self.advance()
                return Literal("nan", "NaN")
            if word == "infinity":
                self.advance()
                return Literal("infinity", "Infinity")
        if (tok.kind == QIDENT or (tok.kind == IDENT and tok.value not in _NOT_FUNCTIONS)) and self.at_op("(", k=1):
            self.i += 2
            args = self.term_list(")")
            self.expect_op(")")
            return ast.FunctionCall(tok.value, args)
        return self.fail_noviable()

    def new_marker(self, name: str | None) -> BindMarker:
        marker = BindMarker(len(self.markers), name)
        self.markers.append(marker)
        return marker

    def punct_term(self, tok: Token) -> Any:
        sym = tok.value
        if sym == ":":
            self.advance()
            return self.new_marker(self.ident())
        if sym == "-" and self.at_kw("nan", "infinity", k=1):
            self.i += 2
            return Literal("nan", "NaN") if self.toks[self.i - 1].value == "nan" else Literal(
                "infinity", "-Infinity")
        if sym == "[":
            self.advance()
            items = self.term_list("]")
            self.expect_op("]")
            return CollectionLiteral("list", list(items))
        if sym == "{":
            return self.brace_literal()
        if sym == "(":
            if self.peek(1).kind in (IDENT, QIDENT) and (self.at_op(")", k=2) or self.at_op("<", k=2)) and \
                    not self.at_kw("true", "false", "null", "nan", "infinity", k=1):
                self.advance()
                type_text = self.cql_type()
                self.expect_op(")")
                return ast.TypeHint(type_text, self.term())
            self.advance()
            items = self.term_list(")")
            self.expect_op(")")
            return CollectionLiteral("tuple", list(items))
        return self.fail_noviable()

    def brace_literal(self) -> CollectionLiteral:
        self.expect_op("{")
        if self.accept_op("}"):
            return CollectionLiteral("map", [])
        first = self.term()
        if self.accept_op(":"):
            pairs = [(first, self.term())]
            while self.accept_op(","):
                key = self.term()
                self.expect_op(":")
                pairs.append((key, self.term()))
            self.expect_op("}")
            return CollectionLiteral("map", pairs)
        items = [first]
        while self.accept_op(","):
            items.append(self.term())
        self.expect_op("}")
        return CollectionLiteral("set", items)
