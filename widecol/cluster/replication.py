"""Replication strategies: which endpoints hold the replicas of a token range (sans-IO).

How this works. A strategy is a small frozen value built from a keyspace's replication options
(`replication_strategy(options)`); it places the replicas of the range that ends at one ring token by walking the
ring clockwise from that token:

  SimpleStrategy           the next RF distinct endpoints, racks and datacenters ignored.
  NetworkTopologyStrategy  per datacenter, RF distinct endpoints of that DC. Walking clockwise, an endpoint on a
                           rack not yet used in its DC is taken at once; one on a used rack is skipped (remembered
                           in order) until every rack of the DC holds a replica, then the skipped endpoints fill
                           the remaining places first, and later endpoints are taken as they come. This is
                           Cassandra's rule: it spreads a DC's replicas over as many racks as it can, and it picks
                           the same endpoints as Cassandra 4's "acceptable rack repeats" formulation.
  LocalStrategy            only the local endpoint (system keyspaces that every node keeps for itself).

A DC with fewer endpoints than its RF gets all of them. Replicas come in the order the walk takes them, so the
owner of the range is first whenever its DC holds replicas. The Ring caches the answer per (strategy, range);
`strategy.replicas(ring, token)` goes through that cache.

`replication_factor_by_dc(ring)` is what consistency levels compute LOCAL_QUORUM and EACH_QUORUM from: the
configured factors, not capped by the endpoints present (Cassandra answers Unavailable when a DC is too small).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from widecol.cluster.ring import Ring
from widecol.errors import ConfigurationException
from widecol.schema.model import check_replication

SIMPLE = "org.apache.cassandra.locator.SimpleStrategy"
NETWORK_TOPOLOGY = "org.apache.cassandra.locator.NetworkTopologyStrategy"
LOCAL = "org.apache.cassandra.locator.LocalStrategy"


class ReplicationStrategy:
    """The interface of every strategy. Strategies are immutable and hashable (they key the Ring's cache)."""

    class_name = ""
    # Whether the strategy places replicas per datacenter (LOCAL_QUORUM counts only the local DC's replicas).
    dc_aware = False

    @property
    def total_rf(self) -> int:
        """How many replicas a range gets when the ring has enough endpoints."""
        raise NotImplementedError

    def replication_factor_by_dc(self, ring: Ring) -> dict[str, int]:
        """dc -> the replication factor quorums in that DC are computed from."""
        raise NotImplementedError

    def calculate_replicas(self, ring: Ring, index: int) -> tuple[str, ...]:
        """The replicas of the range ending at ring.sorted_tokens[INDEX] (INDEX -1: empty ring), uncached."""
        raise NotImplementedError

    def replicas(self, ring: Ring, token: int) -> list[str]:
        """The natural endpoints of TOKEN on RING (cached in the ring per range); the list is the caller's."""
        return ring.replicas(self, token)

    def options(self) -> dict[str, str]:
        """The replication options this strategy was built from, normalised (full class name)."""
        raise NotImplementedError


@dataclass(frozen=True)
class SimpleStrategy(ReplicationStrategy):
    rf: int
    class_name = SIMPLE

    @property
    def total_rf(self) -> int:
        return self.rf

    def replication_factor_by_dc(self, ring: Ring) -> dict[str, int]:
        # SimpleStrategy ignores datacenters: a LOCAL_QUORUM anywhere is a quorum of all RF replicas, as in
        # Cassandra (ConsistencyLevel.localQuorumFor falls back to the keyspace's whole RF).
        dcs = set(ring.datacenters())
        if ring.local_dc is not None:
            dcs.add(ring.local_dc)
        return dict.fromkeys(sorted(dcs), self.rf)

    def calculate_replicas(self, ring: Ring, index: int) -> tuple[str, ...]:
        n = len(ring.sorted_tokens)
        want = min(self.rf, len(ring.endpoints))
        out: list[str] = []
        for j in range(n):
            if len(out) >= want:
                break
            e = ring.owner_at(index + j)
            if e not in out:
                out.append(e)
        return tuple(out)

    def options(self) -> dict[str, str]:
        return {"class": SIMPLE, "replication_factor": str(self.rf)}


class _DcPlacement:
    """One datacenter's progress during a NetworkTopologyStrategy walk."""

    __slots__ = ("want", "rack_count", "chosen", "racks_used", "skipped", "skipped_set")

    def __init__(self, want: int, rack_count: int) -> None:
        self.want = want
        self.rack_count = rack_count
        self.chosen: list[str] = []
        self.racks_used: set[str] = set()
        self.skipped: list[str] = []
        self.skipped_set: set[str] = set()

    @property
    def done(self) -> bool:
        return len(self.chosen) >= self.want

    def offer(self, endpoint: str, rack: str, out: list[str]) -> None:
        """Consider ENDPOINT (met walking clockwise); append whatever gets chosen to OUT."""
        if endpoint in self.chosen:
            return
        if len(self.racks_used) >= self.rack_count:
            self._take(endpoint, out)
        elif rack not in self.racks_used:
            self.racks_used.add(rack)
            self._take(endpoint, out)
            if len(self.racks_used) >= self.rack_count:
                for skipped in self.skipped:
                    if self.done:
                        break
                    self._take(skipped, out)
        elif endpoint not in self.skipped_set:
            self.skipped.append(endpoint)
            self.skipped_set.add(endpoint)

    def _take(self, endpoint: str, out: list[str]) -> None:
        if not self.done and endpoint not in self.chosen:
            self.chosen.append(endpoint)
            out.append(endpoint)


@dataclass(frozen=True)
class NetworkTopologyStrategy(ReplicationStrategy):
    factors: tuple[tuple[str, int], ...]  # (dc, rf), sorted by dc
    class_name = NETWORK_TOPOLOGY
    dc_aware = True

    @classmethod
    def of(cls, factors: Mapping[str, int]) -> NetworkTopologyStrategy:
        return cls(tuple(sorted((dc, int(rf)) for dc, rf in factors.items())))

    @property
    def total_rf(self) -> int:
        return sum(rf for _, rf in self.factors)

    def replication_factor_by_dc(self, ring: Ring) -> dict[str, int]:
        return {dc: rf for dc, rf in self.factors if rf > 0}

    def calculate_replicas(self, ring: Ring, index: int) -> tuple[str, ...]:
        topology = ring.topology()
        placements: dict[str, _DcPlacement] = {}
        for dc, rf in self.factors:
            racks = topology.get(dc)
            if rf > 0 and racks:
                size = sum(len(es) for es in racks.values())
                placements[dc] = _DcPlacement(min(rf, size), len(racks))
        pending = len(placements)
        out: list[str] = []
        for j in range(len(ring.sorted_tokens)):
            if not pending:
                break
            e = ring.owner_at(index + j)
            placement = placements.get(ring.dc_of(e))
            if placement is None or placement.done:
                continue
            placement.offer(e, ring.rack_of(e), out)
            if placement.done:
                pending -= 1
        return tuple(out)

    def options(self) -> dict[str, str]:
        return {"class": NETWORK_TOPOLOGY, **{dc: str(rf) for dc, rf in self.factors}}


@dataclass(frozen=True)
class LocalStrategy(ReplicationStrategy):
    """Data only this node holds (system keyspaces): the one replica is the ring's local endpoint."""

    class_name = LOCAL

    @property
    def total_rf(self) -> int:
        return 1

    def replication_factor_by_dc(self, ring: Ring) -> dict[str, int]:
        return {} if ring.local_dc is None else {ring.local_dc: 1}

    def calculate_replicas(self, ring: Ring, index: int) -> tuple[str, ...]:
        return () if ring.local is None else (ring.local,)

    def options(self) -> dict[str, str]:
        return {"class": LOCAL}


def replication_strategy(options: Mapping[str, str]) -> ReplicationStrategy:
    """The strategy of a keyspace's replication options, as stored in the schema ({"class": ..., ...}); short
    and org.apache.cassandra.locator.* class names alike. Raises ConfigurationException for invalid options
    (the checks of widecol.schema.model.check_replication)."""
    checked = check_replication(options)
    cls = checked.pop("class")
    if cls == SIMPLE:
        return SimpleStrategy(int(checked["replication_factor"]))
    if cls == NETWORK_TOPOLOGY:
        return NetworkTopologyStrategy.of({dc: int(rf) for dc, rf in checked.items()})
    if cls == LOCAL:
        return LocalStrategy()
    raise ConfigurationException(f"Unable to find replication strategy class '{cls}'")
