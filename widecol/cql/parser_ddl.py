"""DDL half of the CQL parser: CREATE / ALTER / DROP of keyspaces and tables, types, WITH properties.

How this works: `DdlMixin` is mixed into the parser class of widecol.cql.parser and uses its token-stream
helpers (peek, accept_kw, expect_op, ident, fail_* ...). CQL types are read structurally and returned as
normalised text ("map<text, frozen<list<int>>>"); the schema layer owns their meaning. Statements that
Cassandra has but widecol does not execute (indexes, views, functions, types, roles) become
ast.Unsupported with a name such as "CREATE INDEX".
"""

from __future__ import annotations

from typing import Any

from widecol.cql import ast
from widecol.cql.lexer import FLOAT, IDENT, INTEGER, OP, QIDENT, STRING

_UNSUPPORTED_CREATE = {
    "index": "CREATE INDEX", "custom": "CREATE CUSTOM INDEX", "materialized": "CREATE MATERIALIZED VIEW",
    "function": "CREATE FUNCTION", "aggregate": "CREATE AGGREGATE", "type": "CREATE TYPE",
    "trigger": "CREATE TRIGGER", "role": "CREATE ROLE", "user": "CREATE USER", "or": "CREATE OR REPLACE",
}
_UNSUPPORTED_ALTER = {"type": "ALTER TYPE", "materialized": "ALTER MATERIALIZED VIEW", "role": "ALTER ROLE",
                      "user": "ALTER USER"}
_UNSUPPORTED_DROP = {
    "index": "DROP INDEX", "materialized": "DROP MATERIALIZED VIEW", "function": "DROP FUNCTION",
    "aggregate": "DROP AGGREGATE", "type": "DROP TYPE", "trigger": "DROP TRIGGER", "role": "DROP ROLE",
    "user": "DROP USER",
}
MAX_DEPTH = 64  # nesting of (), [], {} and type parameters; deeper input is refused, not recursed into
_PARAMETRIC = {"list": 1, "set": 1, "map": 2, "frozen": 1, "tuple": -1, "vector": 2}


class DdlMixin:
    # Provided by the parser class this is mixed into.
    peek: Any
    advance: Any
    at_kw: Any
    accept_kw: Any
    expect_kw: Any
    at_op: Any
    accept_op: Any
    expect_op: Any
    ident: Any
    at_ident: Any
    table_name: Any
    ident_list: Any
    unsupported: Any
    fail_noviable: Any
    fail_mismatch: Any
    depth: int

    def if_not_exists(self) -> bool:
        if self.accept_kw("if"):
            self.expect_kw("not")
            self.expect_kw("exists")
            return True
        return False

    def if_exists(self) -> bool:
        if self.accept_kw("if"):
            self.expect_kw("exists")
            return True
        return False

    # ---- CREATE -------------------------------------------------------------------------------------------
    def create(self) -> ast.Statement:
        self.expect_kw("create")
        tok = self.peek()
        word = tok.value if tok.kind == IDENT else ""
        if word in ("keyspace", "schema"):
            self.advance()
            ine = self.if_not_exists()
            name = self.ident()
            self.expect_kw("with")
            props = self.properties()
            replication = props.pop("replication", {})
            durable = props.pop("durable_writes", True)
            return ast.CreateKeyspace(name, replication, _truthy(durable), ine, props)
        if word in ("table", "columnfamily"):
            self.advance()
            return self.create_table()
        if word in _UNSUPPORTED_CREATE:
            return self.unsupported(_UNSUPPORTED_CREATE[word])
        return self.fail_noviable()

    def create_table(self) -> ast.CreateTable:
        ine = self.if_not_exists()
        ks, table = self.table_name()
        self.expect_op("(")
        columns: list[ast.ColumnDef] = []
        partition: tuple[str, ...] = ()
        clustering: tuple[str, ...] = ()
        definitions = 0
        while True:
            if self.at_kw("primary"):
                self.advance()
                self.expect_kw("key")
                partition, clustering = self.primary_key()
                definitions += 1
            else:
                name = self.ident()
                type_text = self.cql_type()
                static = self.accept_kw("static")
                columns.append(ast.ColumnDef(name, type_text, static))
                if self.accept_kw("primary"):
                    self.expect_kw("key")
                    partition, clustering = (name,), ()
                    definitions += 1
            if not self.accept_op(","):
                break
            if self.at_op(")"):
                break
        self.expect_op(")")
        order: list[tuple[str, str]] = []
        options: dict = {}
        compact = False
        if self.accept_kw("with"):
            while True:
                if self.accept_kw("clustering"):
                    self.expect_kw("order")
                    self.expect_kw("by")
                    self.expect_op("(")
                    while True:
                        col = self.ident()
                        direction = "DESC" if self.accept_kw("desc") else "ASC"
                        if direction == "ASC":
                            self.accept_kw("asc")
                        order.append((col, direction))
                        if not self.accept_op(","):
                            break
                    self.expect_op(")")
                elif self.accept_kw("compact"):
                    self.expect_kw("storage")
                    compact = True
                else:
                    key, value = self.property()
                    options[key] = value
                if not self.accept_kw("and"):
                    break
        return ast.CreateTable(ks, table, tuple(columns), partition, clustering, tuple(order), options, ine,
                               compact, primary_key_definitions=definitions)

    def primary_key(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        self.expect_op("(")
        if self.accept_op("("):
            partition = self.ident_list()
            self.expect_op(")")
        else:
            partition = (self.ident(),)
        clustering: tuple[str, ...] = ()
        if self.accept_op(","):
            clustering = self.ident_list()
        self.expect_op(")")
        return partition, clustering

    # ---- ALTER / DROP -------------------------------------------------------------------------------------
    def alter(self) -> ast.Statement:
        self.expect_kw("alter")
        tok = self.peek()
        word = tok.value if tok.kind == IDENT else ""
        if word in ("keyspace", "schema"):
            self.advance()
            ie = self.if_exists()
            name = self.ident()
            self.expect_kw("with")
            props = self.properties()
            replication = props.pop("replication", None)
            durable = props.pop("durable_writes", None)
            return ast.AlterKeyspace(name, replication, None if durable is None else _truthy(durable), ie,
                                     props)
        if word in ("table", "columnfamily"):
            self.advance()
            return self.alter_table()
        if word in _UNSUPPORTED_ALTER:
            return self.unsupported(_UNSUPPORTED_ALTER[word])
        return self.fail_noviable()

    def alter_table(self) -> ast.AlterTable:
        ie = self.if_exists()
        ks, table = self.table_name()
        if self.accept_kw("add"):
            self.if_not_exists()
            paren = self.accept_op("(")
            added = []
            while True:
                name = self.ident()
                type_text = self.cql_type()
                added.append(ast.ColumnDef(name, type_text, self.accept_kw("static")))
                if not self.accept_op(","):
                    break
            if paren:
                self.expect_op(")")
            return ast.AlterTable(ks, table, "ADD", added=tuple(added), if_exists=ie)
        if self.accept_kw("drop"):
            self.if_exists()
            if self.accept_op("("):
                dropped = self.ident_list()
                self.expect_op(")")
            else:
                dropped = self.ident_list()
            return ast.AlterTable(ks, table, "DROP", dropped=dropped, if_exists=ie)
        if self.accept_kw("with"):
            return ast.AlterTable(ks, table, "WITH", options=self.properties(), if_exists=ie)
        if self.accept_kw("rename"):
            self.if_exists()
            pairs = []
            while True:
                old = self.ident()
                self.expect_kw("to")
                pairs.append((old, self.ident()))
                if not self.accept_kw("and"):
                    break
            return ast.AlterTable(ks, table, "RENAME", renamed=tuple(pairs), if_exists=ie)
        if self.accept_kw("alter"):
            col = self.ident()
            self.expect_kw("type")
            return ast.AlterTable(ks, table, "ALTER", altered=((col, self.cql_type()),), if_exists=ie)
        return self.fail_noviable()

    def drop(self) -> ast.Statement:
        self.expect_kw("drop")
        tok = self.peek()
        word = tok.value if tok.kind == IDENT else ""
        if word in ("keyspace", "schema"):
            self.advance()
            ie = self.if_exists()
            return ast.DropKeyspace(self.ident(), ie)
        if word in ("table", "columnfamily"):
            self.advance()
            ie = self.if_exists()
            ks, table = self.table_name()
            return ast.DropTable(ks, table, ie)
        if word in _UNSUPPORTED_DROP:
            return self.unsupported(_UNSUPPORTED_DROP[word])
        return self.fail_noviable()

    # ---- properties and types -----------------------------------------------------------------------------
    def properties(self) -> dict:
        props: dict = {}
        while True:
            key, value = self.property()
            props[key] = value
            if not self.accept_kw("and"):
                return props

    def property(self) -> tuple[str, Any]:
        key = self.ident()
        self.expect_op("=")
        if self.accept_op("{"):
            out: dict = {}
            while not self.at_op("}"):
                k = self.property_value()
                self.expect_op(":")
                out[str(k)] = self.property_value()
                if not self.accept_op(","):
                    break
            self.expect_op("}")
            return key, out
        return key, self.property_value()

    def property_value(self) -> Any:
        tok = self.peek()
        if tok.kind == STRING:
            self.advance()
            return tok.value
        if tok.kind == INTEGER:
            self.advance()
            return int(tok.value)
        if tok.kind == FLOAT:
            self.advance()
            return float(tok.value)
        if tok.kind == IDENT and tok.value in ("true", "false"):
            self.advance()
            return tok.value == "true"
        if self.at_ident():
            return self.advance().value
        return self.fail_noviable()

    def cql_type(self) -> str:
        """A CQL type, returned as normalised text: lowercased names, ', ' between parameters."""
        tok = self.peek()
        self.depth += 1
        try:
            return self._cql_type(tok)
        finally:
            self.depth -= 1

    def _cql_type(self, tok: Any) -> str:
        if self.depth > MAX_DEPTH:
            return self.fail_noviable()
        if tok.kind == STRING:  # custom type class name
            self.advance()
            return "'" + tok.value.replace("'", "''") + "'"
        if tok.kind == QIDENT:
            self.advance()
            name = '"' + tok.value.replace('"', '""') + '"'
        elif tok.kind == IDENT:
            self.advance()
            name = tok.value
        else:
            return self.fail_noviable()
        if self.accept_op("."):
            return name + "." + self.cql_type()
        if tok.kind == IDENT and name in _PARAMETRIC and self.accept_op("<"):
            params = [self.cql_type_param()]
            while self.accept_op(","):
                params.append(self.cql_type_param())
            self.expect_op(">")
            return f"{name}<{', '.join(params)}>"
        return name

    def cql_type_param(self) -> str:
        tok = self.peek()
        if tok.kind == INTEGER:  # vector<float, 3>
            self.advance()
            return tok.value
        if tok.kind == OP and tok.value not in ("(",):
            return self.fail_noviable()
        return self.cql_type()


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() == "true"
    return bool(value)
