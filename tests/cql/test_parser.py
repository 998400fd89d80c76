"""The CQL parser: a corpus of statements and the objects they produce, and of bad statements with the
SyntaxException (line, column, message) Cassandra would report."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from widecol.cql import ast
from widecol.cql.ast import (
    Assignment,
    BindMarker,
    CollectionLiteral,
    ColumnDef,
    ColumnRef,
    Condition,
    CountRows,
    DeleteTarget,
    FunctionCall,
    Literal,
    Relation,
    Selector,
)
from widecol.cql.parser import parse, parse_script
from widecol.errors import SyntaxException


def I(text):  # noqa: E743 - short names keep the corpus readable
    return Literal("integer", text)


def S(text):
    return Literal("string", text)


M0, M1, M2 = BindMarker(0), BindMarker(1), BindMarker(2)

CORPUS = [
    # --- keyspaces ---
    ("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 3}",
     ast.CreateKeyspace("ks", {"class": "SimpleStrategy", "replication_factor": 3})),
    ("create keyspace if not exists \"Ks\" with REPLICATION = {'class': 'NetworkTopologyStrategy', 'dc1': '2'}"
     " AND durable_writes = false",
     ast.CreateKeyspace("Ks", {"class": "NetworkTopologyStrategy", "dc1": "2"}, False, True)),
    ("ALTER KEYSPACE ks WITH durable_writes = true",
     ast.AlterKeyspace("ks", None, True)),
    ("DROP KEYSPACE IF EXISTS ks", ast.DropKeyspace("ks", True)),
    ("USE \"MyKs\"", ast.Use("MyKs")),
    ("use MyKs", ast.Use("myks")),
    # --- tables ---
    ("CREATE TABLE t (k int PRIMARY KEY, v text)",
     ast.CreateTable(None, "t", (ColumnDef("k", "int"), ColumnDef("v", "text")), ("k",), ())),
    ("CREATE TABLE IF NOT EXISTS ks.t (a int, b Int, c TEXT, s set<int> STATIC, "
     "m MAP<text, FROZEN<list<int>>>, PRIMARY KEY ((a, b), c)) "
     "WITH CLUSTERING ORDER BY (c DESC) AND default_time_to_live = 60 AND gc_grace_seconds = 0 "
     "AND compaction = {'class': 'SizeTieredCompactionStrategy', 'min_threshold': 4} AND comment = 'hi'",
     ast.CreateTable("ks", "t",
                     (ColumnDef("a", "int"), ColumnDef("b", "int"), ColumnDef("c", "text"),
                      ColumnDef("s", "set<int>", True), ColumnDef("m", "map<text, frozen<list<int>>>")),
                     ("a", "b"), ("c",), (("c", "DESC"),),
                     {"default_time_to_live": 60, "gc_grace_seconds": 0,
                      "compaction": {"class": "SizeTieredCompactionStrategy", "min_threshold": 4},
                      "comment": "hi"}, True)),
    ("CREATE TABLE t (a int, b int, c int, PRIMARY KEY (a, b, c)) WITH CLUSTERING ORDER BY (b ASC, c DESC)",
     ast.CreateTable(None, "t", (ColumnDef("a", "int"), ColumnDef("b", "int"), ColumnDef("c", "int")),
                     ("a",), ("b", "c"), (("b", "ASC"), ("c", "DESC")))),
    ("CREATE TABLE t (key int, type text, ttl int, writetime int, PRIMARY KEY (key))",
     ast.CreateTable(None, "t", (ColumnDef("key", "int"), ColumnDef("type", "text"), ColumnDef("ttl", "int"),
                                 ColumnDef("writetime", "int")), ("key",), ())),
    ("CREATE TABLE t (k int PRIMARY KEY, tu tuple<int,text>, v vector<float, 3>, u frozen<\"MyType\">)",
     ast.CreateTable(None, "t", (ColumnDef("k", "int"), ColumnDef("tu", "tuple<int, text>"),
                                 ColumnDef("v", "vector<float, 3>"), ColumnDef("u", 'frozen<"MyType">')),
                     ("k",), ())),
    ("ALTER TABLE ks.t ADD x int, y list<text>",
     ast.AlterTable("ks", "t", "ADD", added=(ColumnDef("x", "int"), ColumnDef("y", "list<text>")))),
    ("ALTER TABLE t ADD s int static", ast.AlterTable(None, "t", "ADD", added=(ColumnDef("s", "int", True),))),
    ("ALTER TABLE t DROP x, y", ast.AlterTable(None, "t", "DROP", dropped=("x", "y"))),
    ("ALTER TABLE t DROP (x)", ast.AlterTable(None, "t", "DROP", dropped=("x",))),
    ("ALTER TABLE t WITH gc_grace_seconds = 5 AND comment = 'c'",
     ast.AlterTable(None, "t", "WITH", options={"gc_grace_seconds": 5, "comment": "c"})),
    ("ALTER TABLE t RENAME a TO b", ast.AlterTable(None, "t", "RENAME", renamed=(("a", "b"),))),
    ("DROP TABLE IF EXISTS ks.t", ast.DropTable("ks", "t", True)),
    ("DROP COLUMNFAMILY t", ast.DropTable(None, "t")),
    ("TRUNCATE t", ast.Truncate(None, "t")),
    ("TRUNCATE TABLE ks.t", ast.Truncate("ks", "t")),
    # --- INSERT ---
    ("INSERT INTO t (a, \"B\") VALUES (1, 'x')", ast.Insert(None, "t", ("a", "B"), (I("1"), S("x")))),
    ("INSERT INTO ks.t (a, b) VALUES (?, ?) IF NOT EXISTS USING TTL 10 AND TIMESTAMP 123",
     ast.Insert("ks", "t", ("a", "b"), (M0, M1), None, True, I("10"), I("123"), bind_markers=(M0, M1))),
    ("INSERT INTO t (a) VALUES (:x) USING TTL :y",
     ast.Insert(None, "t", ("a",), (BindMarker(0, "x"),), ttl=BindMarker(1, "y"),
                bind_markers=(BindMarker(0, "x"), BindMarker(1, "y")))),
    ("INSERT INTO t JSON '{\"a\": 1}' DEFAULT UNSET",
     ast.Insert(None, "t", json=S('{"a": 1}'), json_default="UNSET")),
    ("INSERT INTO t (l, s, m, tu) VALUES ([1, 2], {'a'}, {1: 'x', 2: 'y'}, (1, 'z'))",
     ast.Insert(None, "t", ("l", "s", "m", "tu"), (
         CollectionLiteral("list", [I("1"), I("2")]), CollectionLiteral("set", [S("a")]),
         CollectionLiteral("map", [(I("1"), S("x")), (I("2"), S("y"))]),
         CollectionLiteral("tuple", [I("1"), S("z")])))),
    ("INSERT INTO t (a, b, c, d, e, f, g, h, i, j) VALUES "
     "(true, FALSE, null, NaN, -Infinity, 0xff, 1.5e2, 2h, 123e4567-e89b-12d3-a456-426614174000, now())",
     ast.Insert(None, "t", tuple("abcdefghij"), (
         Literal("boolean", "true"), Literal("boolean", "false"), Literal("null", "null"),
         Literal("nan", "NaN"), Literal("infinity", "-Infinity"), Literal("blob", "0xff"),
         Literal("float", "1.5e2"), Literal("duration", "2h"),
         Literal("uuid", "123e4567-e89b-12d3-a456-426614174000"), FunctionCall("now")))),
    ("INSERT INTO t (a) VALUES ((int) ?)",
     ast.Insert(None, "t", ("a",), (ast.TypeHint("int", M0),), bind_markers=(M0,))),
    # --- UPDATE ---
    ("UPDATE t USING TTL 5 SET v = 1, l = l + [2], l = [0] + l, s = s - {'x'}, m['k'] = 'v', "
     "m = m + {'a': 1}, c += 3 WHERE k = 1 AND c = 2 IF v = 0 AND m['k'] != 'z'",
     ast.Update(None, "t", (
         Assignment("v", "set", I("1")),
         Assignment("l", "add", CollectionLiteral("list", [I("2")])),
         Assignment("l", "prepend", CollectionLiteral("list", [I("0")])),
         Assignment("s", "remove", CollectionLiteral("set", [S("x")])),
         Assignment("m", "set_element", S("v"), S("k")),
         Assignment("m", "add", CollectionLiteral("map", [(S("a"), I("1"))])),
         Assignment("c", "add", I("3")),
     ), (Relation(ColumnRef("k"), "=", I("1")), Relation(ColumnRef("c"), "=", I("2"))),
        (Condition("v", "=", I("0")), Condition("m", "!=", S("z"), S("k"))), ttl=I("5"))),
    ("UPDATE t SET c = c - 1 WHERE k = ? IF EXISTS",
     ast.Update(None, "t", (Assignment("c", "remove", I("1")),), (Relation(ColumnRef("k"), "=", M0),),
                if_exists=True, bind_markers=(M0,))),
    # --- DELETE ---
    ("DELETE FROM t WHERE k = 1", ast.Delete(None, "t", (), (Relation(ColumnRef("k"), "=", I("1")),))),
    ("DELETE a, m['x'] FROM ks.t USING TIMESTAMP 99 WHERE k IN (1, 2) IF EXISTS",
     ast.Delete("ks", "t", (DeleteTarget("a"), DeleteTarget("m", S("x"))),
                (Relation(ColumnRef("k"), "IN", (I("1"), I("2"))),), (), True, I("99"))),
    ("DELETE FROM t WHERE k = 1 IF v IN (1, 2)",
     ast.Delete(None, "t", (), (Relation(ColumnRef("k"), "=", I("1")),),
                (Condition("v", "IN", (I("1"), I("2"))),))),
    # --- SELECT ---
    ("SELECT * FROM t", ast.Select(None, "t")),
    ("select DISTINCT k FROM t", ast.Select(None, "t", (Selector(ColumnRef("k")),), distinct=True)),
    ("SELECT JSON a AS x, COUNT(*), count(1) AS n, WRITETIME(b), TTL(b), token(a, b), CAST(a AS text) "
     "FROM ks.t",
     ast.Select("ks", "t", (
         Selector(ColumnRef("a"), "x"), Selector(CountRows()), Selector(CountRows(), "n"),
         Selector(FunctionCall("writetime", (ColumnRef("b"),))), Selector(FunctionCall("ttl", (ColumnRef("b"),))),
         Selector(FunctionCall("token", (ColumnRef("a"), ColumnRef("b")))),
         Selector(ast.Cast(ColumnRef("a"), "text"))), json=True)),
    ("SELECT a FROM t WHERE a = 1 AND b IN (1, 2) AND c < 3 AND c <= 4 AND d > 5 AND d >= 6 "
     "AND s CONTAINS 7 AND m CONTAINS KEY 'k' ORDER BY c ASC, d DESC PER PARTITION LIMIT 2 LIMIT 10 "
     "ALLOW FILTERING",
     ast.Select(None, "t", (Selector(ColumnRef("a")),), where=(
         Relation(ColumnRef("a"), "=", I("1")), Relation(ColumnRef("b"), "IN", (I("1"), I("2"))),
         Relation(ColumnRef("c"), "<", I("3")), Relation(ColumnRef("c"), "<=", I("4")),
         Relation(ColumnRef("d"), ">", I("5")), Relation(ColumnRef("d"), ">=", I("6")),
         Relation(ColumnRef("s"), "CONTAINS", I("7")), Relation(ColumnRef("m"), "CONTAINS KEY", S("k"))),
        order_by=(("c", "ASC"), ("d", "DESC")), per_partition_limit=I("2"), limit=I("10"),
        allow_filtering=True)),
    ("SELECT * FROM t WHERE (a, b) > (1, 2) AND (a, b) IN ((1, 2), (3, 4)) AND token(k) > ? LIMIT ?",
     ast.Select(None, "t", where=(
         Relation(("a", "b"), ">", CollectionLiteral("tuple", [I("1"), I("2")])),
         Relation(("a", "b"), "IN", (CollectionLiteral("tuple", [I("1"), I("2")]),
                                     CollectionLiteral("tuple", [I("3"), I("4")]))),
         Relation(FunctionCall("token", (ColumnRef("k"),)), ">", M0)), limit=M1, bind_markers=(M0, M1))),
    ("SELECT * FROM t WHERE token(k) > token(?) AND k IN ?",
     ast.Select(None, "t", where=(
         Relation(FunctionCall("token", (ColumnRef("k"),)), ">", FunctionCall("token", (M0,))),
         Relation(ColumnRef("k"), "IN", M1)), bind_markers=(M0, M1))),
    ("SELECT key, type, ttl FROM t WHERE key = :k",
     ast.Select(None, "t", (Selector(ColumnRef("key")), Selector(ColumnRef("type")), Selector(ColumnRef("ttl"))),
                where=(Relation(ColumnRef("key"), "=", BindMarker(0, "k")),),
                bind_markers=(BindMarker(0, "k"),))),
    # --- BATCH ---
    ("BEGIN BATCH USING TIMESTAMP 5 INSERT INTO t (a) VALUES (?); UPDATE t SET v = ? WHERE k = 1 "
     "APPLY BATCH",
     ast.Batch("LOGGED", (
         ast.Insert(None, "t", ("a",), (M0,), bind_markers=(M0,)),
         ast.Update(None, "t", (Assignment("v", "set", M1),), (Relation(ColumnRef("k"), "=", I("1")),),
                    bind_markers=(M1,)),
     ), I("5"), bind_markers=(M0, M1))),
    ("begin unlogged batch delete from t where k = 1; apply batch",
     ast.Batch("UNLOGGED", (ast.Delete(None, "t", (), (Relation(ColumnRef("k"), "=", I("1")),)),))),
    # --- parsed, not supported ---
    ("CREATE INDEX ON t (v)", ast.Unsupported("CREATE INDEX")),
    ("CREATE MATERIALIZED VIEW mv AS SELECT * FROM t WHERE k IS NOT NULL PRIMARY KEY (k)",
     ast.Unsupported("CREATE MATERIALIZED VIEW")),
    ("CREATE FUNCTION f (a int) RETURNS NULL ON NULL INPUT RETURNS int LANGUAGE java AS $$ return a; $$",
     ast.Unsupported("CREATE FUNCTION")),
    ("CREATE TYPE ty (a int)", ast.Unsupported("CREATE TYPE")),
    ("GRANT SELECT ON ALL KEYSPACES TO bob", ast.Unsupported("GRANT")),
    ("DROP INDEX i", ast.Unsupported("DROP INDEX")),
]


@pytest.mark.parametrize("text, expected", CORPUS, ids=[c[0][:40] for c in CORPUS])
def test_corpus(text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("text, expected", CORPUS[:12], ids=[c[0][:40] for c in CORPUS[:12]])
def test_trailing_semicolon_and_comments_do_not_change_the_result(text, expected):
    assert parse("/* lead */ " + text + " ; -- trailing") == expected


ERRORS = [
    ("SELEC * FROM t", "line 1:0 no viable alternative at input 'SELEC'"),
    ("SELECT * FORM t", "line 1:9 mismatched input 'FORM' expecting K_FROM"),
    ("SELECT * FROM t x", "line 1:16 missing EOF at 'x'"),
    ("SELECT * FROM", "line 1:13 no viable alternative at input '<EOF>'"),
    ("SELECT * FROM t WHERE", "line 1:21 no viable alternative at input '<EOF>'"),
    ("SELECT * FROM t WHERE a = ", "line 1:26 no viable alternative at input '<EOF>'"),
    ("SELECT * FROM t WHERE a ~ 1", "line 1:24 token recognition error at: '~'"),
    ("SELECT * FROM t LIMIT 'x'", "line 1:22 no viable alternative at input ''x''"),
    ("SELECT * FROM t ORDER c", "line 1:22 mismatched input 'c' expecting K_BY"),
    ("SELECT * FROM select", "line 1:14 no viable alternative at input 'select'"),
    ("INSERT t (a) VALUES (1)", "line 1:7 mismatched input 't' expecting K_INTO"),
    ("INSERT INTO t (a) VALUES (1", "line 1:27 mismatched input '<EOF>' expecting ')'"),
    ("INSERT INTO t (a) VALUE (1)", "line 1:18 mismatched input 'VALUE' expecting K_VALUES"),
    ("UPDATE t SET WHERE k = 1", "line 1:13 no viable alternative at input 'WHERE'"),
    ("UPDATE t SET l = [1] + m WHERE k = 1", "line 1:23 no viable alternative at input 'm'"),
    ("DELETE FROM t USING TTL 3 WHERE k = 1", "line 1:20 mismatched input 'TTL' expecting K_TIMESTAMP"),
    ("CREATE TABLE t (k int PRIMARY KEY,\n  from int)", "line 2:2 no viable alternative at input 'from'"),
    ("CREATE TABLE t (k map<int PRIMARY KEY)", "line 1:26 mismatched input 'PRIMARY' expecting '>'"),
    ("CREATE KEYSPACE ks", "line 1:18 mismatched input '<EOF>' expecting K_WITH"),
    ("CREATE TABEL t (k int)", "line 1:7 no viable alternative at input 'TABEL'"),
    ("DROP TABLE IF ks.t", "line 1:14 mismatched input 'ks' expecting K_EXISTS"),
    ("BEGIN BATCH SELECT * FROM t APPLY BATCH", "line 1:12 no viable alternative at input 'SELECT'"),
    ("BEGIN BATCH INSERT INTO t (a) VALUES (1)", "line 1:40 mismatched input '<EOF>' expecting K_APPLY"),
    ("\n\n   USE", "line 3:6 no viable alternative at input '<EOF>'"),
]


@pytest.mark.parametrize("text, message", ERRORS, ids=[e[0][:40] for e in ERRORS])
def test_syntax_errors(text, message):
    with pytest.raises(SyntaxException) as info:
        parse(text)
    exc = info.value
    assert str(exc) == message
    assert message.startswith(f"line {exc.line}:{exc.column} ")


@pytest.mark.parametrize("text", ["select * from t", "SELECT * FROM t", "SeLeCt * FrOm t"])
def test_keywords_are_case_insensitive(text):
    assert parse(text) == ast.Select(None, "t")


def test_quoted_identifiers_keep_case_and_may_be_reserved_words():
    stmt = parse('SELECT "Select", "a""b" FROM "Ks"."Tab"')
    assert stmt == ast.Select("Ks", "Tab", (Selector(ColumnRef("Select")), Selector(ColumnRef('a"b'))))


def test_bind_markers_numbered_in_text_order_across_clauses():
    stmt = parse("UPDATE t USING TTL ? SET a = :x, b[?] = ? WHERE k IN (?, :y) IF c = ?")
    assert stmt.bind_markers == (
        BindMarker(0), BindMarker(1, "x"), BindMarker(2), BindMarker(3), BindMarker(4), BindMarker(5, "y"),
        BindMarker(6),
    )


def test_script_of_several_statements():
    stmts = parse_script(
        "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\n"
        "USE ks; ;\n"
        "-- a comment line\n"
        "CREATE TABLE t (k int PRIMARY KEY, v text);\n"
        "INSERT INTO t (k, v) VALUES (1, 'a;b');\n"
        "SELECT * FROM t"
    )
    assert [type(s).__name__ for s in stmts] == ["CreateKeyspace", "Use", "CreateTable", "Insert", "Select"]
    assert stmts[3].values == (I("1"), S("a;b"))
    assert parse_script("  -- nothing\n") == []


def test_script_error_points_at_the_right_line():
    with pytest.raises(SyntaxException) as info:
        parse_script("USE ks;\nSELECT * FROM t;\nSELECT * FROM t t2;")
    assert (info.value.line, info.value.column) == (3, 16)
    assert str(info.value) == "line 3:16 mismatched input 't2' expecting ';'"


def test_parse_rejects_two_statements():
    with pytest.raises(SyntaxException) as info:
        parse("USE a; USE b")
    assert str(info.value) == "line 1:7 missing EOF at 'USE'"


VOCAB = [
    "SELECT", "INSERT", "INTO", "UPDATE", "DELETE", "FROM", "WHERE", "SET", "VALUES", "AND", "IF", "NOT",
    "EXISTS", "IN", "CONTAINS", "KEY", "TOKEN", "LIMIT", "ORDER", "BY", "DESC", "USING", "TTL", "TIMESTAMP",
    "BEGIN", "BATCH", "APPLY", "CREATE", "TABLE", "KEYSPACE", "PRIMARY", "WITH", "DROP", "ALTER", "ADD",
    "USE", "TRUNCATE", "COUNT", "CAST", "AS", "STATIC", "CLUSTERING", "JSON", "DISTINCT", "PER", "PARTITION",
    "ALLOW", "FILTERING", "a", "b", "t", '"Q"', "ks", ".", ",", ";", "(", ")", "[", "]", "{", "}", ":", "?",
    "=", "<", ">=", "+", "-", "*", "1", "-2", "1.5", "'s'", "0xab", "1h", "true", "null", "NaN", "Infinity",
    "map", "<", ">", "int", "list", "frozen",
]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(VOCAB), max_size=25))
def test_parser_raises_only_syntax_exception_on_token_soup(words):
    text = " ".join(words)
    for fn in (parse, parse_script):
        try:
            fn(text)
        except SyntaxException as exc:
            assert str(exc).startswith(f"line {exc.line}:{exc.column} ")


PREFIXES = ["SELECT a FROM t WHERE ", "UPDATE t SET ", "INSERT INTO t (a) VALUES (", "CREATE TABLE t (",
            "DELETE FROM t WHERE k = 1 IF ", "BEGIN BATCH "]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PREFIXES), st.lists(st.sampled_from(VOCAB), max_size=15))
def test_parser_raises_only_syntax_exception_after_valid_prefix(prefix, words):
    try:
        parse(prefix + " ".join(words))
    except SyntaxException:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=50))
def test_parser_raises_only_syntax_exception_on_arbitrary_text(text):
    try:
        parse_script(text)
    except SyntaxException:
        pass


@pytest.mark.parametrize("opening, closing", [("[", "]"), ("(", ")"), ("{", "}"), ("frozen<", ">")])
def test_deep_nesting_is_a_syntax_error_not_a_crash(opening, closing):
    if opening == "frozen<":
        text = "CREATE TABLE t (k " + opening * 5000 + "int" + closing * 5000 + " PRIMARY KEY)"
    else:
        text = "INSERT INTO t (a) VALUES (" + opening * 5000 + "1" + closing * 5000 + ")"
    with pytest.raises(SyntaxException) as info:
        parse(text)
    assert "no viable alternative" in str(info.value)


def test_moderate_nesting_parses():
    stmt = parse("INSERT INTO t (a) VALUES ([[[[1]]]])")
    assert stmt.values == (CollectionLiteral("list", [CollectionLiteral("list", [CollectionLiteral(
        "list", [CollectionLiteral("list", [I("1")])])])]),)
