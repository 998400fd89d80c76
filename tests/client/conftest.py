"""Real native protocol servers for the client tests: in the test's own trio run, or on a thread of their own
(for synchronous code: the cassandra-driver and the sync facade block the thread they run on)."""

import threading
from contextlib import asynccontextmanager

import pytest
import trio

from widecol.cql.executor import Executor
from widecol.net.native.server import NativeServer
from widecol.net.native.system_tables import SystemTables, load_identity
from widecol.storage.engine import Engine, EngineOptions


def _server(data_dir):
    engine = Engine.open(data_dir / "db", EngineOptions(background_compaction=False))
    executor = Executor(engine)
    host_id, tokens = load_identity(data_dir, 4)
    system = SystemTables(executor, cluster_name="c", address="127.0.0.1", dc="dc1", rack="r1",
                          host_id=host_id, tokens=tokens)
    return engine, NativeServer(executor, system)


@asynccontextmanager
async def serving(data_dir, port=0):
    """A NativeServer on 127.0.0.1 in this trio run; yields (port, cancel scope that stops it)."""
    engine, server = _server(data_dir)
    try:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(server.serve, "127.0.0.1", port)
            yield listeners[0].socket.getsockname()[1], nursery.cancel_scope
            nursery.cancel_scope.cancel()
    finally:
        engine.close()


class ServerThread:
    """A NativeServer running trio.run on its own thread: `start()`, `port`, `stop()` (closes its connections)."""

    def __init__(self, data_dir, port=0):
        self.data_dir, self.port = data_dir, port
        self._token = self._scope = self._thread = None

    def start(self):
        ready = threading.Event()

        async def main():
            async with serving(self.data_dir, self.port) as (port, scope):
                self.port, self._scope = port, scope
                self._token = trio.lowlevel.current_trio_token()
                ready.set()
                await trio.sleep_forever()

        self._thread = threading.Thread(target=trio.run, args=(main,), daemon=True)
        self._thread.start()
        assert ready.wait(30), "server thread did not start"
        return self

    def stop(self):
        trio.from_thread.run_sync(self._scope.cancel, trio_token=self._token)
        self._thread.join(30)
        assert not self._thread.is_alive()


@pytest.fixture
def server_thread(tmp_path):
    server = ServerThread(tmp_path).start()
    yield server
    if server._thread.is_alive():
        server.stop()


@pytest.fixture(scope="module")
def module_server(tmp_path_factory):
    server = ServerThread(tmp_path_factory.mktemp("client")).start()
    yield server
    server.stop()
