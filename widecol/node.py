"""Node: builds every service from a NodeConfig and runs them in one trio nursery.

How this works. Every node opens its storage engine, its schema store and a CQL executor, and serves the native
protocol. A standalone node (`widecol serve` without a cluster file) stops there: the executor reads and writes
its own engine at every consistency level.

A cluster node (`--config FILE --node NAME`) also runs internode messaging, gossip, the replica verbs and the
coordinator's proxy, and its executor goes through the proxy. Start-up order:
1. messaging listens; gossip starts with HOST_ID, DC, RACK, NATIVE_ADDRESS, RELEASE_VERSION and SCHEMA;
2. tokens: the ones kept in identity.json, or, the first time, chosen against the ring learned from the seeds
   (a seed alone spreads its tokens evenly) and kept;
3. TOKENS and STATUS normal go out; the native server starts.
Gossip events refresh the membership (peers and ring), start hint replay when a replica comes up, pull the schema
from a peer that announces a different version, and become STATUS_CHANGE / TOPOLOGY_CHANGE events for clients.
A local schema change is pushed to every live peer and awaited, so the driver's schema agreement check passes.
It runs until SIGTERM or SIGINT, then stops cleanly: connections closed, memtables flushed, commit log synced.
This is the one module allowed to be long: it is the wiring.
"""

from __future__ import annotations

import hashlib
import logging
import random
import signal
import time
import uuid
from typing import Any

import trio

from widecol.cluster import gossip
from widecol.cluster.failure_detector import FailureDetector
from widecol.cluster.gossip import Event as GossipEvent
from widecol.cluster.gossip import Gossiper
from widecol.cluster.membership import REMOVED, Membership
from widecol.cluster.replication import replication_strategy
from widecol.cluster.ring import Ring
from widecol.cluster.tokens import allocate_tokens
from widecol.config import NodeConfig
from widecol.coordinator.hints import HintStore
from widecol.cql.executor import Executor
from widecol.errors import InvalidRequest
from widecol.net.gossip_service import GossipService, address_of
from widecol.net.messaging import Messaging, RequestTimeout
from widecol.net.native.results import Event
from widecol.net.native.server import NativeServer
from widecol.net.native.system_tables import (
    RELEASE_VERSION,
    SystemTables,
    load_identity,
    read_identity,
    save_identity,
)
from widecol.net.proxy import ClusterData, StorageProxy
from widecol.net.repair import VIEW_COLUMNS, RepairService  # repair
from widecol.net.replica import SCHEMA_PULL, SCHEMA_PUSH, Replica
from widecol.schema.model import SYSTEM_KEYSPACES
from widecol.storage.engine import Engine, EngineOptions, tune_gc

log = logging.getLogger(__name__)


class StartError(Exception):
    """The node cannot start (an address in use, say): one line for the operator."""

STREAM_FROM = "STREAM_FROM"  # [table_id, start, end, sources]: copy that range from those nodes -> [n, bytes]
RING_WAIT_S = 10.0  # how long a new node listens to gossip for the ring before choosing its tokens
SCHEMA_PUSH_TIMEOUT_S = 5.0
LOAD_INTERVAL_S = 10.0


async def serve(config: NodeConfig, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
    """Open the node's storage and run until cancelled or signalled; close the storage on the way out."""
    options = EngineOptions.from_config(config.storage)
    engine = await trio.to_thread.run_sync(Engine.open, config.data_dir / "storage", options)
    log.info("node %s: storage open in %s", config.name, config.data_dir)
    node = None if config.standalone else ClusterNode(config, engine)
    try:
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                if node is None:
                    server = await _standalone(config, engine, nursery)
                else:
                    server = await node.start(nursery)
                task_status.started(engine)
                log.info("node %s: ready", config.name)
                stop = node.stopped if node is not None else trio.Event()
                nursery.start_soon(_stop_on_signal, signals, stop, config.name)
                await stop.wait()
                del server
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            if node is not None and node.hints is not None:
                await trio.to_thread.run_sync(node.hints.close)
            await trio.to_thread.run_sync(engine.close)
        log.info("node %s: stopped cleanly", config.name)


async def _stop_on_signal(signals: Any, stop: trio.Event, name: str) -> None:
    async for signum in signals:
        log.info("node %s: %s received, stopping", name, signal.Signals(signum).name)
        stop.set()
        return


async def _standalone(config: NodeConfig, engine: Engine, nursery: trio.Nursery) -> NativeServer:
    executor = Executor(engine)
    identity = load_identity(config.data_dir, config.num_tokens)
    system = SystemTables(executor, cluster_name=config.cluster_name, address=config.address, dc=config.dc,
                          rack=config.rack, host_id=identity[0], tokens=identity[1])
    inline = config.storage.commitlog_sync == "periodic"  # then nothing the executor does blocks for long
    return await _start_native(config, executor, system, nursery, inline)


async def _start_native(config: NodeConfig, executor: Executor, system: SystemTables, nursery: trio.Nursery,
                        inline: bool = False) -> NativeServer:
    server = NativeServer(executor, system, max_connections=config.native.max_connections,
                          max_frame_size=config.native.max_frame_mb * 1024 * 1024, inline=inline)
    await _listen(nursery, server.serve, f"{config.address}:{config.native_port}", "the native protocol",
                  config.address, config.native_port)
    log.info("native protocol listening on %s:%d", config.address, config.native_port)
    return server


async def _listen(nursery: trio.Nursery, serve_fn: Any, where: str, what: str, *args: Any) -> None:
    try:
        await nursery.start(serve_fn, *args)
    except* OSError as group:
        exc = group.exceptions[0]
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        detail = getattr(exc, "strerror", None) or str(exc)
        raise StartError(f"cannot listen for {what} on {where}: {detail}") from None


def _empty_ring() -> Ring:
    return Ring(tokens={}, dc={}, rack={})


def _disk_size(engine: Engine) -> int:
    return sum(table.disk_size() for table in list(engine.tables.values()))


class ClusterNode:
    """The services of a cluster node and the glue between them."""

    def __init__(self, config: NodeConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine
        self.endpoint = f"{config.address}:{config.internode_port}"
        secret = config.secret.encode() if config.secret else None
        self.messaging = Messaging((config.address, config.internode_port), config.cluster_name, secret)
        interval = config.gossip.interval_ms / 1000
        detector = FailureDetector(threshold=config.gossip.phi_convict_threshold, expected_interval=interval)
        rng = random.Random(hashlib.sha256(self.endpoint.encode()).digest() + time.time_ns().to_bytes(8, "big"))
        self.gossiper = Gossiper(self.endpoint, int(time.time()), config.seeds, rng, detector)
        self.gossip = GossipService(self.gossiper, self.messaging, interval, self._on_gossip_events)
        self.membership = Membership(self.endpoint)
        self.executor: Executor | None = None
        self.server: NativeServer | None = None
        self.proxy: StorageProxy | None = None
        self.replica: Replica | None = None
        self.hints: HintStore | None = None
        self.repair: RepairService | None = None  # repair
        self.stopped = trio.Event()  # set to stop the node (after a decommission)
        self._announced_normal: set[str] = set()
        self._pulling: set[str] = set()

    async def start(self, nursery: trio.Nursery) -> NativeServer:
        config = self.config
        executor = self.executor = await trio.to_thread.run_sync(Executor, self.engine)
        store = executor.store
        self.replica = Replica(self.engine, store, self._schema_changed,
                               inline_writes=config.storage.commitlog_sync == "periodic")
        self.replica.register(self.messaging)
        self.messaging.on(STREAM_FROM, self._stream_from_verb)
        hints = None
        if config.hints.enabled:
            hints = self.hints = await trio.to_thread.run_sync(HintStore, config.data_dir / "hints")
        self.proxy = StorageProxy(
            local=self.endpoint, membership=self.membership, messaging=self.messaging, replica=self.replica,
            store=store, hints=hints, write_timeout=config.timeouts.write_ms / 1000,
            read_timeout=config.timeouts.read_ms / 1000, local_dc=config.dc,
            hint_window_s=config.hints.max_window_s, stream_rate=config.streaming.throughput_mb_s * 1024 * 1024)
        # -- repair (widecol/net/repair.py): the MERKLE verb and the REPAIR statement --
        self.repair = RepairService(local=self.endpoint, engine=self.engine, replica=self.replica,
                                    messaging=self.messaging, membership=self.membership, store=store)
        self.repair.register(self.messaging)
        # -- end repair --
        await _listen(nursery, self.messaging.run, self.endpoint, "internode messaging")
        log.info("internode messaging on %s", self.endpoint)
        identity = read_identity(config.data_dir)
        host_id = identity[0] if identity else uuid.uuid4()
        g = self.gossiper
        for key, value in ((gossip.HOST_ID, str(host_id)), (gossip.DC, config.dc), (gossip.RACK, config.rack),
                           (gossip.NATIVE_ADDRESS, f"{config.address}:{config.native_port}"),
                           (gossip.RELEASE_VERSION, RELEASE_VERSION),
                           (gossip.SCHEMA, str(store.schema.version()))):
            g.set_local_state(key, value)
        self.membership.refresh(g)
        await nursery.start(self.gossip.run)
        await nursery.start(self.proxy.run)
        if identity is not None:
            tokens = identity[1]
            await self.gossip.set_state(gossip.TOKENS, [str(t) for t in tokens])
        else:
            tokens = await self._choose_tokens(host_id)
            await self.gossip.set_state(gossip.TOKENS, [str(t) for t in tokens])
            ring = self.membership.ring
            if ring is not None and not ring.is_empty:
                await self._bootstrap()
            save_identity(config.data_dir, host_id, tokens)  # only now: a node that dies joining starts afresh
        await self.gossip.set_state(gossip.STATUS, "normal")
        async with self.gossip.lock:
            self.membership.refresh(g)
        log.info("node %s: %d tokens, status normal", config.name, len(tokens))
        self.trio_token = trio.lowlevel.current_trio_token()  # request threads carry no trio context
        executor.data = ClusterData(self.proxy, self.trio_token, self.engine.now)
        executor.schema_listeners.append(self._push_schema_from_thread)
        system = SystemTables(executor, cluster_name=config.cluster_name, address=config.address, dc=config.dc,
                              rack=config.rack, host_id=host_id, tokens=tokens)
        system.peers = self._peer_rows
        _register_views(system, self)
        self.server = await _start_native(config, executor, system, nursery)
        self.server.repair = self.repair.native_hook(self.trio_token)  # repair
        self.server.admin["DECOMMISSION"] = self._decommission_command
        self.server.admin["REMOVENODE"] = self._removenode_command
        self.server.admin["CLEANUP"] = self._cleanup_command
        nursery.start_soon(self._publish_load)
        return self.server

    async def _bootstrap(self) -> None:
        """Join a ring that has data: once we hold the cluster's schema, announce STATUS joining (writes for our
        future ranges now reach us too), wait for every node to hear of it, then stream each table's future
        ranges from their current live replicas. Reads come to us only once we are normal. With no user table
        there is nothing to stream, and we join at once."""
        assert self.proxy is not None and self.executor is not None
        await self._wait_schema_agreement()
        if not any(ks.tables for name, ks in self.executor.store.schema.keyspaces.items()
                   if name not in SYSTEM_KEYSPACES):
            log.info("node %s: no tables to stream: joining at once", self.config.name)
            return
        await self.gossip.set_state(gossip.STATUS, "joining")
        log.info("node %s: joining: waiting %.1f s for the ring to hear of it", self.config.name, self._ring_delay())
        await trio.sleep(self._ring_delay())
        await self._wait_schema_agreement()
        async with self.gossip.lock:
            self.membership.refresh(self.gossiper)
        ring, future = self.membership.ring, self.membership.pending_ring
        if ring is None or future is None:
            return
        started = time.monotonic()
        partitions = size = 0
        schema = self.executor.store.schema
        for ks_name, ks in schema.keyspaces.items():
            if ks_name in SYSTEM_KEYSPACES or not ks.tables:
                continue
            strategy = replication_strategy(dict(ks.replication))
            for start, end in future.ranges_for(strategy, self.endpoint):
                sources = [e for e in ring.replicas(strategy, end)
                           if e != self.endpoint and self.membership.is_alive(e)]
                for table in ks.tables.values():
                    for source in sources:
                        n, b = await self.proxy.stream_range(table.storage_id, start, end, source)
                        partitions += n
                        size += b
        log.info("node %s: bootstrap streamed %d partitions (%d bytes) in %.1f s", self.config.name, partitions,
                 size, time.monotonic() - started)

    def _decommission_command(self, _rest: str, _session: dict) -> Any:
        """DECOMMISSION sent by `widecol decommission`: runs in a request's worker thread."""
        from widecol.cql.executor import Rows
        from widecol.schema.types import parse_type

        partitions, size, seconds = trio.from_thread.run(self.decommission, trio_token=self.trio_token)
        return Rows([("partitions_streamed", parse_type("bigint")), ("bytes_streamed", parse_type("bigint")),
                     ("seconds", parse_type("double"))], [(partitions, size, seconds)], None)

    async def decommission(self) -> tuple[int, int, float]:
        """Leave the ring: STATUS leaving (writes for our ranges now reach their new owners too), wait for every
        node to hear of it, stream each table's ranges to the endpoints that gain them, announce left, and stop
        shortly after. Returns (partitions, bytes, seconds) streamed."""
        assert self.proxy is not None and self.executor is not None
        if self.gossiper.state(self.endpoint, gossip.STATUS) != "normal":
            raise InvalidRequest("only a normal node can be decommissioned")
        live_others = [e for e in self.membership.live() if e != self.endpoint]
        if not live_others:
            raise InvalidRequest("no other live node to hand the data to")
        started = time.monotonic()
        await self.gossip.set_state(gossip.STATUS, "leaving")
        log.info("node %s: leaving", self.config.name)
        await trio.sleep(self._ring_delay())
        async with self.gossip.lock:
            self.membership.refresh(self.gossiper)
        ring, future = self.membership.ring, self.membership.pending_ring
        partitions = size = 0
        if ring is not None and future is not None:
            for ks_name, ks in self.executor.store.schema.keyspaces.items():
                if ks_name in SYSTEM_KEYSPACES or not ks.tables:
                    continue
                strategy = replication_strategy(dict(ks.replication))
                for start, end in ring.ranges_for(strategy, self.endpoint):
                    gaining = [e for e in future.replicas(strategy, end) if e not in ring.replicas(strategy, end)]
                    for table in ks.tables.values():
                        for target in gaining:
                            n, b = await self.proxy.push_range(table.storage_id, start, end, target)
                            partitions += n
                            size += b
        await self.gossip.set_state(gossip.STATUS, "left")
        # Forget our tokens: started again, this node joins as a new one (new tokens, streamed data).
        (self.config.data_dir / "identity.json").unlink(missing_ok=True)
        seconds = time.monotonic() - started
        log.info("node %s: decommissioned: streamed %d partitions (%d bytes) in %.1f s; stopping",
                 self.config.name, partitions, size, seconds)

        async def stop_soon() -> None:
            await trio.sleep(max(2.0, 3 * self.gossip.interval_s))  # let "left" spread and the answer go out
            self.stopped.set()

        assert self.proxy._nursery is not None
        self.proxy._nursery.start_soon(stop_soon)
        return partitions, size, seconds

    def _cleanup_command(self, rest: str, _session: dict) -> Any:
        """CLEANUP [keyspace [table]] sent by `widecol cleanup`: runs in a request's worker thread."""
        from widecol.cql.executor import Rows
        from widecol.schema.types import parse_type

        words = rest.strip().rstrip(";").split()
        if len(words) > 2:
            raise InvalidRequest("CLEANUP takes at most a keyspace and a table")
        keyspace, table = (words + [None, None])[:2]
        rows = trio.from_thread.run(self.cleanup, keyspace, table, trio_token=self.trio_token)
        return Rows([("keyspace_name", parse_type("text")), ("table_name", parse_type("text")),
                     ("sstables_rewritten", parse_type("int")), ("bytes_before", parse_type("bigint")),
                     ("bytes_after", parse_type("bigint"))], rows, None)

    async def cleanup(self, keyspace: str | None = None, table: str | None = None) -> list[tuple]:
        """Drop the partitions this node holds but no longer replicates (their ranges went to a node that joined),
        like `nodetool cleanup`. Refused while nodes join or leave, since ranges are still moving. Returns one
        (keyspace, table, SSTables rewritten, bytes before, bytes after) per table."""
        assert self.executor is not None
        async with self.gossip.lock:
            self.membership.refresh(self.gossiper)
        ring = self.membership.ring
        if self.membership.pending_ring is not None:
            raise InvalidRequest("cleanup is not possible while nodes are joining or leaving the ring")
        if ring is None or self.endpoint not in ring.endpoints:
            raise InvalidRequest("this node owns no tokens yet")
        schema = self.executor.store.schema
        if keyspace is not None and keyspace not in schema.keyspaces:
            raise InvalidRequest(f"Keyspace '{keyspace}' does not exist")
        out = []
        for ks_name, ks in schema.keyspaces.items():
            if ks_name in SYSTEM_KEYSPACES or (keyspace is not None and ks_name != keyspace):
                continue
            if table is not None and table not in ks.tables:
                raise InvalidRequest(f"Table '{keyspace}.{table}' does not exist")
            owned = ring.ranges_for(replication_strategy(dict(ks.replication)), self.endpoint)
            for name, t in ks.tables.items():
                if table is None or name == table:
                    rewritten, before, after = await trio.to_thread.run_sync(self.engine.cleanup, t.storage_id,
                                                                             owned)
                    out.append((ks_name, name, rewritten, before, after))
                    log.info("node %s: cleanup of %s.%s rewrote %d SSTables: %d -> %d bytes", self.config.name,
                             ks_name, name, rewritten, before, after)
        return out

    def _removenode_command(self, rest: str, _session: dict) -> Any:
        """REMOVENODE host-id sent by `widecol removenode`: runs in a request's worker thread."""
        from widecol.cql.executor import Rows
        from widecol.schema.types import parse_type

        partitions, size, seconds = trio.from_thread.run(self.removenode, rest.strip().rstrip(";").strip(),
                                                         trio_token=self.trio_token)
        return Rows([("partitions_streamed", parse_type("bigint")), ("bytes_streamed", parse_type("bigint")),
                     ("seconds", parse_type("double"))], [(partitions, size, seconds)], None)

    async def removenode(self, host_id: str) -> tuple[int, int, float]:
        """Remove a dead node: every range it replicated is streamed, from the surviving replicas, to the nodes
        that gain it once it is gone; then this node lists its host id in REMOVED, which every node's membership
        honours. Returns (partitions, bytes, seconds) streamed."""
        assert self.proxy is not None and self.executor is not None
        peer = self.membership.by_host_id(host_id)
        if peer is None:
            raise InvalidRequest(f"Host ID not found: {host_id}")
        if peer.alive or peer.endpoint == self.endpoint:
            raise InvalidRequest(f"{host_id} ({peer.endpoint}) is alive: decommission it instead")
        started = time.monotonic()
        ring = self.membership.ring
        partitions = size = 0
        if ring is not None and peer.endpoint in ring.endpoints:
            future = ring.without(peer.endpoint)
            for ks_name, ks in self.executor.store.schema.keyspaces.items():
                if ks_name in SYSTEM_KEYSPACES or not ks.tables:
                    continue
                strategy = replication_strategy(dict(ks.replication))
                for start, end in ring.ranges_for(strategy, peer.endpoint):
                    now = ring.replicas(strategy, end)
                    sources = [e for e in now if e != peer.endpoint and self.membership.is_alive(e)]
                    for target in (e for e in future.replicas(strategy, end) if e not in now):
                        for table in ks.tables.values():
                            n, b = await self._stream_to(target, table.storage_id, start, end, sources)
                            partitions += n
                            size += b
        removed = list(self.gossiper.state(self.endpoint, REMOVED) or [])
        await self.gossip.set_state(REMOVED, [*removed, host_id])
        async with self.gossip.lock:
            self.membership.refresh(self.gossiper)
        seconds = time.monotonic() - started
        log.info("node %s: removed %s (%s): streamed %d partitions (%d bytes) in %.1f s", self.config.name,
                 host_id, peer.endpoint, partitions, size, seconds)
        return partitions, size, seconds

    async def _stream_to(self, target: str, table_id: str, start: int, end: int,
                         sources: list[str]) -> tuple[int, int]:
        """Have TARGET copy (START, END] of TABLE_ID from SOURCES (this node does it itself when it is TARGET)."""
        if target == self.endpoint:
            return await self._stream_from(table_id, start, end, sources)
        n, b = await self.messaging.request(address_of(target), STREAM_FROM, [table_id, start, end, sources],
                                            timeout=3600)
        return n, b

    async def _stream_from(self, table_id: str, start: int, end: int, sources: list[str]) -> tuple[int, int]:
        assert self.proxy is not None
        partitions = size = 0
        for source in sources:
            n, b = await self.proxy.stream_range(table_id, start, end, source)
            partitions += n
            size += b
        return partitions, size

    async def _stream_from_verb(self, message: Any) -> list:
        table_id, start, end, sources = message.body
        return list(await self._stream_from(table_id, start, end, sources))

    def _ring_delay(self) -> float:
        return max(1.0, 5 * self.gossip.interval_s)

    async def _wait_schema_agreement(self, timeout: float = 30.0) -> None:
        """Until every live peer announces our schema version (pulling theirs as gossip reports it)."""
        assert self.executor is not None
        with trio.move_on_after(timeout):
            while True:
                ours = str(self.executor.store.schema.version())
                versions = {p.schema for p in self.membership.peers.values()
                            if p.alive and p.schema and p.endpoint != self.endpoint}
                if versions <= {ours}:
                    return
                await trio.sleep(0.1)
        log.warning("node %s: no schema agreement after %.0f s; streaming what we know", self.config.name, timeout)

    async def _choose_tokens(self, host_id: uuid.UUID) -> list[int]:
        """Tokens for a new node: listen to gossip until some node owns tokens (or RING_WAIT_S passes; a seed
        that hears nobody starts the ring), then take the most loaded nodes' ranges."""
        others = [s for s in self.config.seeds if s != self.endpoint]
        deadline = trio.current_time() + (RING_WAIT_S if others else 0)
        while trio.current_time() < deadline:
            async with self.gossip.lock:
                self.membership.refresh(self.gossiper)
            ring = self.membership.ring
            if ring is not None and not ring.is_empty:
                await trio.sleep(2 * self.gossip.interval_s)  # a little longer, to hear of every owner
                break
            await trio.sleep(self.gossip.interval_s / 2)
        async with self.gossip.lock:
            self.membership.refresh(self.gossiper)
        ring = self.membership.ring if self.membership.ring is not None else _empty_ring()
        return allocate_tokens(ring, self.config.num_tokens, self.endpoint, self.config.dc, self.config.rack,
                               seed=host_id.int & ((1 << 63) - 1))

    # -- gossip events -----------------------------------------------------------------------------------------

    async def _on_gossip_events(self, events: list[GossipEvent]) -> None:
        async with self.gossip.lock:
            self.membership.refresh(self.gossiper)
        assert self.proxy is not None
        for e in events:
            if e.endpoint == self.endpoint:
                continue
            peer = self.membership.peers.get(e.endpoint)
            if e.kind == "up":
                self.proxy.on_up(e.endpoint)
                await self._client_event("STATUS_CHANGE", "UP", peer)
                await self._check_schema(e.endpoint)
            elif e.kind == "down":
                self.proxy.on_down(e.endpoint)
                await self._client_event("STATUS_CHANGE", "DOWN", peer)
            elif e.kind == "left":
                self._announced_normal.discard(e.endpoint)
                await self._client_event("TOPOLOGY_CHANGE", "REMOVED_NODE", peer)
            elif e.kind == "changed" and e.key == gossip.STATUS and e.value == "normal":
                if e.endpoint not in self._announced_normal:
                    self._announced_normal.add(e.endpoint)
                    await self._client_event("TOPOLOGY_CHANGE", "NEW_NODE", peer)
            elif e.kind == "changed" and e.key == gossip.SCHEMA:
                await self._check_schema(e.endpoint)

    async def _client_event(self, event_type: str, change: str, peer: Any) -> None:
        if self.server is None or peer is None or not peer.native_address:
            return
        host, port = address_of(peer.native_address)
        await self.server.broadcast(Event(event_type, change=change, address=(host, port)))

    # -- schema ------------------------------------------------------------------------------------------------

    async def _check_schema(self, endpoint: str) -> None:
        """Pull the schema from ENDPOINT when it announces a version other than ours."""
        assert self.executor is not None
        theirs = self.gossiper.state(endpoint, gossip.SCHEMA)
        if theirs is None or theirs == str(self.executor.store.schema.version()) or endpoint in self._pulling:
            return
        if not self.membership.is_alive(endpoint):
            return
        self._pulling.add(endpoint)
        try:
            wires = await self.messaging.request(address_of(endpoint), SCHEMA_PULL, None, timeout=10)
            assert self.replica is not None
            await self.replica.merge_schema(wires)
        except (RequestTimeout, OSError) as exc:
            log.info("schema pull from %s failed: %s", endpoint, exc)
        finally:
            self._pulling.discard(endpoint)

    async def _schema_changed(self) -> None:
        """Our schema changed (merged from a peer): announce the new version."""
        assert self.executor is not None
        await self.gossip.set_state(gossip.SCHEMA, str(self.executor.store.schema.version()))

    def _push_schema_from_thread(self) -> None:
        trio.from_thread.run(self._push_schema, trio_token=self.trio_token)

    async def _push_schema(self) -> None:
        """After a local schema change: announce it, push it to every live peer and wait for them (bounded)."""
        assert self.executor is not None
        store = self.executor.store
        await self._schema_changed()
        wires = [m.to_wire() for m in await trio.to_thread.run_sync(store.schema_mutations)]
        peers = [e for e in self.membership.live() if e != self.endpoint]

        async def push(endpoint: str) -> None:
            try:
                await self.messaging.request(address_of(endpoint), SCHEMA_PUSH, wires, timeout=SCHEMA_PUSH_TIMEOUT_S)
            except (RequestTimeout, OSError, Exception) as exc:  # noqa: BLE001 - a peer's failure is logged only
                log.info("schema push to %s failed: %s", endpoint, exc)

        async with trio.open_nursery() as nursery:
            for endpoint in peers:
                nursery.start_soon(push, endpoint)

    # -- views ---------------------------------------------------------------------------------------------------

    def _peer_rows(self) -> list[dict]:
        rows = []
        for peer in self.membership.peers.values():
            if peer.endpoint == self.endpoint or peer.status not in ("normal", "leaving", "joining"):
                continue
            host = address_of(peer.endpoint)[0]
            native = address_of(peer.native_address)[0] if peer.native_address else host
            native_port = int(peer.native_address.rpartition(":")[2]) if peer.native_address else None
            rows.append({
                "peer_port": address_of(peer.endpoint)[1], "native_port": native_port,
                "peer": host, "data_center": peer.dc, "host_id": uuid.UUID(peer.host_id) if peer.host_id else None,
                "preferred_ip": host, "rack": peer.rack, "release_version": peer.release_version,
                "rpc_address": native, "schema_version": uuid.UUID(peer.schema) if peer.schema else None,
                "tokens": {str(t) for t in peer.tokens},
            })
        return rows

    async def _publish_load(self) -> None:
        while True:
            load = await trio.to_thread.run_sync(_disk_size, self.engine)
            await self.gossip.set_state(gossip.LOAD, float(load))
            await trio.sleep(LOAD_INTERVAL_S)


def _register_views(system: SystemTables, node: ClusterNode) -> None:
    """system_views.ring (what `widecol status` prints) and system_views.gossip (every endpoint's gossip state)."""

    def ring_rows(schema: Any) -> list[dict]:
        membership = node.membership
        ring = membership.ring
        keyspaces: list[tuple[str, Any]] = [("", None)]
        keyspaces += [(name, replication_strategy(dict(ks.replication))) for name, ks in schema.keyspaces.items()
                      if name not in SYSTEM_KEYSPACES]
        rows = []
        for ks_name, strategy in keyspaces:
            owns = ring.ownership(strategy) if ring is not None and not ring.is_empty else {}
            for peer in membership.peers.values():
                rows.append({
                    "keyspace_name": ks_name, "address": address_of(peer.endpoint)[0], "endpoint": peer.endpoint,
                    "state": peer.state_code, "load": peer.load, "tokens": len(peer.tokens),
                    "owns": owns.get(peer.endpoint, 0.0), "host_id": peer.host_id, "rack": peer.rack,
                    "data_center": peer.dc, "status": peer.status,
                })
        return rows

    def gossip_rows(_schema: Any) -> list[dict]:
        g = node.gossiper
        now = node.gossip.now()
        view_hash = g.view_hash() if hasattr(g, "view_hash") else ""
        rows = []
        for endpoint, state in g.endpoints.items():
            phi = 0.0 if endpoint == g.endpoint else g.detector.phi(endpoint, now)
            rows.append({
                "endpoint": endpoint, "generation": state.generation, "heartbeat": state.version,
                "phi": float(phi), "live": endpoint == g.endpoint or endpoint in g.live,
                "states": {k: str(v) for k, (v, _) in state.states.items()}, "view_hash": view_hash,
            })
        return rows

    def metric_rows(_schema: Any) -> list[dict]:
        values: dict[str, float] = {}
        g = node.gossiper
        if hasattr(g, "statistics"):
            stats = g.statistics(node.gossip.now())
            for name in ("rounds", "messages_sent", "messages_received", "bytes_sent", "bytes_received",
                         "convictions", "live", "down"):
                values[f"gossip.{name}"] = float(getattr(stats, name))
            for peer, age in stats.heartbeat_age.items():
                if age is not None:
                    values[f"gossip.heartbeat_age.{peer}"] = age
        m = node.messaging.statistics()
        values["messaging.sent_messages"] = float(sum(c.messages for c in m.sent.values()))
        values["messaging.sent_bytes"] = float(sum(c.bytes for c in m.sent.values()))
        values["messaging.received_messages"] = float(sum(c.messages for c in m.received.values()))
        values["messaging.received_bytes"] = float(sum(c.bytes for c in m.received.values()))
        for name in ("dropped", "expired", "rejected", "timeouts", "reconnects", "connect_failures", "queued"):
            values[f"messaging.{name}"] = float(getattr(m, name))
        if node.proxy is not None:
            values.update({f"coordinator.{k}": float(v) for k, v in node.proxy.counters.items()})
        if node.hints is not None:
            h = node.hints.statistics()
            for name in ("stored", "replayed", "acknowledged", "expired", "corrupt"):
                if hasattr(h, name):
                    values[f"hints.{name}"] = float(getattr(h, name))
        return [{"name": k, "value": v} for k, v in sorted(values.items())]

    system.register("system_views", "metrics", [("name", "text"), ("value", "double")], metric_rows)
    system.register("system_views", "ring", [
        ("keyspace_name", "text"), ("address", "text"), ("endpoint", "text"), ("state", "text"), ("load", "double"),
        ("tokens", "int"), ("owns", "double"), ("host_id", "text"), ("rack", "text"), ("data_center", "text"),
        ("status", "text"),
    ], ring_rows)
    system.register("system_views", "gossip", [
        ("endpoint", "text"), ("generation", "int"), ("heartbeat", "int"), ("phi", "double"), ("live", "boolean"),
        ("states", "frozen<map<text, text>>"), ("view_hash", "text"),
    ], gossip_rows)
    # -- repair: progress of this node's repair sessions (widecol/net/repair.py) --
    repair = node.repair
    if repair is not None:
        system.register("system_views", "repair", VIEW_COLUMNS, lambda _schema: repair.view_rows())
    # -- end repair --


def run_node(config: NodeConfig) -> None:
    """Run the node until signalled. Raises StartError when it cannot start."""
    tune_gc()
    try:
        trio.run(serve, config)
    except* StartError as group:
        raise group.exceptions[0] from None
