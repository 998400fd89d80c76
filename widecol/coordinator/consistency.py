"""Consistency levels: their protocol codes, how many replicas each needs, and the check made before sending.

How this works. A level is named by its upper-case string ("LOCAL_QUORUM"); `level()` accepts a name or the
native protocol code. `block_for` is Cassandra's count of replica responses that satisfy the level, from the
replication factor per data centre (for SimpleStrategy pass {local_dc: rf}). Writes to a range that is moving
also go to its pending endpoints, and each pending endpoint raises the count by one (for LOCAL_* only the
local-DC ones), as Cassandra's blockForWrite does, so a write that succeeds is on enough replicas whichever way
the move ends. `assure_sufficient_live` raises Unavailable before anything is sent, with `required` and `alive`
counted as Cassandra counts them: LOCAL_* count local-DC replicas only, EACH_QUORUM checks every DC on its own,
and ANY writes need nobody alive because the coordinator can always store a hint.

Everything here is pure: no clock, no I/O. Endpoints are any hashable value.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping

from widecol.errors import InvalidRequest, Unavailable

CODES: dict[str, int] = {
    "ANY": 0x0000,
    "ONE": 0x0001,
    "TWO": 0x0002,
    "THREE": 0x0003,
    "QUORUM": 0x0004,
    "ALL": 0x0005,
    "LOCAL_QUORUM": 0x0006,
    "EACH_QUORUM": 0x0007,
    "SERIAL": 0x0008,
    "LOCAL_SERIAL": 0x0009,
    "LOCAL_ONE": 0x000A,
}
_BY_CODE = {c: name for name, c in CODES.items()}
LOCAL_LEVELS = frozenset({"LOCAL_ONE", "LOCAL_QUORUM", "LOCAL_SERIAL"})
SERIAL_LEVELS = frozenset({"SERIAL", "LOCAL_SERIAL"})

DcOf = Callable[[str], str]  # endpoint -> its data centre


def level(name_or_code: str | int) -> str:
    """The canonical name of a level given by name (any case) or native protocol code; InvalidRequest if none."""
    if isinstance(name_or_code, bool):
        raise InvalidRequest(f"Unknown consistency level {name_or_code!r}")
    if isinstance(name_or_code, int):
        name = _BY_CODE.get(name_or_code)
        if name is None:
            raise InvalidRequest(f"Unknown consistency level code 0x{name_or_code:04x}")
        return name
    if isinstance(name_or_code, str) and name_or_code.upper() in CODES:
        return name_or_code.upper()
    raise InvalidRequest(f"Unknown consistency level {name_or_code!r}")


def code(name: str) -> int:
    """The native protocol code of level NAME."""
    return CODES[level(name)]


def is_local(lvl: str) -> bool:
    """Whether LVL counts local-DC replicas only."""
    return lvl in LOCAL_LEVELS


def quorum(rf: int) -> int:
    return rf // 2 + 1


def block_for(lvl: str, rf_by_dc: Mapping[str, int], local_dc: str) -> int:
    """How many replica responses satisfy LVL, pending endpoints not counted (reads use this as is)."""
    lvl = level(lvl)
    total = sum(rf_by_dc.values())
    if lvl in ("ANY", "ONE", "LOCAL_ONE"):
        return 1
    if lvl == "TWO":
        return 2
    if lvl == "THREE":
        return 3
    if lvl in ("QUORUM", "SERIAL"):
        return quorum(total)
    if lvl == "ALL":
        return total
    if lvl in ("LOCAL_QUORUM", "LOCAL_SERIAL"):
        return quorum(rf_by_dc.get(local_dc, 0))
    # EACH_QUORUM: a quorum in every data centre that holds replicas.
    return sum(quorum(rf) for rf in rf_by_dc.values() if rf > 0)


def dc_required(lvl: str, rf_by_dc: Mapping[str, int], pending: Iterable = (), dc_of: DcOf | None = None) -> dict:
    """For EACH_QUORUM: the responses each DC must give, its quorum plus its pending endpoints."""
    need = {dc: quorum(rf) for dc, rf in rf_by_dc.items() if rf > 0}
    if dc_of is not None:
        for endpoint in pending:
            dc = dc_of(endpoint)
            need[dc] = need.get(dc, 0) + 1
    return need


def block_for_write(
    lvl: str, rf_by_dc: Mapping[str, int], local_dc: str, pending: Collection = (), dc_of: DcOf | None = None
) -> int:
    """block_for plus the pending endpoints the level counts: none for ANY, local-DC ones for LOCAL_*, all else."""
    lvl = level(lvl)
    n = block_for(lvl, rf_by_dc, local_dc)
    if lvl == "ANY" or not pending:
        return n
    if is_local(lvl):
        if dc_of is None:
            raise ValueError("dc_of is needed to count local pending endpoints")
        return n + sum(1 for e in pending if dc_of(e) == local_dc)
    return n + len(pending)


def validate_for_read(lvl: str) -> str:
    lvl = level(lvl)
    if lvl == "ANY":
        raise InvalidRequest("ANY ConsistencyLevel is only supported for writes")
    if lvl in SERIAL_LEVELS:
        raise InvalidRequest(f"Consistency level {lvl} is not supported: widecol has no lightweight transactions")
    return lvl


def validate_for_write(lvl: str) -> str:
    lvl = level(lvl)
    if lvl in SERIAL_LEVELS:
        raise InvalidRequest(f"Consistency level {lvl} is not supported: widecol has no lightweight transactions")
    return lvl


def assure_sufficient_live(
    lvl: str,
    replicas: Iterable,
    live: Collection,
    dc_of: DcOf,
    local_dc: str,
    rf_by_dc: Mapping[str, int],
    for_write: bool,
    pending: Collection = (),
) -> None:
    """Raise Unavailable unless enough of REPLICAS (natural, plus PENDING for a write) are in LIVE for LVL.

    Raises InvalidRequest for a level the operation does not support (ANY reads, SERIAL levels).
    """
    lvl = validate_for_write(lvl) if for_write else validate_for_read(lvl)
    if lvl == "ANY":
        return  # a hint stored by the coordinator satisfies ANY
    candidates = list(dict.fromkeys(replicas))
    if for_write:
        candidates.extend(e for e in dict.fromkeys(pending) if e not in candidates)
    else:
        pending = ()
    alive = [e for e in candidates if e in live]
    if lvl == "EACH_QUORUM":
        per_dc: dict[str, int] = {}
        for e in alive:
            per_dc[dc_of(e)] = per_dc.get(dc_of(e), 0) + 1
        for dc, need in sorted(dc_required(lvl, rf_by_dc, pending, dc_of).items()):
            if per_dc.get(dc, 0) < need:
                raise Unavailable(lvl, need, per_dc.get(dc, 0))
        return
    required = block_for_write(lvl, rf_by_dc, local_dc, pending, dc_of) if for_write else block_for(
        lvl, rf_by_dc, local_dc
    )
    count = sum(1 for e in alive if dc_of(e) == local_dc) if is_local(lvl) else len(alive)
    if count < required:
        raise Unavailable(lvl, required, count)
