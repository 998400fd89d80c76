"""STATUS_CHANGE and TOPOLOGY_CHANGE events pushed to a client that REGISTERed for them, from a real cluster."""

import socket
import time

import pytest

from widecol.net.native.connection import ClientConnection
from widecol.net.native.messages import Register, Startup
from widecol.net.native.results import Event
from widecol.testing import LocalCluster

pytestmark = pytest.mark.slow


class EventListener:
    """A bare native protocol connection (our sans-IO client codec over a blocking socket) registered for
    cluster events."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.conn = ClientConnection(4)
        self.events = []
        self._request(Startup({"CQL_VERSION": "3.4.5"}))
        self._request(Register(["STATUS_CHANGE", "TOPOLOGY_CHANGE"]))

    def _request(self, message):
        stream, data = self.conn.send(message)
        self.sock.sendall(data)
        while True:
            response = self._next()
            if response.stream == stream:
                return response

    def _next(self):
        while (response := self.conn.next_event()) is None:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            self.conn.receive_data(data)
        if isinstance(response.message, Event):
            self.events.append((response.message.event_type, response.message.change,
                                response.message.address[0]))
        return response

    def wait_for(self, event, timeout=60):
        deadline = time.monotonic() + timeout
        while event not in self.events:
            self.sock.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                self._next()
            except TimeoutError:
                break
        assert event in self.events, self.events

    def close(self):
        self.sock.close()


def test_clients_hear_nodes_go_down_come_up_and_join(tmp_path):
    cluster = LocalCluster(tmp_path, 3)
    for name in ("n1", "n2"):
        cluster.start(name)
    try:
        cluster.wait_view("n1", up={"n1", "n2"})
        listener = EventListener(cluster.hosts["n1"], cluster.native_port)
        try:
            cluster.start("n3")
            listener.wait_for(("TOPOLOGY_CHANGE", "NEW_NODE", cluster.hosts["n3"]))
            cluster.kill("n2")
            listener.wait_for(("STATUS_CHANGE", "DOWN", cluster.hosts["n2"]))
            cluster.start("n2")
            listener.wait_for(("STATUS_CHANGE", "UP", cluster.hosts["n2"]))
        finally:
            listener.close()
    finally:
        cluster.kill_all()


def test_system_peers_and_peers_v2_list_every_other_node_with_its_ports(tmp_path):
    from widecol.client import connect

    cluster = LocalCluster(tmp_path, 3).start_all()
    try:
        with connect(f"{cluster.hosts['n2']}:{cluster.native_port}") as c:
            v1 = c.execute("SELECT peer, rpc_address, tokens FROM system.peers").as_dicts()
            v2 = c.execute("SELECT peer, peer_port, native_address, native_port, tokens FROM system.peers_v2").as_dicts()
        others = {cluster.hosts[n] for n in ("n1", "n3")}
        assert {str(r["peer"]) for r in v1} == others == {str(r["native_address"]) for r in v2}
        assert {r["native_port"] for r in v2} == {cluster.native_port}
        assert {r["peer_port"] for r in v2} == {cluster.internode_port}
        assert all(len(r["tokens"]) == 8 for r in v1 + v2)
    finally:
        cluster.kill_all()
