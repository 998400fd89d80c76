"""The engine against a plain model, through writes, deletions of every level, TTLs, flushes, compactions and
reopenings (Hypothesis stateful testing). The model keeps every operation and answers reads from the rules alone:
the newest version of a cell wins (a tombstone on a tie), a deletion shadows cells at or below its timestamp, and a
cell with a TTL is absent from its expiry on."""

import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from tests.conftest import FakeClock
from widecol.storage.engine import Engine, EngineOptions
from widecol.storage.mutation import Mutation

KEYS = [b"k0", b"k1", b"k2"]
CKS = [b"c0", b"c1", b"c2", b"c3"]
COLS = [b"a", b"b"]
TABLE = "ks.t"
keys = st.sampled_from(KEYS)
cks = st.sampled_from(CKS)
cols = st.sampled_from(COLS)
values = st.sampled_from([b"", b"x", b"y", b"zz"])
bounds = st.one_of(st.none(), cks)
stamps = st.integers(0, 4)


class Model:
    def __init__(self):
        self.cells = {}  # (key, ck, col) -> list of (ts, value or None, expiry)
        self.deletions = []  # (key, start, end, ts): start/end None unbounded, [start, end); row: (ck, ck+"\0")

    def write(self, key, ck, col, ts, value, expiry):
        self.cells.setdefault((key, ck, col), []).append((ts, value, expiry))

    def delete(self, key, start, end, ts):
        self.deletions.append((key, start, end, ts))

    def row(self, key, ck, now):
        out = {}
        for col in [b""] + COLS:
            versions = self.cells.get((key, ck, col))
            if not versions:
                continue
            best = max(versions, key=lambda v: (v[0], v[1] is None, v[1] or b"", v[2]))
            ts, value, expiry = best
            shadowed = any(
                k == key and ts <= dts and (s is None or s <= ck) and (e is None or ck < e)
                for k, s, e, dts in self.deletions
            )
            if value is not None and not shadowed and (expiry == 0 or expiry > now):
                out[col] = value
        return out

    def partition(self, key, now):
        rows = []
        for ck in CKS:
            row = self.row(key, ck, now)
            if row:
                rows.append((ck, row))
        return rows


def engine_view(rows):
    return [(ck, {col: cell[1] for col, cell in cells.items()}) for ck, cells in rows]


class EngineMachine(RuleBasedStateMachine):
    @initialize(monotonic=st.booleans())
    def setup(self, monotonic):
        # monotonic: timestamps never go back and tombstones are purged after 100 s of gc_grace; otherwise
        # timestamps are random (ties and reorderings) and nothing is ever purged.
        self.monotonic = monotonic
        self.dir = Path(tempfile.mkdtemp(prefix="widecol-model-"))
        self.clock = FakeClock()
        self.options = EngineOptions(memtable_bytes=4000, background_compaction=False, compaction_min_threshold=2)
        self.engine = Engine.open(self.dir, self.options, clock=self.clock)
        self.engine.create_table(TABLE, gc_grace_seconds=100 if monotonic else 10**9)
        self.model = Model()
        self.ts = 0

    def teardown(self):
        self.engine.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def stamp(self, drawn):
        if self.monotonic:
            self.ts += drawn % 2
            return self.ts
        return drawn

    @property
    def now(self):
        return int(self.clock.now)

    @rule(key=keys, ck=cks, col=cols, value=values, ts=stamps, ttl=st.sampled_from([0, 0, 5, 50]))
    def put(self, key, ck, col, value, ts, ttl):
        ts = self.stamp(ts)
        self.engine.apply(Mutation(TABLE, key).set(ck, col, value, ts, self.now, ttl))
        self.model.write(key, ck, col, ts, value, self.now + ttl if ttl else 0)

    @rule(key=keys, ck=cks, ts=stamps, ttl=st.sampled_from([0, 7]))
    def insert_row(self, key, ck, ts, ttl):
        ts = self.stamp(ts)
        self.engine.apply(Mutation(TABLE, key).put(ck, {b"a": b"ins"}, ts, self.now, ttl))
        expiry = self.now + ttl if ttl else 0
        self.model.write(key, ck, b"", ts, b"", expiry)
        self.model.write(key, ck, b"a", ts, b"ins", expiry)

    @rule(key=keys, ck=cks, col=cols, ts=stamps)
    def delete_cell(self, key, ck, col, ts):
        ts = self.stamp(ts)
        self.engine.apply(Mutation(TABLE, key).delete_cell(ck, col, ts, self.now))
        self.model.write(key, ck, col, ts, None, 0)

    @rule(key=keys, ck=cks, ts=stamps)
    def delete_row(self, key, ck, ts):
        ts = self.stamp(ts)
        self.engine.apply(Mutation(TABLE, key).delete_row(ck, ts, self.now))
        self.model.delete(key, ck, ck + b"\0", ts)

    @rule(key=keys, start=bounds, end=bounds, ts=stamps)
    def delete_range(self, key, start, end, ts):
        ts = self.stamp(ts)
        self.engine.apply(Mutation(TABLE, key).delete_range(start, end, ts, self.now))
        self.model.delete(key, start, end, ts)

    @rule(key=keys, ts=stamps)
    def delete_partition(self, key, ts):
        ts = self.stamp(ts)
        self.engine.apply(Mutation(TABLE, key).delete_partition(ts, self.now))
        self.model.delete(key, None, None, ts)

    @rule()
    def flush(self):
        self.engine.flush(TABLE)

    @rule()
    def compact(self):
        self.engine.compact(TABLE)

    @rule()
    def size_tiered(self):
        self.engine.flush(TABLE)
        while self.engine._compact_one():
            pass

    @rule()
    def reopen(self):
        self.engine.close()
        self.engine = Engine.open(self.dir, self.options, clock=self.clock)

    @precondition(lambda self: self.monotonic)
    @rule(seconds=st.sampled_from([1, 6, 60, 200]))
    def advance(self, seconds):
        self.clock.advance(seconds)
        self.ts += 1

    @rule(key=keys, start=bounds, end=bounds, reverse=st.booleans(), limit=st.sampled_from([None, 1, 2, 3]))
    def read_slice(self, key, start, end, reverse, limit):
        got = engine_view(self.engine.table(TABLE).read(key, start, end, reverse, limit))
        want = [
            (ck, row) for ck, row in self.model.partition(key, self.now)
            if (start is None or ck >= start) and (end is None or ck < end)
        ]
        if reverse:
            want.reverse()
        if limit is not None:
            want = want[:limit]
        assert got == want

    @invariant()
    def every_partition_matches(self):
        if not hasattr(self, "engine"):
            return
        table = self.engine.table(TABLE)
        for key in KEYS:
            assert engine_view(table.read(key)) == self.model.partition(key, self.now), key
        scanned = {key: engine_view(rows) for key, rows in table.scan()}
        want = {key: self.model.partition(key, self.now) for key in KEYS}
        assert scanned == {k: v for k, v in want.items() if v}
        table.check()


EngineMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestEngineAgainstModel = EngineMachine.TestCase
