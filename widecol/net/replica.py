"""The replica side of the coordinator's verbs: apply mutations, answer reads and scans, share the schema.

How this works. `Replica.register(messaging)` installs one handler per verb. Each handler runs the engine call in
a worker thread (engine calls may block on fsync or disk reads) and returns the reply body, which messaging sends
back to the requester. Reads answer raw partitions in mutation wire form (tombstones included), so that the
coordinator can reconcile replicas by the one merge rule and compute read repairs; a digest read answers only the
digest of that partition.

Verbs and bodies:
  MUTATION     [mutation wire, ...]                                   -> True once applied (durable per the
                                                                         commit log's sync mode)
  READ         [table_id, key, start, end, reverse, limit, digest]     -> [partition wire or digest, boundary]
  RANGE_READ   [table_id, start_token, end_token, after_key, max]      -> [[partition wire, ...], more]
  TRUNCATE     [table_id]                                              -> True
  STREAM_READ  as RANGE_READ                                           -> [[wire, ...], more, crc32]
  STREAM_WRITE [[wire, ...], crc32]                                    -> True once written as a new SSTable
  SCHEMA_PULL  None                                                    -> [schema mutation wire, ...]
  SCHEMA_PUSH  [schema mutation wire, ...]                             -> our schema version after merging
"""

from __future__ import annotations

import itertools
import logging
import zlib
from collections.abc import Awaitable, Callable

import msgpack
import trio

from widecol.coordinator.read import digest
from widecol.errors import Corruption
from widecol.net import threads
from widecol.net.frames import Message
from widecol.net.messaging import _Service
from widecol.schema.model import SchemaStore
from widecol.storage.engine import Engine
from widecol.storage.mutation import Mutation

log = logging.getLogger(__name__)

MUTATION, READ, RANGE_READ, TRUNCATE = "MUTATION", "READ", "RANGE_READ", "TRUNCATE"
STREAM_READ, STREAM_WRITE = "STREAM_READ", "STREAM_WRITE"
SCHEMA_PULL, SCHEMA_PUSH = "SCHEMA_PULL", "SCHEMA_PUSH"


def chunk_crc(wires: list) -> int:
    """The CRC-32 of a streamed chunk of partitions, over its msgpack form (msgpack round-trips it exactly)."""
    return zlib.crc32(msgpack.packb(wires, use_bin_type=True))


def check_chunk(wires: list, crc: int) -> None:
    """Raise Corruption when a streamed chunk does not match the checksum its sender computed."""
    if chunk_crc(wires) != crc:
        raise Corruption("stream", 0, "a streamed chunk does not match its checksum")


class Replica:
    def __init__(self, engine: Engine, store: SchemaStore,
                 on_schema_merged: Callable[[], Awaitable[None]] | None = None, inline_writes: bool = False) -> None:
        self.engine = engine
        self.store = store
        self.on_schema_merged = on_schema_merged
        self.inline_writes = inline_writes  # periodic commit log: applying never waits for a disk

    async def apply_async(self, wires: list) -> bool:
        """Apply mutations: on the event loop when that cannot block, else in a worker thread."""
        if self.inline_writes:
            return self.apply(wires)
        return await threads.run_sync(self.apply, wires)

    def register(self, messaging: _Service) -> None:
        messaging.on(MUTATION, self._mutation)
        messaging.on(READ, self._read)
        messaging.on(RANGE_READ, self._range_read)
        messaging.on(TRUNCATE, self._truncate)
        messaging.on(STREAM_READ, self._stream_read)
        messaging.on(STREAM_WRITE, self._stream_write)
        messaging.on(SCHEMA_PULL, self._schema_pull)
        messaging.on(SCHEMA_PUSH, self._schema_push)

    # -- local operations, also used by the coordinator for itself ------------------------------------------------

    def apply(self, wires: list) -> bool:
        self.engine.apply_batch([Mutation.from_wire(w) for w in wires])
        return True

    def ingest(self, wires: list) -> bool:
        """Write streamed partitions straight into new SSTables (durable when this returns)."""
        self.engine.ingest([Mutation.from_wire(w) for w in wires])
        return True

    async def ingest_async(self, wires: list) -> bool:
        return await trio.to_thread.run_sync(self.ingest, wires)

    def read(self, table_id: str, key: bytes, start: bytes | None, end: bytes | None, reverse: bool,
             limit: int | None, digest_only: bool) -> list:
        table = self.engine.table(table_id)
        raw, boundary = table.read_raw(key, start, end, reverse, limit)
        wire = Mutation.from_raw(table_id, key, raw).to_wire()
        return [digest(wire) if digest_only else wire, boundary]

    def range_read(self, table_id: str, start_token: int | None, end_token: int | None, after_key: bytes | None,
                   max_partitions: int) -> list:
        table = self.engine.table(table_id)
        found = list(itertools.islice(table.scan_raw(start_token, end_token, after_key), max_partitions + 1))
        more = len(found) > max_partitions
        return [[Mutation.from_raw(table_id, key, raw).to_wire() for _sk, key, raw in found[:max_partitions]], more]

    # -- verb handlers ---------------------------------------------------------------------------------------------

    async def _mutation(self, message: Message) -> bool:
        return await self.apply_async(message.body)

    async def _read(self, message: Message) -> list:
        table_id, key, start, end, reverse, limit, digest_only = message.body
        return await threads.run_sync(self.read, table_id, key, start, end, reverse, limit, digest_only)

    async def _range_read(self, message: Message) -> list:
        table_id, start_token, end_token, after_key, max_partitions = message.body
        return await threads.run_sync(self.range_read, table_id, start_token, end_token, after_key,
                                      max_partitions)

    async def _stream_read(self, message: Message) -> list:
        wires, more = await self._range_read(message)
        return [wires, more, chunk_crc(wires)]

    async def _stream_write(self, message: Message) -> bool:
        wires, crc = message.body
        check_chunk(wires, crc)
        return await self.ingest_async(wires)

    async def _truncate(self, message: Message) -> bool:
        await trio.to_thread.run_sync(self.engine.truncate, message.body[0])
        return True

    async def _schema_pull(self, message: Message) -> list:
        mutations = await trio.to_thread.run_sync(self.store.schema_mutations)
        return [m.to_wire() for m in mutations]

    async def _schema_push(self, message: Message) -> str:
        await self.merge_schema(message.body)
        return str(self.store.schema.version())

    async def merge_schema(self, wires: list) -> None:
        mutations = [Mutation.from_wire(w) for w in wires]
        changed = await trio.to_thread.run_sync(self.store.merge, mutations)
        if changed:
            log.info("schema merged from a peer: version %s", self.store.schema.version())
            if self.on_schema_merged is not None:
                await self.on_schema_merged()
