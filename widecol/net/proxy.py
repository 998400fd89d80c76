"""The coordinator's trio edge: sends each request to its partition's replicas and waits for the level.

How this works. The decisions are sans-IO (widecol/coordinator/): which replicas, whether enough are alive
(Unavailable), when the level is met, what a digest mismatch means and which repair mutations bring each replica
up to date. This module does the sending and the waiting:

- write: for every partition of the statement, a WriteHandler picks the live replicas (this node applies its
  share locally, without a network hop); dead ones get a hint at once (ANY counts those). The answer waits until
  every partition's level is met, or `write_timeout` -> WriteTimeout. Sends that fail or have not answered by the
  timeout leave a hint too. A hint is kept only while its replica has been down less than `[hints] max_window_s`.
- read: a ReadHandler asks one replica for data and others for digests; on a mismatch every contacted replica is
  asked for data, the answers are resolved by the one merge rule, and the repair mutations are sent to the stale
  replicas and waited for (blocking read repair) before the reconciled partition is returned.
- scan: token ranges in ring order; each range is read from the level's live replicas in chunks of partitions,
  merged partition by partition; stale replicas get repairs in the background.
- hints: when gossip marks a replica up, its hints are replayed to it in batches, at most `hint_rate` bytes a
  second, and acknowledged in the hint store as they are delivered.

`ClusterData` is the executor's DataAccess over this proxy: the executor runs in worker threads, so it calls into
trio with `trio.from_thread.run`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import msgpack
import trio

from widecol.cluster.membership import Membership
from widecol.cluster.replication import replication_strategy
from widecol.cluster.ring import split_range
from widecol.coordinator.consistency import block_for
from widecol.coordinator.hints import HintStore, should_hint
from widecol.coordinator.read import ReadHandler, complete_prefix, raw_of_wire, resolve, resolve_many
from widecol.coordinator.write import WriteHandler
from widecol.errors import InvalidRequest, Unavailable, WidecolError
from widecol.net import threads
from widecol.net.gossip_service import address_of
from widecol.net.messaging import RequestTimeout, _Service
from widecol.net.replica import (
    MUTATION,
    RANGE_READ,
    READ,
    STREAM_READ,
    STREAM_WRITE,
    TRUNCATE,
    Replica,
    check_chunk,
    chunk_crc,
)
from widecol.schema.model import SchemaStore
from widecol.storage.merge import live_row
from widecol.storage.mutation import Mutation
from widecol.storage.table import live_rows_limited
from widecol.storage.token import token

log = logging.getLogger(__name__)

SCAN_CHUNK = 256  # partitions per range-read request
STREAM_CHUNK = 2048  # partitions per streamed chunk
STREAM_RETRIES = 5  # a streamed chunk is asked for again this many times before the stream fails
STREAM_SSTABLE_BYTES = 4 << 20  # streamed partitions are gathered up to this size into one new SSTable
STREAM_WRITE_TIMEOUT_S = 30.0  # the receiver writes and fsyncs a whole SSTable before it answers a STREAM_WRITE


class StorageProxy:
    def __init__(self, *, local: str, membership: Membership, messaging: _Service | None, replica: Replica,
                 store: SchemaStore, hints: HintStore | None, write_timeout: float, read_timeout: float,
                 local_dc: str, hint_window_s: float, hint_rate: int = 1 << 20, stream_rate: float = 0.0) -> None:
        self.local = local
        self.membership = membership
        self.messaging = messaging
        self.replica = replica
        self.store = store
        self.hints = hints
        self.write_timeout = write_timeout
        self.read_timeout = read_timeout
        self.local_dc = local_dc
        self.hint_window_s = hint_window_s
        self.hint_rate = hint_rate
        self.stream_rate = stream_rate  # bytes a second that streaming may use; 0: no cap
        self.down_since: dict[str, float] = {}  # endpoint -> wall-clock time gossip marked it down
        self._nursery: trio.Nursery | None = None
        self._replaying: set[str] = set()
        self._strategies: dict[tuple, Any] = {}
        self.counters = dict.fromkeys(["writes", "reads", "digest_mismatches", "read_repairs", "hints_stored",
                                       "hints_replayed"], 0)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the background sends (writes that outlive their answer, repairs, hint replay) until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            while True:  # replicas that came back while a replay failed are retried now and then
                await trio.sleep(10)
                self.replay_hints_to_live()

    # -- placement ---------------------------------------------------------------------------------------------

    def _placement(self, table_id: str) -> tuple[Any, Any]:
        """(ring, strategy) for the table's keyspace."""
        table = self.store.schema.table_by_storage_id(table_id)
        if table is None:
            raise InvalidRequest(f"unknown table {table_id}")
        ks = self.store.schema.keyspaces[table.keyspace]
        options = tuple(sorted(ks.replication.items()))
        strategy = self._strategies.get(options)
        if strategy is None:
            strategy = self._strategies[options] = replication_strategy(dict(ks.replication))
        ring = self.membership.ring
        if ring is None or ring.is_empty:
            raise Unavailable("ONE", 1, 0)
        return ring, strategy

    def local_only(self, table_id: str, key: bytes, consistency: str, write: bool) -> bool:
        """True when this node alone serves the request: a read at a level that one replica meets, of which this
        node is one; or a write whose only replica is this node (nothing pending). Such requests skip the trio
        round trip: the executor's worker thread calls the engine itself. Called from worker threads; it only
        reads the current ring snapshot."""
        try:
            ring, strategy = self._placement(table_id)
        except WidecolError:
            return False
        replicas = ring.replicas(strategy, token(key))
        if self.local not in replicas:
            return False
        rf_by_dc = strategy.replication_factor_by_dc(ring)
        try:
            one = consistency in ("ONE", "LOCAL_ONE") or block_for(consistency, rf_by_dc, self.local_dc) == 1
        except WidecolError:
            return False  # a level the handlers refuse: let them say so
        if write:  # every replica is this node, and the level asks for no more than one
            return one and len(replicas) == 1 and not self.membership.pending(strategy, token(key))
        return one

    def _ordered(self, endpoints: list[str]) -> list[str]:
        """Local first, then the local data centre, then the rest, each in ring order."""
        def rank(e: str) -> int:
            return 0 if e == self.local else 1 if self.membership.dc_of(e) == self.local_dc else 2
        return sorted(endpoints, key=rank)

    # -- writes ------------------------------------------------------------------------------------------------

    async def write(self, mutations: list[Mutation], consistency: str) -> None:
        """Apply MUTATIONS at CONSISTENCY. Raises Unavailable before sending anything, WriteTimeout when the
        level is not met in time (some replicas may still have applied it, as in Cassandra)."""
        self.counters["writes"] += 1
        live = self.membership.live()
        plans = []
        for m in mutations:
            ring, strategy = self._placement(m.table_id)
            natural = ring.replicas(strategy, token(m.key))
            pending = self.membership.pending(strategy, token(m.key))
            handler = WriteHandler(consistency, natural=natural, pending=pending, live=live,
                                   dc_of=self.membership.dc_of, local_dc=self.local_dc,
                                   rf_by_dc=strategy.replication_factor_by_dc(ring))
            plans.append((m, handler))
        settled = trio.Event()

        def check() -> None:
            if all(h.done or h.failed for _, h in plans):
                settled.set()

        deadline = trio.current_time() + self.write_timeout
        for m, handler in plans:
            wire = m.to_wire()
            for endpoint in handler.dead:
                if await self._hint(endpoint, wire):
                    handler.on_hint(endpoint)
            for endpoint in handler.targets:
                self._spawn(self._send_mutation, wire, handler, endpoint, deadline, check)
        check()
        with trio.move_on_at(deadline):
            await settled.wait()
        for _, handler in plans:
            if not handler.done:
                raise handler.failure_error() if handler.failed else handler.timeout_error()

    async def _send_mutation(self, wire: list, handler: WriteHandler, endpoint: str, deadline: float,
                             check: Any) -> None:
        try:
            with trio.fail_at(deadline):
                if endpoint == self.local:
                    await self.replica.apply_async([wire])
                else:
                    assert self.messaging is not None
                    await self.messaging.request(address_of(endpoint), MUTATION, [wire],
                                                 timeout=max(0.0, deadline - trio.current_time()))
            handler.on_ack(endpoint)
        except (RequestTimeout, trio.TooSlowError) as exc:  # no answer: a timeout, not a failure
            log.debug("write to %s timed out: %s", endpoint, exc)
            await self._hint(endpoint, wire, force=True)
        except (WidecolError, OSError) as exc:
            log.debug("write to %s failed: %s", endpoint, exc)
            handler.on_failure(endpoint)
            await self._hint(endpoint, wire, force=True)
        finally:
            check()

    async def _hint(self, endpoint: str, wire: list, force: bool = False) -> bool:
        """Keep WIRE for ENDPOINT if hints are on and it has not been down too long. True if stored."""
        if self.hints is None or endpoint == self.local:
            return False
        peer = self.membership.peers.get(endpoint)
        if peer is None or peer.host_id is None:
            return False
        if not force and not should_hint(self.down_since.get(endpoint), time.time(), self.hint_window_s):
            return False
        await trio.to_thread.run_sync(self.hints.add, peer.host_id, wire, time.time())
        self.counters["hints_stored"] += 1
        return True

    # -- reads -------------------------------------------------------------------------------------------------

    async def read(self, table_id: str, key: bytes, start: bytes | None, end: bytes | None, reverse: bool,
                   limit: int | None, consistency: str) -> tuple[tuple, bytes | None]:
        """Partition KEY's raw content in [START, END) at CONSISTENCY, reconciled across replicas, and its
        boundary (as Table.read_raw). Unavailable or ReadTimeout when the level cannot be met."""
        self.counters["reads"] += 1
        ring, strategy = self._placement(table_id)
        replicas = self._ordered(ring.replicas(strategy, token(key)))
        handler = ReadHandler(consistency, replicas=replicas, live=self.membership.live(),
                              dc_of=self.membership.dc_of, local_dc=self.local_dc,
                              rf_by_dc=strategy.replication_factor_by_dc(ring))
        body = [table_id, key, start, end, reverse, limit]
        answers: dict[str, list] = {}
        changed = trio.Event()
        deadline = trio.current_time() + self.read_timeout

        async def ask(endpoint: str, digest_only: bool) -> None:
            try:
                answer = await self._request(endpoint, READ, [*body, digest_only], deadline)
            except (RequestTimeout, trio.TooSlowError):
                pass  # no answer: the read times out unless the level is met without it
            except (WidecolError, OSError):
                handler.on_failure(endpoint)
            else:
                if digest_only:
                    handler.on_digest(endpoint, answer[0])
                else:
                    answers[endpoint] = answer
                    handler.on_data(endpoint, answer[0])
            changed.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(ask, handler.data_endpoint, False)
            for endpoint in handler.digest_endpoints:
                nursery.start_soon(ask, endpoint, True)
            with trio.move_on_at(deadline):
                while handler.state == "waiting":
                    await changed.wait()
                    changed = trio.Event()
            nursery.cancel_scope.cancel()
        if handler.state == "match":
            wire, boundary = answers[handler.data_endpoint]
            return raw_of_wire(wire), boundary
        if handler.state == "failed":
            raise handler.failure_error()
        if handler.state != "mismatch":
            raise handler.timeout_error()
        # Digests differ: full data from every contacted replica, reconcile, repair, answer.
        self.counters["digest_mismatches"] += 1
        targets = handler.full_read_endpoints()
        full: dict[str, list] = {}
        async with trio.open_nursery() as nursery:
            async def fetch(endpoint: str) -> None:
                try:
                    full[endpoint] = await self._request(endpoint, READ, [*body, False], deadline)
                except (WidecolError, trio.TooSlowError, OSError):
                    pass
            for endpoint in targets:
                nursery.start_soon(fetch, endpoint)
        if len(full) < len(targets):
            raise handler.timeout_error()
        boundaries = [b for _, b in full.values() if b is not None]
        boundary = (max(boundaries) if reverse else min(boundaries)) if boundaries else None
        trimmed = {e: _trim(w, boundary, reverse) for e, (w, _) in full.items()}
        merged, repairs = resolve(trimmed)
        if repairs:
            self.counters["read_repairs"] += 1
            await self._repair(repairs, deadline, handler)
        return raw_of_wire(merged), boundary

    async def _repair(self, repairs: dict[str, list], deadline: float, handler: Any) -> None:
        """Send each stale replica its repair and wait for all (blocking read repair)."""
        failed = []
        async with trio.open_nursery() as nursery:
            async def send(endpoint: str, wire: list) -> None:
                try:
                    await self._request(endpoint, MUTATION, [wire], deadline)
                except (WidecolError, trio.TooSlowError, OSError):
                    failed.append(endpoint)
            for endpoint, wire in repairs.items():
                nursery.start_soon(send, endpoint, wire)
        if failed:
            raise handler.timeout_error()

    async def _request(self, endpoint: str, verb: str, body: list, deadline: float) -> Any:
        if endpoint == self.local:
            with trio.fail_at(deadline):
                if verb == READ:
                    return await threads.run_sync(self.replica.read, *body)
                if verb == RANGE_READ:
                    return await threads.run_sync(self.replica.range_read, *body)
                if verb == MUTATION:
                    return await self.replica.apply_async(body)
                if verb == TRUNCATE:
                    return await trio.to_thread.run_sync(self.replica.engine.truncate, body[0])
            raise AssertionError(verb)
        assert self.messaging is not None
        timeout = deadline - trio.current_time()
        if timeout <= 0:
            raise trio.TooSlowError
        return await self.messaging.request(address_of(endpoint), verb, body, timeout=timeout)

    # -- range scans -------------------------------------------------------------------------------------------

    async def scan_chunk(self, table_id: str, start: int | None, end: int | None, after: bytes | None,
                         consistency: str) -> tuple[list[tuple[bytes, tuple]], tuple | None]:
        """The next partitions of the token range (START, END] (None: unbounded) after partition AFTER,
        reconciled at CONSISTENCY, from the first ring range that (START, END] covers: (partitions as (key, raw)
        in token order, the (start, after) to continue from, or None when the scan is done)."""
        ring, strategy = self._placement(table_id)
        if after is not None and (start is None or token(after) - 1 > start):
            start = token(after) - 1  # resume in the range that holds AFTER
        ranges = split_range(start, end, ring)
        if not ranges:
            return [], None
        lo, hi = ranges[0][0], ranges[0][1]
        replicas = self._ordered(ring.replicas(strategy, hi))
        handler = ReadHandler(consistency, replicas=replicas, live=self.membership.live(),
                              dc_of=self.membership.dc_of, local_dc=self.local_dc,
                              rf_by_dc=strategy.replication_factor_by_dc(ring))
        contacted = [handler.data_endpoint, *handler.digest_endpoints]
        deadline = trio.current_time() + self.read_timeout
        answers: dict[str, list] = {}
        body = [table_id, lo, hi, after, SCAN_CHUNK]

        async def fetch(endpoint: str) -> None:
            try:
                answers[endpoint] = await self._request(endpoint, RANGE_READ, body, deadline)
            except (WidecolError, trio.TooSlowError, OSError):
                pass

        async with trio.open_nursery() as nursery:
            for endpoint in contacted:
                nursery.start_soon(fetch, endpoint)
        if len(answers) < len(contacted):
            raise handler.timeout_error()
        per_endpoint, cut = complete_prefix({e: (wires, more) for e, (wires, more) in answers.items()})
        merged, repairs = resolve_many(per_endpoint)
        for endpoint, wires in repairs.items():
            self._spawn(self._request, endpoint, MUTATION, wires, trio.current_time() + self.write_timeout)
        partitions = [(w[1], raw_of_wire(w)) for w in merged]
        if cut is not None:
            return partitions, (start, partitions[-1][0])
        if len(ranges) == 1:
            return partitions, None
        return partitions, (hi, None)

    # -- streaming (bootstrap) ---------------------------------------------------------------------------------

    async def stream_range(self, table_id: str, start: int, end: int, source: str) -> tuple[int, int]:
        """Copy every partition of (START, END] of TABLE_ID from SOURCE into this node, tombstones included, in
        checksummed chunks, written here as new SSTables of up to STREAM_SSTABLE_BYTES (no commit log, no
        memtable); the merge rule makes copies from several sources add up. A chunk that fails (a timeout, a
        checksum mismatch) is asked for again from where the stream stands, up to STREAM_RETRIES times.
        Returns (partitions, bytes)."""
        after = None
        partitions = size = 0
        gathered: list = []
        gathered_size = 0
        while True:
            body = [table_id, start, end, after, STREAM_CHUNK]
            wires, more, crc = await self._retrying(
                lambda body=body: self._request(source, STREAM_READ, body, trio.current_time() + self.read_timeout))
            check_chunk(wires, crc)
            if wires:
                gathered.extend(wires)
                partitions += len(wires)
                chunk = _size(wires)
                size += chunk
                gathered_size += chunk
                after = wires[-1][1]
                await self._throttle(chunk)
            if gathered and (gathered_size >= STREAM_SSTABLE_BYTES or not more):
                await self.replica.ingest_async(gathered)
                gathered, gathered_size = [], 0
            if not more:
                return partitions, size

    async def push_range(self, table_id: str, start: int, end: int, target: str) -> tuple[int, int]:
        """Send every partition of (START, END] of TABLE_ID held here to TARGET (decommission), in checksummed
        chunks of up to STREAM_SSTABLE_BYTES that TARGET writes as new SSTables, each retried up to
        STREAM_RETRIES times. Returns (partitions, bytes)."""
        after = None
        partitions = size = 0
        timeout = max(self.write_timeout, STREAM_WRITE_TIMEOUT_S)
        more = True
        while more:
            wires: list = []
            chunk = 0
            while more and chunk < STREAM_SSTABLE_BYTES:  # one STREAM_WRITE, one SSTable on the target
                part, more = await trio.to_thread.run_sync(self.replica.range_read, table_id, start, end, after,
                                                           STREAM_CHUNK)
                if part:
                    wires.extend(part)
                    chunk += _size(part)
                    after = part[-1][1]
            if wires:
                body = [wires, chunk_crc(wires)]
                await self._retrying(lambda body=body: self._request(target, STREAM_WRITE, body,
                                                                     trio.current_time() + timeout))
                partitions += len(wires)
                size += chunk
                await self._throttle(chunk)
        return partitions, size

    async def _retrying(self, attempt: Any) -> Any:
        """ATTEMPT(), again after a pause when it fails, at most STREAM_RETRIES + 1 times in all."""
        for n in range(STREAM_RETRIES + 1):
            try:
                return await attempt()
            except (WidecolError, trio.TooSlowError, OSError) as exc:
                if n == STREAM_RETRIES:
                    raise
                log.info("streaming: a chunk failed (%s); retrying", exc)
                await trio.sleep(0.5 * (n + 1))
        raise AssertionError("unreachable")

    async def _throttle(self, size: int) -> None:
        if self.stream_rate > 0:
            await trio.sleep(size / self.stream_rate)

    # -- truncate ----------------------------------------------------------------------------------------------

    async def truncate(self, table_id: str) -> None:
        """Truncate on every node; all must be up (Cassandra refuses otherwise)."""
        endpoints = sorted(self.membership.peers)
        down = [e for e in endpoints if not self.membership.is_alive(e)]
        if down:
            raise Unavailable("ALL", len(endpoints), len(endpoints) - len(down))
        deadline = trio.current_time() + self.write_timeout
        async with trio.open_nursery() as nursery:
            for endpoint in endpoints:
                nursery.start_soon(self._request, endpoint, TRUNCATE, [table_id], deadline)

    # -- hints -------------------------------------------------------------------------------------------------

    def on_down(self, endpoint: str) -> None:
        self.down_since.setdefault(endpoint, time.time())

    def on_up(self, endpoint: str) -> None:
        self.down_since.pop(endpoint, None)
        self._replay(endpoint)

    def replay_hints_to_live(self) -> None:
        for endpoint in self.membership.live():
            self._replay(endpoint)

    def _replay(self, endpoint: str) -> None:
        peer = self.membership.peers.get(endpoint)
        if self.hints is None or peer is None or peer.host_id is None or endpoint == self.local:
            return
        if endpoint in self._replaying or not self.hints.pending(peer.host_id):
            return
        self._replaying.add(endpoint)
        self._spawn(self._replay_to, endpoint, peer.host_id)

    async def _replay_to(self, endpoint: str, host_id: str) -> None:
        assert self.hints is not None
        try:
            batches = self.hints.replay(host_id, max_batch_bytes=64 * 1024, now=time.time(),
                                        max_age=self._gc_grace)
            while True:
                batch = await trio.to_thread.run_sync(next, batches, None)
                if batch is None:
                    break
                if not self.membership.is_alive(endpoint):
                    return
                wires = [h.mutation_wire for h in batch]
                size = _size(wires)
                await self._request(endpoint, MUTATION, wires, trio.current_time() + self.write_timeout)
                await trio.to_thread.run_sync(self.hints.acknowledge, host_id, [h.id for h in batch])
                self.counters["hints_replayed"] += len(batch)
                await trio.sleep(size / self.hint_rate)
            log.info("hints: replayed to %s", endpoint)
        except (WidecolError, trio.TooSlowError, OSError) as exc:
            log.info("hints: replay to %s stopped: %s", endpoint, exc)
        finally:
            self._replaying.discard(endpoint)

    def _gc_grace(self, table_id: str) -> float:
        table = self.store.schema.table_by_storage_id(table_id)
        return float(table.gc_grace_seconds) if table is not None else 0.0

    def _spawn(self, fn: Any, *args: Any) -> None:
        assert self._nursery is not None, "StorageProxy.run is not running"

        async def guarded() -> None:
            try:
                await fn(*args)
            except (WidecolError, trio.TooSlowError, OSError) as exc:
                log.debug("background %s failed: %s", getattr(fn, "__name__", fn), exc)

        self._nursery.start_soon(guarded)


def _size(wires: list) -> int:
    """Bytes of WIRES as messaging sends them (msgpack)."""
    return len(msgpack.packb(wires, use_bin_type=True))


def _trim(wire: list, boundary: bytes | None, reverse: bool) -> list:
    if boundary is None:
        return wire
    table_id, key, deletion, ranges, rows = wire
    keep = [r for r in rows if (r[0] >= boundary if reverse else r[0] <= boundary)]
    return [table_id, key, deletion, ranges, keep]


class ClusterTable:
    """A table as the executor reads it (Table.read / Table.scan), served by the proxy at one consistency."""

    def __init__(self, data: ClusterData, table_id: str, consistency: str) -> None:
        self.data, self.table_id, self.consistency = data, table_id, consistency

    def read(self, key: bytes, start: bytes | None = None, end: bytes | None = None, reverse: bool = False,
             limit: int | None = None, now: int | None = None) -> list[tuple[bytes, dict]]:
        proxy = self.data.proxy
        if proxy.local_only(self.table_id, key, self.consistency, write=False):
            return proxy.replica.engine.table(self.table_id).read(key, start, end, reverse, limit, now)
        now = self.data.now() if now is None else now

        def read_raw(s: bytes | None, e: bytes | None, n: int | None) -> tuple[tuple, bytes | None]:
            return self.data.call(proxy.read, self.table_id, key, s, e, reverse, n, self.consistency)

        if limit is None:
            raw, _ = read_raw(start, end, None)
            return [(ck, cells) for ck in sorted(raw[2], reverse=reverse) if (cells := live_row(raw, ck, now))]
        return live_rows_limited(read_raw, start, end, reverse, limit, now)

    def scan(self, start_token: int | None = None, end_token: int | None = None, after_key: bytes | None = None,
             now: int | None = None) -> Iterator[tuple[bytes, list[tuple[bytes, dict]]]]:
        now = self.data.now() if now is None else now
        position: tuple | None = (start_token, after_key)
        while position is not None:
            partitions, position = self.data.call(self.data.proxy.scan_chunk, self.table_id, position[0],
                                                  end_token, position[1], self.consistency)
            for key, raw in partitions:
                rows = [(ck, cells) for ck in sorted(raw[2]) if (cells := live_row(raw, ck, now))]
                if rows:
                    yield key, rows


class ClusterData:
    """The executor's DataAccess in a cluster: every call goes to the proxy on the trio thread."""

    def __init__(self, proxy: StorageProxy, token_: trio.lowlevel.TrioToken, now: Any) -> None:
        self.proxy = proxy
        self.trio_token = token_
        self.now = now

    def call(self, fn: Any, *args: Any) -> Any:
        return threads.run_async(self.trio_token, fn, *args)

    def apply(self, mutations: list[Mutation], consistency: str) -> None:
        if all(self.proxy.local_only(m.table_id, m.key, consistency, write=True) for m in mutations):
            self.proxy.counters["writes"] += 1
            self.proxy.replica.apply([m.to_wire() for m in mutations])  # this node is every replica
            return
        self.call(self.proxy.write, mutations, consistency)

    def table(self, storage_id: str, consistency: str) -> ClusterTable:
        return ClusterTable(self, storage_id, consistency)

    def truncate(self, storage_id: str) -> None:
        self.call(self.proxy.truncate, storage_id)
