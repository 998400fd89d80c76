"""Node: builds every service from a NodeConfig and runs them in one trio nursery.

Today a node owns its storage engine and the CQL native protocol server; gossip and the coordinator join it in
later issues. It runs until SIGTERM or SIGINT, then stops cleanly: memtables flushed, commit log synced.
"""

from __future__ import annotations

import logging
import signal

import trio

from widecol.config import NodeConfig
from widecol.cql.executor import Executor
from widecol.net.native.server import NativeServer
from widecol.net.native.system_tables import SystemTables, load_identity
from widecol.storage.engine import Engine, EngineOptions, tune_gc

log = logging.getLogger(__name__)


async def serve(config: NodeConfig, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    """Open the node's storage and run until cancelled or signalled; close the storage on the way out."""
    options = EngineOptions.from_config(config.storage)
    engine = await trio.to_thread.run_sync(Engine.open, config.data_dir / "storage", options)
    log.info("node %s: storage open in %s", config.name, config.data_dir)
    try:
        executor = Executor(engine)
        host_id, tokens = load_identity(config.data_dir, config.num_tokens)
        system = SystemTables(executor, cluster_name=config.cluster_name, address=config.address, dc=config.dc,
                              rack=config.rack, host_id=host_id, tokens=tokens)
        server = NativeServer(executor, system, max_connections=config.native.max_connections,
                              max_frame_size=config.native.max_frame_mb * 1024 * 1024)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with trio.open_nursery() as nursery:
                await nursery.start(server.serve, config.address, config.native_port)
                log.info("native protocol listening on %s:%d", config.address, config.native_port)
                task_status.started(engine)
                log.info("node %s: ready", config.name)
                async for signum in signals:
                    log.info("node %s: %s received, stopping", config.name, signal.Signals(signum).name)
                    break
                nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(engine.close)
        log.info("node %s: stopped cleanly", config.name)


def run_node(config: NodeConfig) -> None:
    tune_gc()
    trio.run(serve, config)
