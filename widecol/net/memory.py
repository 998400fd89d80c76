"""The in-memory twin of internode messaging, for trio-level tests and the simulator.

How this works. A `MemoryNetwork` hub creates `MemoryMessaging` endpoints that have the interface of `Messaging`
(`run`, `on`, `send`, `request`, `statistics`, `close`) and share its queues, request matching, dispatch and
counters (`_Service`). Only the transport differs: instead of a socket, each peer's writer task hands whole frames
to the hub, which decides their fate:

- the destination is not running: like a refused connection, the writer backs off and retries (so a dead peer's
  queue fills up exactly as over TCP);
- either end is paused: the writer waits (a paused node neither sends nor receives, like a stopped process whose
  socket buffers have filled), and deliveries to it wait until it resumes;
- the pair is partitioned, or the seeded loss draw says so: the frame is lost silently (counted by the hub);
- otherwise it is delivered after the configured delay (plus seeded jitter) through the destination's own frame
  decoder, so a wrong cluster name or secret is rejected and counted as it would be over TCP.

Frames are real encoded bytes, so bodies must be msgpack values and no object is shared between nodes. Under
trio's MockClock (autojump_clock) delays and timeouts cost no real time.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import trio

from widecol.net.frames import Address, FrameRejected
from widecol.net.messaging import _SendQueue, _Service

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkStatistics:
    delivered: int
    lost: int  # to the random loss draw
    partitioned: int  # blocked by a partition


class MemoryNetwork:
    """A simulated network between in-memory endpoints. `seed` makes loss and jitter reproducible."""

    def __init__(self, seed: int = 0, loss: float = 0.0, delay: float = 0.0, jitter: float = 0.0) -> None:
        self._random = random.Random(seed)
        self._running: dict[Address, MemoryMessaging] = {}
        self._blocked: set[tuple[Address, Address]] = set()
        self._paused: dict[Address, trio.Event] = {}
        self.set_loss(loss)
        self.set_delay(delay, jitter)
        self._delivered = 0
        self._lost = 0
        self._partitioned = 0

    def endpoint(self, address: Address, cluster: str, secret: bytes | None = None, **options: Any) -> MemoryMessaging:
        """A new endpoint at `address` (not yet running; start it with `nursery.start(endpoint.run)`)."""
        return MemoryMessaging(self, address, cluster, secret, **options)

    # -- controls ---------------------------------------------------------------------------------------------

    def set_loss(self, probability: float) -> None:
        """Lose each frame independently with `probability` (0 to 1)."""
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"loss probability must be in [0, 1], got {probability}")
        self._loss = probability

    def set_delay(self, delay: float, jitter: float = 0.0) -> None:
        """Deliver each frame `delay` seconds after it is sent, plus a uniform random 0..`jitter`."""
        if delay < 0 or jitter < 0:
            raise ValueError("delay and jitter must be non-negative")
        self._delay = delay
        self._jitter = jitter

    def partition(self, *groups: Iterable[Address]) -> None:
        """Nodes in different groups can no longer reach each other (both ways). Adds to earlier partitions."""
        sets = [{(a[0], a[1]) for a in group} for group in groups]
        for i, left in enumerate(sets):
            for right in sets[i + 1 :]:
                for a in left:
                    for b in right:
                        self._blocked.add((a, b))
                        self._blocked.add((b, a))

    def block(self, source: Address, destination: Address) -> None:
        """Frames from `source` to `destination` are lost (one way only)."""
        self._blocked.add(((source[0], source[1]), (destination[0], destination[1])))

    def heal(self) -> None:
        """Remove every partition and block."""
        self._blocked.clear()

    def pause(self, address: Address) -> None:
        """The node stops processing: it sends nothing, and frames to it wait (and its senders' queues fill)."""
        self._paused.setdefault((address[0], address[1]), trio.Event())

    def resume(self, address: Address) -> None:
        """Undo `pause`: held frames are delivered and the node sends again."""
        event = self._paused.pop((address[0], address[1]), None)
        if event is not None:
            event.set()

    def statistics(self) -> NetworkStatistics:
        return NetworkStatistics(self._delivered, self._lost, self._partitioned)

    # -- for endpoints ----------------------------------------------------------------------------------------

    async def _wait_running(self, address: Address) -> None:
        while (event := self._paused.get(address)) is not None:
            await event.wait()

    def _register(self, endpoint: MemoryMessaging) -> None:
        if endpoint.address in self._running:
            raise OSError(f"address {endpoint.address} already in use")
        self._running[endpoint.address] = endpoint

    def _unregister(self, endpoint: MemoryMessaging) -> None:
        if self._running.get(endpoint.address) is endpoint:
            del self._running[endpoint.address]

    def _fate(self, source: Address, destination: Address) -> float | None:
        """None if the frame is lost, else its delay."""
        if (source, destination) in self._blocked:
            self._partitioned += 1
            return None
        if self._loss and self._random.random() < self._loss:
            self._lost += 1
            return None
        return self._delay + (self._random.uniform(0, self._jitter) if self._jitter else 0.0)

    async def _deliver(self, source: Address, target: MemoryMessaging, frame: bytes, at: float) -> None:
        await trio.sleep_until(at)
        await self._wait_running(target.address)
        if self._running.get(target.address) is not target:
            return  # the destination stopped meanwhile: the connection broke, the frame is gone
        self._delivered += 1
        await target._receive_frame(source, frame)


class MemoryMessaging(_Service):
    """An endpoint of a MemoryNetwork with the interface of Messaging. Options are those of `_Service`."""

    def __init__(
        self, network: MemoryNetwork, address: Address, cluster: str, secret: bytes | None = None, **options: Any
    ) -> None:
        super().__init__(address, cluster, secret, **options)
        self.network = network

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Join the network and serve until `close` or cancellation. Started once reachable."""
        try:
            async with trio.open_nursery() as nursery:
                self.network._register(self)
                self._started(nursery, nursery.cancel_scope)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self.network._unregister(self)
            self._stopped()

    async def _receive_frame(self, source: Address, frame: bytes) -> None:
        decoder = self.codec.decoder()
        decoder.feed(frame)
        try:
            decoded = decoder.next_frame()
        except FrameRejected as exc:
            self._count_rejected(exc, source)
            return
        if decoded is None or decoder.buffered:
            raise AssertionError("the in-memory network delivers exactly one whole frame")
        if self._nursery is not None:
            await self._dispatch(*decoded)

    async def _run_peer(self, peer: Address, queue: _SendQueue) -> None:
        network = self.network
        ever_connected = False
        current: MemoryMessaging | None = None
        backoff = 0.0
        assert self._nursery is not None
        nursery = self._nursery
        while True:
            item = await self._next_to_send(queue)
            while True:
                await network._wait_running(self.address)
                target = network._running.get(peer)
                if target is None:
                    current = None
                    self._counters["connect_failures"] += 1
                    backoff = self._backoff(backoff)
                    await trio.sleep(backoff)
                    if self._expired(item):
                        break
                    continue
                if target is not current:  # a new "connection": first contact, or the peer restarted
                    if ever_connected:
                        self._counters["reconnects"] += 1
                    ever_connected = True
                    current = target
                    backoff = 0.0
                await network._wait_running(peer)
                if network._running.get(peer) is not target:
                    continue
                self._count_sent(item)
                delay = network._fate(self.address, peer)
                if delay is None:
                    await trio.lowlevel.checkpoint()
                elif delay == 0:  # in order, and backpressure from the target's handler slots reaches us
                    await network._deliver(self.address, target, item.frame, trio.current_time())
                else:
                    nursery.start_soon(network._deliver, self.address, target, item.frame, trio.current_time() + delay)
                break
