"""WriteHandler: when a write has met its consistency level, or never can.

How this works. The caller builds a handler from the level and the partition's natural and pending endpoints; the
constructor raises Unavailable (nothing sent) when too few are alive. The caller then sends the mutation to every
endpoint in `targets`, stores a hint for every endpoint in `dead` (reporting each with `on_hint`), and feeds the
replies in: `on_ack`, `on_failure`. It answers the client as soon as `done` is true, with an error when `failed`
is, or when its timer expires first (`timeout_error()`, then it hints `unacked()`).

Which acknowledgements count depends on the level: every target's for ONE..ALL (the count raised by one per pending
endpoint), local-DC targets' only for LOCAL_*, each DC's own quorum (plus its pending endpoints) for EACH_QUORUM.
A stored hint counts toward ANY only. The handler keeps counting after `done` so that the caller may keep
feeding late replies; replies from endpoints that are not targets, and repeated replies, change nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from widecol.coordinator.consistency import (
    DcOf,
    assure_sufficient_live,
    block_for_write,
    dc_required,
    is_local,
    validate_for_write,
)
from widecol.errors import WriteFailure, WriteTimeout

WRITE_TYPES = frozenset({"SIMPLE", "BATCH", "UNLOGGED_BATCH", "COUNTER", "BATCH_LOG", "CAS", "VIEW", "CDC"})


class WriteHandler:
    """The decisions of one write at one consistency level. Pure: no clock, no I/O."""

    def __init__(
        self,
        level: str,
        natural: Iterable,
        pending: Iterable = (),
        *,
        live: Collection,
        dc_of: DcOf,
        local_dc: str,
        rf_by_dc: Mapping[str, int],
        write_type: str = "SIMPLE",
    ) -> None:
        if write_type not in WRITE_TYPES:
            raise ValueError(f"unknown write type {write_type!r}")
        self.level = validate_for_write(level)
        natural = list(dict.fromkeys(natural))
        pending = [e for e in dict.fromkeys(pending) if e not in natural]
        assure_sufficient_live(self.level, natural, live, dc_of, local_dc, rf_by_dc, True, pending)
        self.write_type = write_type
        self.local_dc = local_dc
        self._dc_of = dc_of
        self.required = block_for_write(self.level, rf_by_dc, local_dc, pending, dc_of)
        self._dc_required = dc_required(self.level, rf_by_dc, pending, dc_of) if self.level == "EACH_QUORUM" else {}
        everyone = natural + pending
        self.targets: list = [e for e in everyone if e in live]
        self.dead: list = [e for e in everyone if e not in live]
        self._target_set = frozenset(self.targets)
        self._all = frozenset(everyone)
        self._acked: set = set()
        self._failed: set = set()
        self._hinted: set = set()

    # -- replies ---------------------------------------------------------------------------------------------------

    def on_ack(self, endpoint: object) -> None:
        """ENDPOINT applied the mutation."""
        if endpoint in self._target_set and endpoint not in self._failed:
            self._acked.add(endpoint)

    def on_failure(self, endpoint: object) -> None:
        """ENDPOINT answered with an error, or the connection to it broke: it will not acknowledge."""
        if endpoint in self._target_set and endpoint not in self._acked:
            self._failed.add(endpoint)

    def on_hint(self, endpoint: object) -> None:
        """A hint for ENDPOINT is stored on the coordinator; it counts toward ANY only."""
        if endpoint in self._all:
            self._hinted.add(endpoint)

    # -- decisions -------------------------------------------------------------------------------------------------

    def _counted(self, endpoints: Iterable) -> int:
        if is_local(self.level):
            return sum(1 for e in endpoints if self._dc_of(e) == self.local_dc)
        return sum(1 for _ in endpoints)

    def _per_dc(self, endpoints: Iterable) -> dict:
        out: dict = {}
        for e in endpoints:
            dc = self._dc_of(e)
            out[dc] = out.get(dc, 0) + 1
        return out

    @property
    def received(self) -> int:
        """The acknowledgements that count toward the level (for ANY, stored hints too)."""
        if self.level == "ANY":
            return len(self._acked | self._hinted)
        return self._counted(self._acked)

    @property
    def done(self) -> bool:
        """The level is met: the write may be reported successful."""
        if self.level == "EACH_QUORUM":
            acked = self._per_dc(self._acked)
            return all(acked.get(dc, 0) >= need for dc, need in self._dc_required.items())
        return self.received >= self.required

    @property
    def failed(self) -> bool:
        """So many targets failed that the level can no longer be met (never true once `done`)."""
        if self.done:
            return False
        if self.level == "ANY":
            # Any dead endpoint can still be hinted; with none, every target failing leaves nothing.
            return not self.dead and not self._hinted and len(self._failed) == len(self.targets)
        possible = [e for e in self.targets if e not in self._failed]
        if self.level == "EACH_QUORUM":
            counts = self._per_dc(possible)
            return any(counts.get(dc, 0) < need for dc, need in self._dc_required.items())
        return self._counted(possible) < self.required

    def unacked(self) -> list:
        """Targets that neither acknowledged nor failed, in target order: hint them after a timeout."""
        return [e for e in self.targets if e not in self._acked and e not in self._failed]

    def timeout_error(self) -> WriteTimeout:
        """The error for a write whose timer expired before the level was met."""
        return WriteTimeout(self.level, self.received, self.required, self.write_type)

    def failure_error(self) -> WriteFailure:
        """The error for a write that `failed`: too many replicas answered with an error."""
        return WriteFailure(self.level, self.received, self.required, len(self._failed), self.write_type)

    def __repr__(self) -> str:
        return (
            f"WriteHandler({self.level}, required={self.required}, acked={len(self._acked)}, "
            f"failed={len(self._failed)}, hinted={len(self._hinted)})"
        )
