"""Internode messaging over real TCP on loopback addresses and over the in-memory twin.

Behavioural tests run over both transports (the `net` fixture); TCP-only tests cover sockets (oversize and garbage
frames, source address binding); memory-only tests cover the network controls under trio's autojump clock.
"""

import dataclasses
import functools
import random
import socket

import pytest
import trio

from widecol.net import frames
from widecol.net.memory import MemoryNetwork
from widecol.net.messaging import Messaging, RemoteError, RequestTimeout

A, B, C = "127.0.0.1", "127.0.0.2", "127.0.0.3"


class Harness:
    """Starts services on one transport inside the test's nursery, and stops them (waiting until stopped)."""

    def __init__(self, transport, nursery):
        self.transport = transport
        self.nursery = nursery
        self.network = MemoryNetwork(seed=7)
        self._done = {}

    async def start(self, host, cluster="dev", secret=None, port=None, **options):
        if self.transport == "tcp":
            service = Messaging((host, port or 0), cluster, secret, **options)
        else:
            service = self.network.endpoint((host, port or 7000), cluster, secret, **options)
        done = trio.Event()

        async def runner(task_status=trio.TASK_STATUS_IGNORED):
            try:
                await service.run(task_status=task_status)
            finally:
                done.set()

        await self.nursery.start(runner)
        self._done[id(service)] = done
        return service

    async def stop(self, service):
        service.close()
        await self._done[id(service)].wait()

    def dead_address(self, host):
        """An address where nothing listens."""
        if self.transport == "memory":
            return (host, 7999)
        with socket.socket() as sock:
            sock.bind((host, 0))
            return (host, sock.getsockname()[1])


@pytest.fixture(params=["tcp", "memory"])
def net(request, nursery):
    return Harness(request.param, nursery)


async def echo(message):
    return {"echo": message.body, "from": list(message.sender)}


# -- behaviour over both transports -----------------------------------------------------------------------------


async def test_many_requests_in_flight_get_their_own_replies(net):
    a, b = await net.start(A), await net.start(B)
    rng = random.Random(3)

    async def slow_echo(message):
        await trio.sleep(rng.random() * 0.01)  # replies come back out of order
        return message.body * 2

    b.on("DOUBLE", slow_echo)
    results = {}

    async def one(i):
        results[i] = await a.request(b.address, "DOUBLE", i, timeout=10)

    async with trio.open_nursery() as nursery:
        for i in range(300):
            nursery.start_soon(one, i)
    assert results == {i: 2 * i for i in range(300)}
    stats = a.statistics()
    assert stats.sent["DOUBLE"].messages == 300
    assert stats.received["DOUBLE.reply"].messages == 300
    assert b.statistics().received["DOUBLE"].bytes == stats.sent["DOUBLE"].bytes


async def test_reply_carries_the_senders_address_and_any_msgpack_body(net):
    a, b = await net.start(A), await net.start(B)
    b.on("ECHO", echo)
    body = {"k": [1, 2.5, None, True, b"\x00\xff", "é"]}
    assert await a.request(b.address, "ECHO", body, timeout=10) == {"echo": body, "from": list(a.address)}


async def test_one_way_messages_arrive_in_order(net):
    a, b = await net.start(A), await net.start(B, max_concurrent_handlers=1)  # handlers run one at a time
    got = []
    all_in = trio.Event()

    async def record(message):
        got.append(message.body)
        if len(got) == 50:
            all_in.set()

    b.on("NOTE", record)
    for i in range(50):
        assert await a.send(b.address, "NOTE", i)
    with trio.fail_after(10):
        await all_in.wait()
    assert got == list(range(50))


async def test_a_request_with_no_reply_times_out_and_a_late_reply_is_ignored(net):
    a, b = await net.start(A), await net.start(B)

    async def late(message):
        await trio.sleep(0.4)
        return "too late"

    b.on("LATE", late)
    with pytest.raises(RequestTimeout) as info:
        await a.request(b.address, "LATE", None, timeout=0.1)
    assert info.value.peer == b.address and info.value.verb == "LATE"
    assert a.statistics().timeouts == 1
    with trio.fail_after(10):
        while a.statistics().unmatched_replies == 0:
            await trio.sleep(0.05)


async def test_handler_failure_and_unknown_verb_reach_the_requester(net):
    a, b = await net.start(A), await net.start(B)

    async def broken(message):
        raise KeyError("nope")

    async def unencodable(message):
        return {1, 2}  # a set is not a msgpack value

    b.on("BROKEN", broken)
    b.on("SET", unencodable)
    with pytest.raises(RemoteError, match="KeyError"):
        await a.request(b.address, "BROKEN", None, timeout=10)
    with pytest.raises(RemoteError, match="unknown verb"):
        await a.request(b.address, "MISSING", None, timeout=10)
    with pytest.raises(RemoteError, match="unencodable reply"):
        await a.request(list(b.address), "SET", None, timeout=10)  # a peer given as a list works too
    stats = b.statistics()
    assert (stats.handler_errors, stats.unknown_verbs) == (2, 1)
    b.on("ECHO", echo)  # the node keeps serving
    assert (await a.request(b.address, "ECHO", 1, timeout=10))["echo"] == 1


@pytest.mark.parametrize(
    "intruder, reason",
    [({"secret": b"wrong"}, frames.BAD_HMAC), ({"secret": None}, frames.BAD_HMAC),
     # same secret, another cluster's name: the HMAC passes, the name does not
     ({"cluster": "prod", "secret": b"key"}, frames.OTHER_CLUSTER)],
    ids=["wrong-secret", "no-secret", "other-cluster"],
)
async def test_frames_with_a_bad_hmac_or_from_another_cluster_are_dropped_and_counted(net, intruder, reason):
    options = {"cluster": "dev", "secret": b"key"}
    a, b = await net.start(A, **options), await net.start(B, **options)
    c = await net.start(C, **intruder)
    applied = []

    async def record(message):
        applied.append(message.sender)
        return "ok"

    a.on("APPLY", record)
    with pytest.raises(RequestTimeout):
        await c.request(a.address, "APPLY", "forged", timeout=0.3)
    with trio.fail_after(10):
        while not a.statistics().rejected:
            await trio.sleep(0.01)
    assert applied == []
    assert a.statistics().rejected_by_reason == {reason: 1}
    assert a.statistics().rejected == 1
    assert await b.request(a.address, "APPLY", "legit", timeout=10) == "ok"
    assert applied == [b.address]


async def test_reconnects_after_the_peer_restarts(net):
    a, b = await net.start(A), await net.start(B)
    b.on("ECHO", echo)
    assert (await a.request(b.address, "ECHO", 1, timeout=10))["echo"] == 1
    address = b.address
    await net.stop(b)
    b2 = await net.start(B, port=address[1])
    b2.on("ECHO", echo)
    answer = None
    for _attempt in range(5):  # a frame written just as the old connection died may be lost, as over TCP
        try:
            answer = await a.request(address, "ECHO", 2, timeout=2)
            break
        except RequestTimeout:
            continue
    assert answer is not None and answer["echo"] == 2
    assert a.statistics().reconnects >= 1


async def test_a_dead_peer_fills_a_bounded_queue_droppables_are_dropped_others_wait(net):
    a = await net.start(A, queue_messages=4, backoff_initial=0.01, backoff_max=0.05)
    dead = net.dead_address(C)
    accepted = 0
    for i in range(100):
        accepted += await a.send(dead, "GOSSIP", i, droppable=True)
        await trio.sleep(0)
    stats = a.statistics()
    assert accepted <= 8  # the queue's 4, plus the batch the writer holds while it retries (here 1)
    assert stats.dropped == 100 - accepted
    assert stats.queued <= 4
    with trio.move_on_after(0.3) as scope:
        await a.send(dead, "MUTATION", "row", droppable=False)
    assert scope.cancelled_caught  # a mutation waits for room rather than being dropped
    assert a.statistics().connect_failures >= 1
    assert a.statistics().queued <= 4


async def test_expired_messages_are_discarded_unsent(net):
    a = await net.start(A, message_ttl=0.1, backoff_initial=0.05, backoff_max=0.05)
    dead = net.dead_address(C)
    for i in range(3):
        await a.send(dead, "NOTE", i)
    with trio.fail_after(10):
        while a.statistics().expired < 3:
            await trio.sleep(0.05)
    assert a.statistics().queued == 0


async def test_statistics_are_a_frozen_snapshot(net):
    a, b = await net.start(A), await net.start(B)
    b.on("ECHO", echo)
    before = a.statistics()
    await a.request(b.address, "ECHO", 1, timeout=10)
    assert "ECHO" not in before.sent and a.statistics().sent["ECHO"].messages == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.dropped = 5


# -- TCP only ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage, reason",
    [(b"WC\x01\x00\xff\xff\xff\xff", frames.OVERSIZE), (b"GET / HTTP/1.1\r\n\r\n", frames.BAD_MAGIC)],
)
async def test_tcp_bad_frame_closes_that_connection_while_others_keep_working(nursery, garbage, reason):
    net = Harness("tcp", nursery)
    a, b = await net.start(A, max_frame_size=1 << 20), await net.start(B)
    a.on("ECHO", echo)
    stream = await trio.open_tcp_stream(*a.address)
    await stream.send_all(garbage)
    with trio.fail_after(10):
        assert await stream.receive_some(100) == b""  # closed by a
    await stream.aclose()
    assert a.statistics().rejected_by_reason == {reason: 1}
    assert (await b.request(a.address, "ECHO", 1, timeout=10))["echo"] == 1


async def test_tcp_oversize_message_is_refused_by_the_sender(nursery):
    net = Harness("tcp", nursery)
    a = await net.start(A, max_frame_size=1000)
    with pytest.raises(frames.FrameTooLarge):
        await a.send((B, 7000), "BIG", b"x" * 2000)


async def test_tcp_a_dropped_connection_and_a_refused_connect_are_reported_at_once(nursery):
    net = Harness("tcp", nursery)
    a = await net.start(A, backoff_initial=0.01, backoff_max=0.05)
    b, c = await net.start(B), await net.start(C)
    lost = []
    a.on_unreachable(lost.append)
    for peer in (b, c):
        peer.on("ECHO", echo)
        assert (await a.request(peer.address, "ECHO", 1, timeout=10))["echo"] == 1
    assert lost == []
    await net.stop(b)  # its end of a's connection closes: a hears EOF without writing anything
    with trio.fail_after(10):
        while b.address not in lost:
            await trio.sleep(0.01)
    reported = len(lost)
    await a.send(b.address, "NOTE", 1)  # nothing listens there now: the connect is refused
    with trio.fail_after(10):
        while len(lost) == reported:
            await trio.sleep(0.01)
    assert set(lost) == {b.address} and a.statistics().connect_failures >= 1
    await net.stop(a)  # closing our own connections is not the peer's failure
    assert c.address not in lost


async def test_tcp_a_peer_that_talks_to_us_again_ends_our_backoff_to_it(nursery):
    net = Harness("tcp", nursery)
    a = await net.start(A, backoff_initial=60.0, backoff_max=60.0)
    dead = net.dead_address(B)
    await a.send(dead, "NOTE", "queued while down")
    with trio.fail_after(10):
        while not a.statistics().connect_failures:
            await trio.sleep(0.01)  # a's writer now waits 60 s before its next connect
    b = await net.start(B, port=dead[1])  # the peer restarts...
    got = await collect(b, "NOTE")
    a.on("HELLO", echo)
    await b.send(a.address, "HELLO", None)  # ...and speaks to a: a reconnects at once
    with trio.fail_after(10):
        while got != ["queued while down"]:
            await trio.sleep(0.01)


async def test_tcp_outbound_connections_come_from_the_nodes_own_address(nursery):
    net = Harness("tcp", nursery)
    b = await net.start(B)
    seen = []
    got = trio.Event()

    async def accept(stream):
        seen.append(stream.socket.getpeername()[0])
        got.set()
        await trio.sleep_forever()

    serve = functools.partial(trio.serve_tcp, host=C)
    listeners = await nursery.start(serve, accept, 0)
    port = listeners[0].socket.getsockname()[1]
    await b.send((C, port), "HELLO", None)
    with trio.fail_after(10):
        await got.wait()
    assert seen == [B]


# -- in-memory network controls (virtual time) -----------------------------------------------------------------


@pytest.fixture
def mem(nursery):
    return Harness("memory", nursery)


async def collect(node, verb):
    got = []

    async def record(message):
        got.append(message.body)
        return message.body

    node.on(verb, record)
    return got


async def test_memory_loss_is_seeded_and_counted(mem, autojump_clock):
    a, b = await mem.start(A), await mem.start(B)
    got = await collect(b, "NOTE")
    mem.network.set_loss(0.3)
    for i in range(400):
        await a.send(b.address, "NOTE", i)
    await trio.sleep(1)
    stats = mem.network.statistics()
    assert stats.lost + stats.delivered == 400
    assert 80 <= stats.lost <= 160
    assert len(got) == stats.delivered
    # the same seed loses the same frames
    again = Harness("memory", mem.nursery)
    c, d = await again.start(A), await again.start(B)
    got_again = await collect(d, "NOTE")
    again.network.set_loss(0.3)
    for i in range(400):
        await c.send(d.address, "NOTE", i)
    await trio.sleep(1)
    assert sorted(got_again) == sorted(got)


async def test_memory_delay_applies_in_virtual_time(mem, autojump_clock):
    a, b = await mem.start(A), await mem.start(B)
    b.on("ECHO", echo)
    mem.network.set_delay(2.0)
    with pytest.raises(RequestTimeout):
        await a.request(b.address, "ECHO", 1, timeout=3)  # 2 s there and 2 s back
    start = trio.current_time()
    assert (await a.request(b.address, "ECHO", 1, timeout=5))["echo"] == 1
    assert trio.current_time() - start >= 4.0


async def test_memory_partition_cuts_both_ways_until_healed(mem, autojump_clock):
    a, b, c = await mem.start(A), await mem.start(B), await mem.start(C)
    for node in (a, b, c):
        node.on("ECHO", echo)
    mem.network.partition([a.address], [b.address])
    with pytest.raises(RequestTimeout):
        await a.request(b.address, "ECHO", 1, timeout=1)
    with pytest.raises(RequestTimeout):
        await b.request(a.address, "ECHO", 1, timeout=1)
    assert (await c.request(a.address, "ECHO", 1, timeout=1))["echo"] == 1
    assert (await c.request(b.address, "ECHO", 1, timeout=1))["echo"] == 1
    assert mem.network.statistics().partitioned == 2
    mem.network.heal()
    assert (await a.request(b.address, "ECHO", 1, timeout=1))["echo"] == 1


async def test_memory_one_way_block(mem, autojump_clock):
    a, b = await mem.start(A), await mem.start(B)
    a.on("ECHO", echo)
    b.on("ECHO", echo)
    mem.network.block(a.address, b.address)
    with pytest.raises(RequestTimeout):
        await a.request(b.address, "ECHO", 1, timeout=1)
    with pytest.raises(RequestTimeout):  # b's request reaches a, but a's reply is blocked
        await b.request(a.address, "ECHO", 1, timeout=1)
    assert a.statistics().received["ECHO"].messages == 1


async def test_memory_paused_node_processes_nothing_until_resumed(mem, autojump_clock):
    a, b = await mem.start(A, queue_messages=8), await mem.start(B)
    got = await collect(b, "NOTE")
    b.on("ECHO", echo)
    mem.network.pause(b.address)
    with pytest.raises(RequestTimeout):
        await a.request(b.address, "ECHO", 1, timeout=1)
    for i in range(20):
        await a.send(b.address, "NOTE", i, droppable=True)
    await trio.sleep(5)
    assert got == []
    assert a.statistics().dropped >= 20 - 9  # the paused peer's queue filled up
    mem.network.resume(b.address)
    await trio.sleep(1)
    assert got == sorted(got) and 0 < len(got) <= 9
    assert (await a.request(b.address, "ECHO", 2, timeout=1))["echo"] == 2


async def test_memory_paused_node_sends_nothing(mem, autojump_clock):
    a, b = await mem.start(A), await mem.start(B)
    got = await collect(b, "NOTE")
    mem.network.pause(a.address)
    await a.send(b.address, "NOTE", 1)
    await trio.sleep(5)
    assert got == []
    mem.network.resume(a.address)
    await trio.sleep(0.1)
    assert got == [1]
