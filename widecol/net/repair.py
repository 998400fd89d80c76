"""Anti-entropy repair: replicas compare Merkle trees of their token ranges and exchange what differs.

How this works. `RepairService.repair(keyspace, table)` walks every table of the keyspace (or the one table) and
every token range this node replicates (Ring.ranges_for under the keyspace's strategy). For each range with two
or more replicas:
1. Every replica must be alive (as gossip sees it); otherwise the range is skipped and counted, and the repair goes
   on (Cassandra fails the whole session; we report and continue).
2. This node hashes its own partitions of the range first: the count fixes the tree depth (merkle.depth_for:
   at most LEAF_TARGET partitions a leaf, depth at most 15), then every other replica is asked for its tree of
   that depth with the MERKLE verb, built the same way in a worker thread.
3. The leaves where any tree differs from ours, adjacent ones merged, are the sub-ranges out of sync. Each is read
   from every replica with RANGE_READ in chunks of RANGE_CHUNK partitions (a replica that has more is complete
   only up to its last partition, so each round stops at the smallest such cut, as range scans do);
   coordinator.read.resolve_many reconciles the chunk by the one merge rule and gives each stale replica the
   mutations it lacks, which are sent (MUTATION, or applied locally) and awaited before the next chunk.
A partition's digest is the one reads use (coordinator.read.digest of its canonical wire form, wire_of_raw), so
replicas that hold equal data, however it arrived, hash equal. A partition whose canonical form is empty is left out of the
trees, as a range read leaves it out.

`bytes_streamed` is the msgpack size of the repair mutations sent; `partitions_streamed` counts them (one per
partition per stale replica). Sessions run one at a time (a second one waits); `sessions()` gives their progress
for system_views.repair.

Verb: MERKLE [table_id, start, end, depth] -> MerkleTree wire (merkle.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgpack
import trio

from widecol.cluster.membership import Membership
from widecol.cluster.replication import replication_strategy
from widecol.coordinator.merkle import MerkleTree, depth_for, differing_leaves, merge_leaves
from widecol.coordinator.read import complete_prefix, resolve_many, wire_of_raw
from widecol.cql.executor import Rows
from widecol.errors import InvalidRequest, WidecolError
from widecol.net.frames import Message
from widecol.net.gossip_service import address_of
from widecol.net.messaging import _Service
from widecol.net.replica import MUTATION, RANGE_READ, Replica
from widecol.schema.collections import parse_type
from widecol.schema.model import SYSTEM_KEYSPACES, SchemaStore
from widecol.storage.engine import Engine
from widecol.storage.token import token_of_sort_key

log = logging.getLogger(__name__)

MERKLE = "MERKLE"
RANGE_CHUNK = 256  # partitions per RANGE_READ while streaming a sub-range
TREE_TIMEOUT_S = 300.0  # building a tree scans a whole range
STREAM_TIMEOUT_S = 60.0  # one chunk read or one batch of repair mutations
PARALLEL_RANGES = 2  # ranges compared at once: one builds its trees while another streams
MAX_SESSIONS = 20  # finished sessions kept for system_views.repair

REPORT_COLUMNS = [("ranges_compared", "int"), ("ranges_out_of_sync", "int"), ("partitions_streamed", "bigint"),
                  ("bytes_streamed", "bigint"), ("seconds", "double"), ("ranges_skipped", "int"),
                  ("unreachable", "text")]
VIEW_COLUMNS = [("id", "int"), ("keyspace_name", "text"), ("table_name", "text"), ("state", "text"),
                ("ranges_done", "int"), ("ranges_total", "int"), ("ranges_out_of_sync", "int"),
                ("ranges_skipped", "int"), ("partitions_compared", "bigint"), ("partitions_streamed", "bigint"),
                ("bytes_streamed", "bigint"), ("seconds", "double"), ("error", "text")]


@dataclass(frozen=True)
class RepairReport:
    ranges_compared: int  # (table, range) pairs whose replicas' trees were compared
    ranges_out_of_sync: int  # of those, the ones where some tree differed
    partitions_streamed: int  # repair mutations sent, one per partition per stale replica
    bytes_streamed: int  # their msgpack size
    seconds: float
    ranges_skipped: int = 0  # ranges not repaired: a replica down, or a request to one failed
    unreachable: tuple[str, ...] = ()  # the replicas behind the skipped ranges


@dataclass
class RepairSession:
    """One repair's progress, as system_views.repair shows it."""

    id: int
    keyspace: str
    table: str = ""  # the table being repaired now
    state: str = "waiting"  # waiting, running, done, failed
    ranges_done: int = 0
    ranges_total: int = 0
    ranges_compared: int = 0
    ranges_out_of_sync: int = 0
    ranges_skipped: int = 0
    partitions_compared: int = 0  # partitions read from replicas in the sub-ranges out of sync
    partitions_streamed: int = 0
    bytes_streamed: int = 0
    started: float = 0.0
    seconds: float = 0.0
    error: str = ""
    unreachable: set[str] = field(default_factory=set)

    def report(self) -> RepairReport:
        return RepairReport(self.ranges_compared, self.ranges_out_of_sync, self.partitions_streamed,
                            self.bytes_streamed, round(self.seconds, 3), self.ranges_skipped,
                            tuple(sorted(self.unreachable)))


class _Skip(Exception):
    """A range cannot be repaired now (a replica is down or failed); the session goes on."""

    def __init__(self, endpoints: list[str]) -> None:
        super().__init__(", ".join(endpoints))
        self.endpoints = endpoints


class RepairService:
    def __init__(self, *, local: str, engine: Engine, replica: Replica, messaging: _Service,
                 membership: Membership, store: SchemaStore) -> None:
        self.local = local
        self.engine = engine
        self.replica = replica
        self.messaging = messaging
        self.membership = membership
        self.store = store
        self._lock = trio.Lock()
        self._sessions: list[RepairSession] = []
        self._next_id = 1

    def register(self, messaging: _Service) -> None:
        messaging.on(MERKLE, self._merkle)

    # -- the replica side: trees ------------------------------------------------------------------------------------

    def digests(self, table_id: str, start: int, end: int) -> list[tuple[int, bytes]]:
        """(token, digest) of every non-empty partition of table TABLE_ID in (START, END], in token order.
        Blocking (reads memtables and SSTables): call it in a worker thread."""
        out = []
        for sk, key, raw in self.engine.table(table_id).scan_raw(start, end):
            wire = wire_of_raw(table_id, key, raw)
            if wire[2] is None and not wire[3] and not wire[4]:
                continue
            out.append((token_of_sort_key(sk), _digest_of_canonical(wire)))
        return out

    def tree(self, table_id: str, start: int, end: int, depth: int) -> MerkleTree:
        """This replica's tree of (START, END] at DEPTH. Blocking."""
        return MerkleTree.build(start, end, depth, self.digests(table_id, start, end))

    async def _merkle(self, message: Message) -> list:
        table_id, start, end, depth = message.body
        tree = await trio.to_thread.run_sync(self.tree, table_id, start, end, depth)
        return tree.to_wire()

    # -- the coordinator side ---------------------------------------------------------------------------------------

    def sessions(self) -> list[RepairSession]:
        """The running, waiting and last finished sessions, oldest first (the list is the caller's)."""
        now = time.monotonic()
        for s in self._sessions:
            if s.state == "running":
                s.seconds = now - s.started
        return list(self._sessions)

    async def repair(self, keyspace: str | None = None, table: str | None = None) -> RepairReport:
        """Repair every table of KEYSPACE (every non-system keyspace when None), or only TABLE, over the ranges
        this node replicates. Returns once every range was compared and every repair mutation acknowledged;
        ranges with a replica down are skipped and counted. InvalidRequest for an unknown keyspace or table."""
        schema = self.store.schema
        if keyspace is None:
            if table is not None:
                raise InvalidRequest("repair of a table needs its keyspace")
            names = sorted(k for k in schema.keyspaces if k not in SYSTEM_KEYSPACES)
        else:
            schema.keyspace(keyspace)  # InvalidRequest if it does not exist
            if keyspace in SYSTEM_KEYSPACES:
                raise InvalidRequest(f"keyspace {keyspace} is local to each node: nothing to repair")
            if table is not None:
                schema.table(keyspace, table)
            names = [keyspace]
        session = RepairSession(self._next_id, keyspace or "*", table or "")
        self._next_id += 1
        self._sessions.append(session)
        del self._sessions[:-MAX_SESSIONS]
        try:
            async with self._lock:
                session.state = "running"
                session.started = time.monotonic()
                await self._run(session, names, table)
                session.state = "done"
        except BaseException as exc:
            session.state = "failed"
            session.error = str(exc) or type(exc).__name__
            raise
        finally:
            session.seconds = time.monotonic() - session.started if session.started else 0.0
        log.info("repair %d of %s: %s", session.id, session.keyspace, session.report())
        return session.report()

    async def _run(self, session: RepairSession, keyspaces: list[str], only_table: str | None) -> None:
        ring = self.membership.ring
        if ring is None or ring.is_empty:
            raise InvalidRequest("repair needs a ring: this node has no tokens yet")
        work = []
        for name in keyspaces:
            ks = self.store.schema.keyspaces.get(name)
            if ks is None:
                continue
            strategy = replication_strategy(dict(ks.replication))
            ranges = [(r, ring.replicas(strategy, r[1])) for r in ring.ranges_for(strategy, self.local)]
            ranges = [(r, replicas) for r, replicas in ranges if len(replicas) > 1]
            for t in sorted(ks.tables.values(), key=lambda t: t.name):
                if only_table is None or t.name == only_table:
                    work.append((f"{name}.{t.name}", t.storage_id, ranges))
        session.ranges_total = sum(len(ranges) for _, _, ranges in work)
        limiter = trio.CapacityLimiter(PARALLEL_RANGES)
        for table_name, table_id, ranges in work:
            session.table = table_name
            if self.store.schema.table_by_storage_id(table_id) is None:
                session.ranges_done += len(ranges)  # dropped while we waited
                continue
            async with trio.open_nursery() as nursery:
                for rng, replicas in ranges:
                    nursery.start_soon(self._one_range, session, limiter, table_id, rng, replicas)

    async def _one_range(self, session: RepairSession, limiter: trio.CapacityLimiter, table_id: str,
                         rng: tuple[int, int], replicas: list[str]) -> None:
        async with limiter:
            try:
                await self._repair_range(session, table_id, rng, replicas)
            except _Skip as skip:
                session.ranges_skipped += 1
                session.unreachable.update(skip.endpoints)
                log.info("repair %d: range (%d, %d] of %s skipped: %s unreachable", session.id, rng[0], rng[1],
                         table_id, skip)
            finally:
                session.ranges_done += 1

    async def _repair_range(self, session: RepairSession, table_id: str, rng: tuple[int, int],
                            replicas: list[str]) -> None:
        start, end = rng
        down = [e for e in replicas if not self.membership.is_alive(e)]
        if down:
            raise _Skip(down)
        mine = await trio.to_thread.run_sync(self.digests, table_id, start, end)
        depth = depth_for(len(mine))
        local_tree = MerkleTree.build(start, end, depth, mine)
        del mine
        trees: dict[str, MerkleTree] = {}
        failed: list[str] = []

        async def fetch(endpoint: str) -> None:
            try:
                wire = await self.messaging.request(address_of(endpoint), MERKLE, [table_id, start, end, depth],
                                                    timeout=TREE_TIMEOUT_S)
                trees[endpoint] = MerkleTree.from_wire(wire)
            except (WidecolError, OSError, ValueError) as exc:
                log.info("repair: no tree from %s: %s", endpoint, exc)
                failed.append(endpoint)

        async with trio.open_nursery() as nursery:
            for endpoint in replicas:
                if endpoint != self.local:
                    nursery.start_soon(fetch, endpoint)
        if failed:
            raise _Skip(failed)
        session.ranges_compared += 1
        leaves: set[int] = set()
        for tree in trees.values():
            leaves.update(differing_leaves(local_tree, tree))
        if not leaves:
            return
        session.ranges_out_of_sync += 1
        endpoints = [self.local, *trees]
        for sub in merge_leaves(local_tree, sorted(leaves)):
            await self._stream(session, table_id, sub, endpoints)

    async def _stream(self, session: RepairSession, table_id: str, sub: tuple[int, int],
                      endpoints: list[str]) -> None:
        """Make ENDPOINTS agree on the partitions of SUB, a chunk at a time."""
        after: bytes | None = None
        while True:
            body = [table_id, sub[0], sub[1], after, RANGE_CHUNK]
            answers = await self._gather(RANGE_READ, dict.fromkeys(endpoints, body))
            per_endpoint, cut = complete_prefix({e: (wires, more) for e, (wires, more) in answers.items()})
            session.partitions_compared += len({w[1] for wires in per_endpoint.values() for w in wires})
            _merged, repairs = resolve_many(per_endpoint)
            if repairs:
                for wires in repairs.values():
                    session.partitions_streamed += len(wires)
                    session.bytes_streamed += len(msgpack.packb(wires, use_bin_type=True))
                await self._gather(MUTATION, repairs)
            if cut is None:
                return
            after = cut[8:]  # a sort key is the 8-byte token prefix, then the key

    async def _gather(self, verb: str, bodies: dict[str, list]) -> dict[str, Any]:
        """VERB to every endpoint of BODIES with its body (this node's share locally): every answer by endpoint,
        or _Skip if any fails."""
        answers: dict[str, Any] = {}
        failed: list[str] = []

        async def ask(endpoint: str, body: list) -> None:
            try:
                if endpoint == self.local:
                    with trio.fail_after(STREAM_TIMEOUT_S):
                        if verb == MUTATION:
                            answers[endpoint] = await self.replica.apply_async(body)
                        else:
                            answers[endpoint] = await trio.to_thread.run_sync(self.replica.range_read, *body)
                else:
                    answers[endpoint] = await self.messaging.request(address_of(endpoint), verb, body,
                                                                     timeout=STREAM_TIMEOUT_S)
            except (WidecolError, OSError, trio.TooSlowError) as exc:
                log.info("repair: %s to %s failed: %s", verb, endpoint, exc)
                failed.append(endpoint)

        async with trio.open_nursery() as nursery:
            for endpoint, body in bodies.items():
                nursery.start_soon(ask, endpoint, body)
        if failed:
            raise _Skip(failed)
        return answers

    # -- the native protocol's REPAIR statement ---------------------------------------------------------------------

    def native_hook(self, trio_token: trio.lowlevel.TrioToken) -> Callable[[str | None, str | None], Rows]:
        """What NativeServer.repair runs in a request's worker thread: the repair on the trio thread, then its
        report as one row."""
        def run(keyspace: str | None, table: str | None) -> Rows:
            report = trio.from_thread.run(self.repair, keyspace, table, trio_token=trio_token)
            return report_rows(report)
        return run

    def view_rows(self) -> list[dict]:
        """system_views.repair: one row per session."""
        return [{
            "id": s.id, "keyspace_name": s.keyspace, "table_name": s.table, "state": s.state,
            "ranges_done": s.ranges_done, "ranges_total": s.ranges_total, "ranges_out_of_sync": s.ranges_out_of_sync,
            "ranges_skipped": s.ranges_skipped, "partitions_compared": s.partitions_compared,
            "partitions_streamed": s.partitions_streamed, "bytes_streamed": s.bytes_streamed,
            "seconds": float(s.seconds), "error": s.error,
        } for s in self.sessions()]


def _digest_of_canonical(wire: list) -> bytes:
    """coordinator.read.digest(WIRE) for a WIRE already canonical (wire_of_raw's), without canonicalising it a
    second time: a fifth of a tree's cost. tests/distributed/test_repair.py checks the two agree."""
    return hashlib.md5(msgpack.packb(wire, use_bin_type=True), usedforsecurity=False).digest()


def report_rows(report: RepairReport) -> Rows:
    values = (report.ranges_compared, report.ranges_out_of_sync, report.partitions_streamed, report.bytes_streamed,
              float(report.seconds), report.ranges_skipped, ",".join(report.unreachable))
    return Rows([(name, parse_type(t)) for name, t in REPORT_COLUMNS], [values])


_IDENT = r'(?:[A-Za-z_][A-Za-z0-9_]*|"(?:[^"]|"")+")'
_STATEMENT = re.compile(rf"\s*repair(?:\s+({_IDENT})(?:\s*\.\s*({_IDENT}))?)?\s*;?\s*", re.IGNORECASE)


def _name(ident: str | None) -> str | None:
    if ident is None:
        return None
    if ident.startswith('"'):
        return ident[1:-1].replace('""', '"')
    return ident.lower()


def repair_statement(query: str) -> tuple[str | None, str | None] | None:
    """(keyspace, table) when QUERY is our `REPAIR [keyspace[.table]]` extension (not CQL), else None."""
    m = _STATEMENT.fullmatch(query)
    if m is None:
        return None
    return _name(m.group(1)), _name(m.group(2))
