"""The executor against a Python model: random writes, then paged and sliced reads agree with the model."""

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import FakeClock
from widecol.cql.executor import Executor
from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.token import token

P = st.integers(0, 3)
C = st.integers(0, 6)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("insert"), P, C, st.integers(-5, 5)),
        st.tuples(st.just("update"), P, C, st.integers(-5, 5)),
        st.tuples(st.just("delete_row"), P, C),
        st.tuples(st.just("delete_range"), P, C, C),
        st.tuples(st.just("delete_partition"), P),
        st.tuples(st.just("flush")),
    ),
    max_size=25,
)


def _apply(ex, engine, model, op):
    kind = op[0]
    if kind == "insert":
        ex.execute(f"INSERT INTO t (p, c, v) VALUES ({op[1]}, {op[2]}, {op[3]})")
        model[(op[1], op[2])] = op[3]
    elif kind == "update":
        ex.execute(f"UPDATE t SET v = {op[3]} WHERE p = {op[1]} AND c = {op[2]}")
        model[(op[1], op[2])] = op[3]
    elif kind == "delete_row":
        ex.execute(f"DELETE FROM t WHERE p = {op[1]} AND c = {op[2]}")
        model.pop((op[1], op[2]), None)
    elif kind == "delete_range":
        lo, hi = sorted(op[2:])
        ex.execute(f"DELETE FROM t WHERE p = {op[1]} AND c >= {lo} AND c < {hi}")
        for key in [k for k in model if k[0] == op[1] and lo <= k[1] < hi]:
            del model[key]
    elif kind == "delete_partition":
        ex.execute(f"DELETE FROM t WHERE p = {op[1]}")
        for key in [k for k in model if k[0] == op[1]]:
            del model[key]
    else:
        engine.flush()


def _paged(ex, query, size):
    rows, state = [], None
    while True:
        result = ex.execute(query, page_size=size, paging_state=state)
        rows += result.rows
        state = result.paging_state
        if state is None:
            return rows


@settings(max_examples=30, deadline=None)
@given(OPS, st.booleans(), st.integers(1, 5), P, C)
def test_random_writes_match_model(ops, desc, page, p, c):
    order = " WITH CLUSTERING ORDER BY (c DESC)" if desc else ""
    with tempfile.TemporaryDirectory() as tmp:
        engine = Engine.open(Path(tmp) / "db", EngineOptions(background_compaction=False), clock=FakeClock())
        try:
            ex = Executor(engine)
            ex.execute("CREATE KEYSPACE ks WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}")
            ex.execute(f"CREATE TABLE ks.t (p int, c int, v int, PRIMARY KEY (p, c)){order}")
            ex.execute("USE ks")
            model: dict = {}
            for op in ops:
                _apply(ex, engine, model, op)
            sign = -1 if desc else 1
            expected = sorted(((k[0], k[1], v) for k, v in model.items()),
                              key=lambda r: (token(r[0].to_bytes(4, "big", signed=True)), sign * r[1]))
            assert _paged(ex, "SELECT p, c, v FROM t", page) == expected
            assert _paged(ex, "SELECT p, c, v FROM t WHERE v > 0 ALLOW FILTERING", page) == [
                r for r in expected if r[2] > 0]
            assert _paged(ex, "SELECT p, c, v FROM t LIMIT 3", page) == expected[:3]
            seen: dict = {}
            first_two = [r for r in expected if seen.setdefault(r[0], []).append(r) or len(seen[r[0]]) <= 2]
            assert _paged(ex, "SELECT p, c, v FROM t PER PARTITION LIMIT 2", page) == first_two
            part = [r for r in expected if r[0] == p and r[1] > c]
            assert _paged(ex, f"SELECT p, c, v FROM t WHERE p = {p} AND c > {c}", page) == part
            assert ex.execute(f"SELECT p, c, v FROM t WHERE p = {p} AND c > {c} ORDER BY c "
                              f"{'ASC' if desc else 'DESC'}").rows == part[::-1]
        finally:
            engine.close()
