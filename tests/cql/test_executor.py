"""The CQL executor against a real engine on disk: a corpus of statements with their rows or errors."""

import struct

import pytest

from widecol.cql.executor import Executor, Rows, SchemaChange, SetKeyspace, Void
from widecol.errors import AlreadyExists, ConfigurationException, InvalidRequest
from widecol.schema.clustering import encode_clustering
from widecol.schema.types import parse_type

KS = "CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}"


class Db:
    def __init__(self, open_engine, clock):
        self.open_engine = open_engine
        self.clock = clock
        self.engine = open_engine()
        self.ex = Executor(self.engine)

    def restart(self):
        self.engine.close()
        self.clock.advance(1)  # a restarted executor takes its timestamps from the clock again
        self.engine = self.open_engine()
        self.ex = Executor(self.engine)
        self.ex.execute("USE ks")

    def run(self, query, params=None, **kw):
        return self.ex.execute(query, params, **kw)

    def rows(self, query, params=None, **kw):
        result = self.ex.execute(query, params, **kw)
        assert isinstance(result, Rows)
        return [tuple(_plain(v) for v in row) for row in result.rows]

    def fails(self, query, cls, message, params=None):
        with pytest.raises(cls) as info:
            self.ex.execute(query, params)
        assert message in str(info.value)


def _plain(v):
    if v is not None and type(v).__name__ == "SortedSet":
        return set(v)
    return v


@pytest.fixture
def db(open_engine, clock):
    d = Db(open_engine, clock)
    d.run(KS)
    d.run("USE ks")
    return d


# -- schema ----------------------------------------------------------------------------------------------------------


def test_keyspace_lifecycle_and_errors(open_engine, clock):
    d = Db(open_engine, clock)
    assert d.run(KS) == SchemaChange("CREATED", "KEYSPACE", "ks", "")
    d.fails(KS, AlreadyExists, "ks")
    assert d.run(KS.replace("KEYSPACE", "KEYSPACE IF NOT EXISTS")) == Void()
    d.fails("CREATE KEYSPACE k2 WITH replication = {'class': 'SimpleStrategy'}", ConfigurationException,
            "SimpleStrategy requires a replication_factor strategy option.")
    d.fails("USE nope", InvalidRequest, "Keyspace 'nope' does not exist")
    d.fails("SELECT * FROM nope.t", InvalidRequest, "Keyspace 'nope' does not exist")
    d.fails("SELECT * FROM t", InvalidRequest, "No keyspace has been specified")
    assert d.run("USE ks") == SetKeyspace("ks")
    d.fails("SELECT * FROM t", InvalidRequest, "unconfigured table t")
    assert d.run("ALTER KEYSPACE ks WITH replication = {'class': 'NetworkTopologyStrategy', 'dc1': 3} "
                 "AND durable_writes = false").change == "UPDATED"
    d.restart()
    ks = d.ex.store.schema.keyspace("ks")
    assert ks.replication["dc1"] == "3" and ks.durable_writes is False
    assert d.run("DROP KEYSPACE ks") == SchemaChange("DROPPED", "KEYSPACE", "ks", "")
    d.fails("DROP KEYSPACE ks", InvalidRequest, "Keyspace 'ks' does not exist")
    assert d.run("DROP KEYSPACE IF EXISTS ks") == Void()


def test_create_table_errors(db):
    db.fails("CREATE TABLE t (a int, b int, PRIMARY KEY (a, x))", InvalidRequest,
             "Unknown definition x referenced in PRIMARY KEY")
    db.fails("CREATE TABLE t (a int, b int, PRIMARY KEY (a, b)) WITH CLUSTERING ORDER BY (a DESC)", InvalidRequest,
             "Only clustering key columns can be defined in CLUSTERING ORDER directive")
    db.fails("CREATE TABLE t (a int PRIMARY KEY, s int static)", InvalidRequest, "Static columns")
    db.fails("CREATE TABLE t (a int PRIMARY KEY) WITH bogus = 1", Exception, "Unknown property 'bogus'")
    db.fails("CREATE TABLE nope.t (a int PRIMARY KEY)", InvalidRequest, "Keyspace 'nope' does not exist")
    assert db.run("CREATE TABLE t (a int PRIMARY KEY)").target == "TABLE"
    db.fails("CREATE TABLE t (a int PRIMARY KEY)", AlreadyExists, "t")
    assert db.run("CREATE TABLE IF NOT EXISTS t (a int PRIMARY KEY)") == Void()
    assert db.ex.store.schema.keyspace("ks").tables.keys() == {"t"}


def test_alter_drop_truncate_survive_restart(db):
    db.run("CREATE TABLE t (id int PRIMARY KEY, v int) WITH comment = 'hi' AND gc_grace_seconds = 10 "
           "AND compaction = {'class': 'SizeTieredCompactionStrategy'}")
    db.run("INSERT INTO t (id, v) VALUES (1, 10)")
    assert db.run("ALTER TABLE t ADD w text") == SchemaChange("UPDATED", "TABLE", "ks", "t")
    db.run("ALTER TABLE t WITH default_time_to_live = 50")
    db.restart()
    table = db.ex.store.schema.table("ks", "t")
    assert table.options["comment"] == "hi" and table.options["default_time_to_live"] == 50
    assert db.rows("SELECT * FROM t") == [(1, 10, None)]
    db.run("INSERT INTO t (id, w) VALUES (2, 'x')")
    assert db.rows("SELECT ttl(w) FROM t WHERE id = 2") == [(50,)]
    db.fails("ALTER TABLE t DROP id", InvalidRequest, "Cannot drop PRIMARY KEY column id")
    db.fails("ALTER TABLE t ADD v int", InvalidRequest, "already exists")
    db.run("ALTER TABLE t DROP v")
    db.restart()
    assert db.rows("SELECT * FROM t WHERE id = 1") == [(1, None)]  # the row marker keeps it
    db.fails("SELECT v FROM t", InvalidRequest, "Undefined column name v")
    db.run("ALTER TABLE t ADD v int")
    assert db.rows("SELECT v FROM t WHERE id = 1") == [(None,)]  # the old value does not come back
    db.run("UPDATE t SET v = 3 WHERE id = 1")
    assert db.rows("SELECT v FROM t WHERE id = 1") == [(3,)]
    db.run("TRUNCATE t")
    assert db.rows("SELECT * FROM t") == []
    assert db.run("DROP TABLE t") == SchemaChange("DROPPED", "TABLE", "ks", "t")
    db.restart()
    db.fails("SELECT * FROM t", InvalidRequest, "unconfigured table t")
    assert db.run("DROP TABLE IF EXISTS t") == Void()


# -- writes ----------------------------------------------------------------------------------------------------------


@pytest.fixture
def users(db):
    db.run("CREATE TABLE users (id int PRIMARY KEY, name text, age int)")
    return db


def test_insert_update_delete_simple_columns(users):
    db = users
    db.run("INSERT INTO users (id, name, age) VALUES (1, 'ann', 30)")
    db.run("UPDATE users SET age = 31 WHERE id = 1")
    db.run("UPDATE users SET name = 'bob' WHERE id IN (2, 3)")
    db.restart()
    assert db.rows("SELECT * FROM users WHERE id IN (3, 1, 2)") == [(1, 31, "ann"), (2, None, "bob"),
                                                                     (3, None, "bob")]
    db.run("DELETE name FROM users WHERE id = 1")
    db.run("DELETE FROM users WHERE id = 2")
    assert db.rows("SELECT id, name FROM users WHERE id IN (1, 2)") == [(1, None)]
    # UPDATE writes no row marker: removing its only column removes the row; INSERT's marker keeps it.
    db.run("DELETE name FROM users WHERE id = 3")
    assert db.rows("SELECT * FROM users WHERE id = 3") == []
    db.run("DELETE age FROM users WHERE id = 1")
    assert db.rows("SELECT * FROM users WHERE id = 1") == [(1, None, None)]


def test_write_errors_change_nothing(users):
    db = users
    db.fails("INSERT INTO users (id, age) VALUES (1, 'abc')", InvalidRequest,
             'Invalid STRING constant (abc) for "age" of type int')
    db.fails("INSERT INTO users (name) VALUES ('x')", InvalidRequest, "Some partition key parts are missing: id")
    db.fails("UPDATE users SET age = 1 WHERE name = 'x'", InvalidRequest,
             "Non PRIMARY KEY columns found in where clause: name")
    db.fails("UPDATE users SET id = 1 WHERE id = 2", InvalidRequest, "PRIMARY KEY part id found in SET part")
    db.fails("INSERT INTO users (id, nope) VALUES (1, 2)", InvalidRequest, "Undefined column name nope")
    db.fails("BEGIN BATCH INSERT INTO users (id, age) VALUES (5, 1); "
             "INSERT INTO users (id, age) VALUES (6, 'abc'); APPLY BATCH", InvalidRequest, "Invalid STRING")
    db.fails("INSERT INTO users (id, age) VALUES (7, 1) IF NOT EXISTS", InvalidRequest, "not supported yet")
    db.fails("UPDATE users SET age = 1 WHERE id = 7 IF age = 2", InvalidRequest, "not supported yet")
    db.fails("CREATE INDEX ON users (age)", InvalidRequest, "CREATE INDEX is not supported yet")
    assert db.rows("SELECT * FROM users") == []


def test_ttl_and_timestamps(users, clock):
    db = users
    db.run("INSERT INTO users (id, name) VALUES (1, 'a') USING TIMESTAMP 100")
    db.run("UPDATE users USING TIMESTAMP 50 SET name = 'old' WHERE id = 1")
    assert db.rows("SELECT name, writetime(name) FROM users WHERE id = 1") == [("a", 100)]
    db.run("INSERT INTO users (id, age) VALUES (2, 5) USING TTL 10")
    assert db.rows("SELECT ttl(age) FROM users WHERE id = 2") == [(10,)]
    clock.advance(4)
    assert db.rows("SELECT ttl(age) FROM users WHERE id = 2") == [(6,)]
    clock.advance(7)
    assert db.rows("SELECT * FROM users WHERE id = 2") == []
    db.fails("INSERT INTO users (id) VALUES (3) USING TTL ?", InvalidRequest, "A TTL must be greater or equal",
             params=[-1])
    # Timestamps from the executor's clock strictly increase even if the clock stands still.
    db.run("INSERT INTO users (id, age) VALUES (4, 1)")
    db.run("INSERT INTO users (id, age) VALUES (4, 2)")
    assert db.rows("SELECT age FROM users WHERE id = 4") == [(2,)]


def test_bind_markers(users):
    db = users
    db.run("INSERT INTO users (id, name, age) VALUES (?, ?, ?)", [1, "ann", 30])
    db.run("UPDATE users SET age = :a WHERE id = :k", {"a": 40, "k": 2})
    assert db.rows("SELECT id, age FROM users WHERE id IN ?", [[1, 2]]) == [(1, 30), (2, 40)]
    db.fails("INSERT INTO users (id, age) VALUES (?, ?)", InvalidRequest, "Invalid value", params=[1, "x"])


def test_storage_layout_exact(db):
    db.run("CREATE TABLE t (a int, b text, c int, d int, v int, PRIMARY KEY ((a, b), c, d)) "
           "WITH CLUSTERING ORDER BY (c DESC)")
    db.run("INSERT INTO t (a, b, c, d, v) VALUES (1, 'x', 2, 3, 4)")
    table = db.ex.table_info(None, "t", None)
    key = struct.pack(">H", 4) + b"\x00\x00\x00\x01\x00" + struct.pack(">H", 1) + b"x\x00"
    ints = parse_type("int")
    ck = encode_clustering([ints, ints], ["DESC", "ASC"], [2, 3])
    rows = db.engine.table(table.storage_id).read(key)
    assert [r[0] for r in rows] == [ck]
    assert rows[0][1][b"v"][1] == b"\x00\x00\x00\x04" and b"" in rows[0][1]
    assert db.rows("SELECT a, b, c, d, v FROM t") == [(1, "x", 2, 3, 4)]


# -- clustering, deletes of ranges -----------------------------------------------------------------------------------


@pytest.fixture
def events(db):
    db.run("CREATE TABLE ev (p int, c int, d int, v int, s text static, PRIMARY KEY (p, c, d))")
    for p in (1, 2):
        for c in range(4):
            for d in range(2):
                db.run(f"INSERT INTO ev (p, c, d, v) VALUES ({p}, {c}, {d}, {p * 100 + c * 10 + d})")
    return db


def test_clustering_restrictions(events):
    db = events
    q = "SELECT v FROM ev WHERE p = 1 AND "
    assert db.rows(q + "c = 2") == [(120,), (121,)]
    assert db.rows(q + "c > 1 AND c <= 2") == [(120,), (121,)]
    assert db.rows(q + "c >= 3") == [(130,), (131,)]
    assert db.rows(q + "c < 1") == [(100,), (101,)]
    assert db.rows(q + "c IN (3, 0) AND d = 1") == [(101,), (131,)]
    assert db.rows(q + "c = 1 AND d > 0") == [(111,)]
    assert db.rows(q + "(c, d) > (2, 0)") == [(121,), (130,), (131,)]
    assert db.rows(q + "(c, d) >= (1, 1) AND (c, d) < (2, 1)") == [(111,), (120,)]
    assert db.rows(q + "c > 0 AND c < 3 ORDER BY c DESC") == [(121,), (120,), (111,), (110,)]
    assert db.rows("SELECT v FROM ev WHERE p IN (1, 2) AND c = 0 AND d = 0") == [(100,), (200,)]
    db.fails("SELECT v FROM ev WHERE p = 1 AND d = 1", InvalidRequest, "ALLOW FILTERING")
    assert db.rows("SELECT v FROM ev WHERE p = 1 AND d = 1 AND c < 2 ALLOW FILTERING") == [(101,), (111,)]


def test_desc_clustering_order(db):
    db.run("CREATE TABLE t (p int, c int, v int, PRIMARY KEY (p, c)) WITH CLUSTERING ORDER BY (c DESC)")
    for c in range(5):
        db.run(f"INSERT INTO t (p, c, v) VALUES (0, {c}, {c})")
    db.restart()
    assert db.rows("SELECT c FROM t WHERE p = 0") == [(4,), (3,), (2,), (1,), (0,)]
    assert db.rows("SELECT c FROM t WHERE p = 0 AND c > 1 AND c <= 3") == [(3,), (2,)]
    assert db.rows("SELECT c FROM t WHERE p = 0 AND c >= 3 ORDER BY c ASC") == [(3,), (4,)]
    assert db.rows("SELECT c FROM t WHERE p = 0 LIMIT 2") == [(4,), (3,)]
    db.run("DELETE FROM t WHERE p = 0 AND c >= 1 AND c < 3")
    assert db.rows("SELECT c FROM t WHERE p = 0") == [(4,), (3,), (0,)]


def test_range_row_and_partition_deletes(events):
    db = events
    db.run("DELETE FROM ev WHERE p = 1 AND c = 1")
    db.run("DELETE FROM ev WHERE p = 1 AND c = 2 AND d = 0")
    db.run("DELETE FROM ev WHERE p = 1 AND c > 2")
    db.restart()
    assert db.rows("SELECT v FROM ev WHERE p = 1") == [(100,), (101,), (121,)]
    db.run("DELETE FROM ev WHERE p = 2")
    assert db.rows("SELECT v FROM ev WHERE p = 2") == []
    db.fails("DELETE v FROM ev WHERE p = 1 AND c > 1", InvalidRequest, "Range deletions are not supported")


def test_static_columns(events):
    db = events
    db.run("UPDATE ev SET s = 'hello' WHERE p = 1")
    assert db.rows("SELECT s, v FROM ev WHERE p = 1 AND c = 0") == [("hello", 100), ("hello", 101)]
    db.run("INSERT INTO ev (p, s) VALUES (3, 'lonely')")
    assert db.rows("SELECT p, c, s FROM ev WHERE p = 3") == [(3, None, "lonely")]
    assert db.rows("SELECT DISTINCT p, s FROM ev") == sorted(
        db.rows("SELECT DISTINCT p, s FROM ev"), key=lambda r: db.rows(f"SELECT token(p) FROM ev WHERE p = {r[0]} "
                                                                           "LIMIT 1")[0][0])
    assert {r for r in db.rows("SELECT DISTINCT p, s FROM ev")} == {(1, "hello"), (2, None), (3, "lonely")}


# -- selection, filtering, scans, paging ------------------------------------------------------------------------------


def test_selectors_and_aggregates(events):
    db = events
    result = db.run("SELECT c AS cc, v, count(*) FROM ev WHERE p = 2")
    assert [name for name, _ in result.columns] == ["cc", "v", "count"]
    assert db.rows("SELECT count(*) FROM ev") == [(16,)]
    assert db.rows("SELECT count(*) FROM ev LIMIT 3") == [(16,)]
    assert db.rows("SELECT count(*) FROM ev WHERE p = 1 AND c > 1") == [(4,)]
    assert db.rows("SELECT v FROM ev WHERE p = 1 PER PARTITION LIMIT 1") == [(100,)]
    assert len(db.rows("SELECT v FROM ev PER PARTITION LIMIT 3")) == 6
    assert len(db.rows("SELECT v FROM ev LIMIT 5")) == 5
    db.fails("SELECT writetime(p) FROM ev", InvalidRequest, "Cannot use selection function writeTime on PRIMARY KEY")
    db.fails("SELECT v FROM ev WHERE p = 1 ORDER BY v", InvalidRequest, "Order by is currently only supported")
    db.fails("SELECT v FROM ev ORDER BY c DESC", InvalidRequest, "ORDER BY is only supported when the partition key")


def test_filtering_scans_tokens(db):
    db.run("CREATE TABLE t (id int PRIMARY KEY, v int, tags set<text>)")
    for i in range(20):
        db.run(f"INSERT INTO t (id, v, tags) VALUES ({i}, {i % 3}, {{'t{i % 2}'}})")
    rows = db.rows("SELECT id, token(id) FROM t")
    assert len(rows) == 20 and [r[1] for r in rows] == sorted(r[1] for r in rows)
    db.fails("SELECT id FROM t WHERE v = 1", InvalidRequest,
             "Cannot execute this query as it might involve data filtering and thus may have unpredictable "
             "performance. If you want to execute this query despite the performance unpredictability, use ALLOW "
             "FILTERING")
    assert sorted(db.rows("SELECT id FROM t WHERE v = 1 ALLOW FILTERING")) == [(i,) for i in range(20) if i % 3 == 1]
    assert sorted(db.rows("SELECT id FROM t WHERE v > 1 AND tags CONTAINS 't0' ALLOW FILTERING")) == [
        (i,) for i in range(20) if i % 3 == 2 and i % 2 == 0]
    mid = rows[9][1]
    after = db.rows(f"SELECT id FROM t WHERE token(id) > {mid}")
    assert after == [(r[0],) for r in rows[10:]]
    pivot = rows[5][0]
    upto = db.rows(f"SELECT id FROM t WHERE token(id) <= token({pivot})")
    assert upto == [(r[0],) for r in rows[:6]]


def test_paging_resumes_after_last_row(events):
    db = events
    db.run("INSERT INTO ev (p, s) VALUES (9, 'static only')")
    full = db.rows("SELECT p, c, d, v FROM ev")
    for size in (1, 3, 7):
        got, state = [], None
        while True:
            result = db.run("SELECT p, c, d, v FROM ev", page_size=size, paging_state=state)
            assert len(result.rows) <= size
            got += result.rows
            state = result.paging_state
            if state is None:
                break
        assert got == full
    # LIMIT and PER PARTITION LIMIT hold across pages; a restricted partition pages through its rows.
    first = db.run("SELECT v FROM ev WHERE p = 1 AND c > 0 ORDER BY c DESC LIMIT 3", page_size=2)
    second = db.run("SELECT v FROM ev WHERE p = 1 AND c > 0 ORDER BY c DESC LIMIT 3", page_size=2,
                    paging_state=first.paging_state)
    assert first.rows + second.rows == [(131,), (130,), (121,)] and second.paging_state is None
    first = db.run("SELECT v FROM ev PER PARTITION LIMIT 2", page_size=1)
    pages, state = list(first.rows), first.paging_state
    while state is not None:
        nxt = db.run("SELECT v FROM ev PER PARTITION LIMIT 2", page_size=1, paging_state=state)
        pages += nxt.rows
        state = nxt.paging_state
    assert len(pages) == 5  # two partitions of 2 rows, one static-only row


# -- collections and batches -----------------------------------------------------------------------------------------


def test_collections(db):
    db.run("CREATE TABLE c (id int PRIMARY KEY, l list<int>, s set<text>, m map<text, int>, f frozen<list<int>>)")
    db.run("INSERT INTO c (id, l, s, m, f) VALUES (1, [1, 2], {'b', 'a'}, {'x': 1}, [9])")
    db.run("UPDATE c SET l = l + [3], s = s + {'c'}, m = m + {'y': 2} WHERE id = 1")
    db.run("UPDATE c SET l = [-1, 0] + l WHERE id = 1")
    db.run("UPDATE c SET l = [-2] + l WHERE id = 1")
    db.restart()
    assert db.rows("SELECT l, s, m, f FROM c WHERE id = 1") == [
        ([-2, -1, 0, 1, 2, 3], {"a", "b", "c"}, {"x": 1, "y": 2}, [9])]
    db.run("UPDATE c SET l[1] = 10, m['x'] = 5, s = s - {'a'} WHERE id = 1")
    db.run("UPDATE c SET l = l - [0, 3] WHERE id = 1")
    db.run("DELETE l[0], m['y'] FROM c WHERE id = 1")
    assert db.rows("SELECT l, s, m FROM c WHERE id = 1") == [([10, 1, 2], {"b", "c"}, {"x": 5})]
    db.run("UPDATE c SET m = {'z': 26}, l = [7] WHERE id = 1")
    assert db.rows("SELECT l, m FROM c WHERE id = 1") == [([7], {"z": 26})]
    db.run("DELETE s FROM c WHERE id = 1")
    assert db.rows("SELECT s FROM c WHERE id = 1") == [(None,)]
    db.fails("UPDATE c SET l[5] = 1 WHERE id = 1", InvalidRequest, "List index 5 out of bound, list has size 1")
    db.fails("UPDATE c SET f = f + [1] WHERE id = 1", InvalidRequest, "frozen collection")


def test_batch_one_timestamp(users):
    db = users
    db.run("BEGIN BATCH USING TIMESTAMP 1000 INSERT INTO users (id, age) VALUES (1, 1); "
           "UPDATE users SET name = 'n' WHERE id = 2; DELETE FROM users WHERE id = 3; APPLY BATCH")
    assert db.rows("SELECT id, writetime(age), writetime(name) FROM users") == sorted(
        [(1, 1000, None), (2, None, 1000)], key=lambda r: db.rows(f"SELECT token(id) FROM users WHERE id = {r[0]}"))
    db.fails("BEGIN BATCH USING TIMESTAMP 5 INSERT INTO users (id) VALUES (4) USING TIMESTAMP 6; APPLY BATCH",
             InvalidRequest, "Timestamp must be set either on BATCH or individual statements")
    db.run("BEGIN UNLOGGED BATCH INSERT INTO users (id, age) VALUES (?, ?); "
           "INSERT INTO users (id, age) VALUES (?, ?); APPLY BATCH", [5, 50, 6, 60])
    assert db.rows("SELECT age FROM users WHERE id IN (5, 6)") == [(50,), (60,)]


def test_prepare_names_each_marker(users):
    from widecol.cql.executor import prepare

    p = prepare(users.ex, "UPDATE users USING TTL ? SET age = ? WHERE id IN ?")
    assert [(s[2], s[3].cql_name) for s in p.bind_specs] == [("[ttl]", "int"), ("age", "int"),
                                                             ("in(id)", "list<int>")]
    p = prepare(users.ex, "SELECT * FROM users WHERE id = :key LIMIT ?")
    assert [(s[0], s[1], s[2]) for s in p.bind_specs] == [("ks", "users", "key"), ("ks", "users", "[limit]")]
    assert users.rows(p.statement, {"key": 1, 1: 5}) == []
    with pytest.raises(InvalidRequest):
        prepare(users.ex, "SELECT * FROM nope WHERE id = ?")


def test_composite_partition_key_and_unsupported(db):
    db.run("CREATE TABLE t (a int, b text, v int, PRIMARY KEY ((a, b)))")
    db.run("INSERT INTO t (a, b, v) VALUES (1, 'x', 1)")
    db.run("INSERT INTO t (a, b, v) VALUES (1, 'y', null)")
    db.fails("INSERT INTO t (a, v) VALUES (1, 2)", InvalidRequest, "Some partition key parts are missing: b")
    assert db.rows("SELECT a, b, v FROM t WHERE a = 1 AND b IN ('y', 'x')") == [(1, "x", 1), (1, "y", None)]
    db.fails("SELECT v FROM t WHERE a = 1", InvalidRequest, "ALLOW FILTERING")
    assert sorted(db.rows("SELECT b FROM t WHERE a = 1 ALLOW FILTERING")) == [("x",), ("y",)]
    assert db.rows("SELECT count(*) FROM t WHERE a = 2 AND b = 'z'") == [(0,)]
    db.fails("INSERT INTO t (a, b, v) VALUES (1, 'x', now())", InvalidRequest,
             "Type error: cannot assign result of function system.now (type timeuuid) to v (type int)")
    db.fails("INSERT INTO t (a, b, v) VALUES (1, 'x', blobAsInt(0x00))", InvalidRequest, "not supported yet")


def test_now_and_uuid(db, clock):
    db.run("CREATE TABLE t (id uuid PRIMARY KEY, at timeuuid)")
    db.run("INSERT INTO t (id, at) VALUES (uuid(), now())")
    clock.advance(1)
    db.run("INSERT INTO t (id, at) VALUES (uuid(), now())")
    rows = db.rows("SELECT id, at FROM t")
    assert len(rows) == 2 and rows[0][0] != rows[1][0]
    stamps = sorted(r[1].time for r in rows)
    assert stamps[1] - stamps[0] > 9_000_000 and all(r[1].version == 1 for r in rows)


def test_write_where_errors(events):
    db = events
    db.fails("DELETE FROM ev WHERE p > 1", InvalidRequest, "Only EQ and IN relation are supported on the partition key")
    db.fails("UPDATE ev SET v = 1 WHERE p = 1 AND c = 1", InvalidRequest, "Some clustering keys are missing: d")
    db.fails("UPDATE ev SET v = 1 WHERE p = 1 AND c > 1 AND d = 1", InvalidRequest, "Slice restrictions")
    db.fails("DELETE FROM ev WHERE token(p) > 0", InvalidRequest, "token function cannot be used")
    db.run("UPDATE ev SET v = 7 WHERE p = 1 AND c IN (0, 1) AND d = 0")
    assert db.rows("SELECT v FROM ev WHERE p = 1 AND c IN (0, 1) AND d = 0") == [(7,), (7,)]
    db.run("DELETE FROM ev WHERE p IN (1, 2) AND c IN (0, 3) AND d = 1")
    assert db.rows("SELECT count(*) FROM ev") == [(12,)]


def test_multi_column_in_and_desc_in(db):
    db.run("CREATE TABLE t (p int, c int, d int, v int, PRIMARY KEY (p, c, d)) WITH CLUSTERING ORDER BY (c DESC)")
    for c in range(3):
        for d in range(2):
            db.run(f"INSERT INTO t (p, c, d, v) VALUES (0, {c}, {d}, {c * 10 + d})")
    assert db.rows("SELECT v FROM t WHERE p = 0 AND (c, d) IN ((0, 1), (2, 0))") == [(20,), (1,)]
    assert db.rows("SELECT v FROM t WHERE p = 0 AND (c, d) = (1, 1)") == [(11,)]
    assert db.rows("SELECT v FROM t WHERE p = 0 AND c IN (0, 2)") == [(20,), (21,), (0,), (1,)]
    # ORDER BY reverses the whole clustering order: c ascending, then d descending.
    assert db.rows("SELECT v FROM t WHERE p = 0 AND c IN (0, 2) ORDER BY c ASC") == [(1,), (0,), (21,), (20,)]
    assert db.rows("SELECT v FROM t WHERE p = 0 AND c IN ()") == []
    db.run("DELETE FROM t WHERE p = 0 AND (c, d) IN ((0, 0), (1, 0))")
    assert db.rows("SELECT v FROM t WHERE p = 0 AND (c, d) IN ?", [[(0, 0), (0, 1), (1, 0)]]) == [(1,)]


def test_select_json(db):
    db.run('CREATE TABLE j (id int PRIMARY KEY, "Name" text, b blob, m map<int, text>, s set<uuid>, at timestamp)')
    db.run("INSERT INTO j (id, \"Name\", b, m, at) VALUES (1, 'x', 0x0aff, {2: 'two'}, '2021-03-04 05:06:07+0000')")
    result = db.run("SELECT JSON * FROM j")
    assert result.columns[0][0] == "[json]"
    assert result.rows == [('{"id": 1, "\\"Name\\"": "x", "at": "2021-03-04 05:06:07.000Z", "b": "0x0aff", '
                            '"m": {"2": "two"}, "s": null}',)]


def test_failing_multi_partition_update_changes_nothing(db):
    db.run("CREATE TABLE c (id int PRIMARY KEY, l list<int>, n int)")
    db.run("INSERT INTO c (id, l, n) VALUES (1, [1, 2, 3], 0)")
    db.run("INSERT INTO c (id, l, n) VALUES (2, [1], 0)")
    db.fails("UPDATE c SET n = 9, l[2] = 0 WHERE id IN (1, 2)", InvalidRequest, "List index 2 out of bound")
    db.fails("BEGIN BATCH UPDATE c SET n = 5 WHERE id = 1; UPDATE c SET nope = 1 WHERE id = 2; APPLY BATCH",
             InvalidRequest, "Undefined column name nope")
    assert db.rows("SELECT id, l, n FROM c WHERE id IN (1, 2)") == [(1, [1, 2, 3], 0), (2, [1], 0)]
