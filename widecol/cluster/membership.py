"""Membership: what this node knows of every node of the cluster, derived from gossip (sans-IO).

How this works. `Membership.refresh(gossiper)` reads every endpoint's application states and the live set from a
Gossiper and rebuilds the peer table and, when any node's tokens or status changed, the token ring. Nodes whose
STATUS is normal or leaving own their tokens; joining nodes are listed but own nothing yet; left and removed nodes
are dropped, and so are nodes whose host id any node lists in its REMOVED state (removenode: a dead node
cannot announce its own departure). While nodes join or leave, `pending_ring` is the ring as it will be, and `pending` the endpoints
that gain a token's data. The coordinator asks it who is alive, which data centre an endpoint is in, and for the ring; the
native server's system.peers and `widecol status` read the peer table.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from widecol.cluster import gossip
from widecol.cluster.gossip import Gossiper
from widecol.cluster.ring import Ring

OWNING = ("normal", "leaving")
REMOVED = "REMOVED"  # application state: host ids this node removed from the cluster (`widecol removenode`)


@dataclass(frozen=True)
class Peer:
    endpoint: str  # internode "host:port"
    host_id: str | None = None
    dc: str = "dc1"
    rack: str = "rack1"
    tokens: tuple[int, ...] = ()
    status: str | None = None  # joining, normal, leaving, left, removed
    native_address: str | None = None  # "host:port"
    schema: str | None = None
    release_version: str | None = None
    load: float = 0.0
    alive: bool = False
    generation: int = 0
    heartbeat: int = 0

    @property
    def state_code(self) -> str:
        """nodetool's two letters: U/D, then N(ormal), J(oining; also a node that has not announced a status
        yet), L(eaving), M(oving)."""
        updown = "U" if self.alive else "D"
        mode = {"normal": "N", "leaving": "L", "moving": "M"}.get(self.status or "", "J")
        return updown + mode


@dataclass
class Membership:
    local: str
    peers: dict[str, Peer] = field(default_factory=dict)
    ring: Ring | None = None
    pending_ring: Ring | None = None  # the ring once joining nodes own their tokens and leaving nodes are gone
    # (None: nobody joins or leaves)
    _ring_key: tuple = ()

    def refresh(self, gossiper: Gossiper) -> bool:
        """Rebuild from GOSSIPER's view. Returns True when the ring changed."""
        peers = {}
        removed = {host_id for state in gossiper.endpoints.values()
                   for host_id in (state.states.get(REMOVED, (None, 0))[0] or ())}
        for endpoint, state in gossiper.endpoints.items():
            values = {k: v for k, (v, _) in state.states.items()}
            status = values.get(gossip.STATUS)
            if status in gossip.GONE or (values.get(gossip.HOST_ID) in removed and endpoint != self.local):
                continue
            peers[endpoint] = Peer(
                endpoint=endpoint,
                host_id=values.get(gossip.HOST_ID),
                dc=values.get(gossip.DC) or "dc1",
                rack=values.get(gossip.RACK) or "rack1",
                tokens=tuple(int(t) for t in values.get(gossip.TOKENS) or ()),
                status=status,
                native_address=values.get(gossip.NATIVE_ADDRESS),
                schema=values.get(gossip.SCHEMA),
                release_version=values.get(gossip.RELEASE_VERSION),
                load=float(values.get(gossip.LOAD) or 0.0),
                alive=endpoint == self.local or endpoint in gossiper.live,
                generation=state.generation,
                heartbeat=state.version,
            )
        self.peers = peers
        owners = sorted((p.endpoint, p.tokens, p.dc, p.rack) for p in peers.values()
                        if p.status in OWNING and p.tokens)
        joining = sorted((p.endpoint, p.tokens, p.dc, p.rack) for p in peers.values()
                         if p.status == "joining" and p.tokens)
        key = (tuple(owners), tuple(joining))
        if key == self._ring_key and self.ring is not None:
            return False
        self._ring_key = key
        self.ring = Ring(tokens={e: list(t) for e, t, _, _ in owners}, dc={e: d for e, _, d, _ in owners},
                         rack={e: r for e, _, _, r in owners}, local=self.local)
        pending = self.ring
        for endpoint, tokens, dc, rack in joining:
            try:
                pending = pending.with_endpoint(endpoint, tokens, dc, rack)
            except ValueError:  # a joining node claims a token someone owns: ignore it until it chooses again
                continue
        for endpoint in sorted(p.endpoint for p in peers.values() if p.status == "leaving"):
            pending = pending.without(endpoint)
        self.pending_ring = None if pending is self.ring else pending
        return True

    def pending(self, strategy: object, token: int) -> list[str]:
        """Endpoints that will replicate TOKEN once joining nodes are normal and leaving ones gone, and do not
        yet: writes go to them too (so they miss nothing while data streams), and the consistency level counts
        them."""
        if self.pending_ring is None:
            return []
        now = set(self.ring.replicas(strategy, token)) if self.ring is not None else set()  # type: ignore[arg-type]
        return [e for e in self.pending_ring.replicas(strategy, token) if e not in now]  # type: ignore[arg-type]

    def is_alive(self, endpoint: str) -> bool:
        peer = self.peers.get(endpoint)
        return peer is not None and peer.alive

    def live(self) -> set[str]:
        return {e for e, p in self.peers.items() if p.alive}

    def dc_of(self, endpoint: str) -> str:
        peer = self.peers.get(endpoint)
        return peer.dc if peer is not None else "dc1"

    def by_host_id(self, host_id: str) -> Peer | None:
        for peer in self.peers.values():
            if peer.host_id == host_id:
                return peer
        return None
