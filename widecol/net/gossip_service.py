"""The trio edge of gossip: runs a sans-IO Gossiper over internode messaging.

How this works. `run` registers a handler for every gossip verb, then ticks the Gossiper every interval and runs
its timers (probe escalations, convictions) when `deadline()` comes due. Whatever
`tick` and `handle` return is sent as one-way, droppable messages (gossip tolerates loss; a full queue to a dead
peer must not hold anything up). After each tick or message the Gossiper's events are drained and handed to the
node's `on_events` callback, in order, from one task, so listeners see joins, ups and downs in the order gossip
produced them. Endpoints are "host:port" strings of internode addresses. When messaging loses its connection to a
peer or is refused one, it tells us (`on_unreachable`) and we have the Gossiper probe that peer at once rather
than at its next turn in the probe rotation (on loopback a SIGKILLed node's connections drop at once).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import trio

from widecol.cluster import gossip
from widecol.cluster.gossip import Event, Gossiper
from widecol.errors import ProtocolError
from widecol.net.frames import Address, Message
from widecol.net.messaging import _Service

log = logging.getLogger(__name__)

EventsCallback = Callable[[list[Event]], Awaitable[None]]
TIMER_POLL_S = 0.05


def endpoint_of(address: Address) -> str:
    return f"{address[0]}:{address[1]}"


def address_of(endpoint: str) -> Address:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


class GossipService:
    def __init__(self, gossiper: Gossiper, messaging: _Service, interval_s: float,
                 on_events: EventsCallback | None = None) -> None:
        self.gossiper = gossiper
        self.messaging = messaging
        self.interval_s = interval_s
        self.on_events = on_events
        self._events_send, self._events_receive = trio.open_memory_channel[list[Event]](1024)
        self.lock = trio.Lock()  # the Gossiper is touched by the ticker and by handlers
        self._unreachable_send, self._unreachable_receive = trio.open_memory_channel[str](64)

    def now(self) -> float:
        """Gossip's clock: monotonic seconds, readable from any thread (the virtual tables read it from
        worker threads)."""
        return time.monotonic()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        for verb in gossip.VERBS:
            self.messaging.on(verb, self._handle)
        self.messaging.on_unreachable(self._on_unreachable)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._deliver_events)
            nursery.start_soon(self._probe_unreachable)
            task_status.started()
            next_round = self.now()
            while True:
                if self.now() >= next_round:
                    await self.round()
                    next_round = self.now() + self.interval_s
                async with self.lock:
                    due = self.gossiper.deadline()
                if due is not None and due <= self.now():
                    await self._advance()
                    continue
                wake = next_round if due is None else min(next_round, due)
                # Handlers may set earlier timers meanwhile: look again at least every TIMER_POLL_S.
                await trio.sleep(max(0.0, min(wake - self.now(), TIMER_POLL_S)))

    async def round(self) -> None:
        """One gossip round now."""
        async with self.lock:
            out = self.gossiper.tick(self.now())
            events = self.gossiper.take_events()
        await self._send(out)
        await self._publish(events)

    async def _advance(self) -> None:
        """Run the Gossiper's due timers (probe escalations, convictions)."""
        async with self.lock:
            out = self.gossiper.advance(self.now())
            events = self.gossiper.take_events()
        await self._send(out)
        await self._publish(events)

    def _on_unreachable(self, peer: Address) -> None:
        try:
            self._unreachable_send.send_nowait(endpoint_of(peer))
        except trio.WouldBlock:  # a burst of failures: the probes already started cover it
            pass

    async def _probe_unreachable(self) -> None:
        """Have the Gossiper probe, at once, each peer messaging could not reach."""
        async for endpoint in self._unreachable_receive:
            async with self.lock:
                out = self.gossiper.unreachable(endpoint, self.now())
                events = self.gossiper.take_events()
            await self._send(out)
            await self._publish(events)

    async def _handle(self, message: Message) -> None:
        async with self.lock:
            try:
                out = self.gossiper.handle(endpoint_of(message.sender), message.verb, message.body, self.now())
            except ProtocolError as exc:  # a malformed message from a peer: drop it, keep gossiping
                log.warning("gossip: dropped a malformed %s from %s: %s", message.verb, message.sender, exc)
                return
            events = self.gossiper.take_events()
        await self._send(out)
        await self._publish(events)

    async def _send(self, out: list) -> None:
        for peer, verb, body in out:
            await self.messaging.send(address_of(peer), verb, body, droppable=True)

    async def _publish(self, events: list[Event]) -> None:
        if events:
            await self._events_send.send(events)

    async def _deliver_events(self) -> None:
        async for events in self._events_receive:
            for e in events:
                level = logging.DEBUG if e.kind == "changed" else logging.INFO
                log.log(level, "gossip: %s %s%s", e.kind, e.endpoint, f" {e.key}" if e.key else "")
            if self.on_events is not None:
                try:
                    await self.on_events(events)
                except Exception:  # a listener's bug must not stop gossip
                    log.exception("gossip: event listener failed")

    async def set_state(self, key: str, value: object) -> None:
        """Publish KEY = VALUE for this node (spreads from the next round)."""
        async with self.lock:
            self.gossiper.set_local_state(key, value)
