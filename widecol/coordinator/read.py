"""Reads at a consistency level: whom to ask, digests, reconciliation and the read-repair mutations.

How this works. A replica answers a data read with its raw partition in mutation wire form
[table_id, key, deletion, ranges, rows], tombstones included (`wire_of_raw` builds it from Table.read_raw), or
with its 16-byte `digest`. The digest is an MD5 of the partition's canonical form: rows sorted by clustering,
cells by column key, range tombstones deduplicated and sorted, and whatever a deletion of the same partition
shadows left out (storage.merge.purge with nothing purged), so replicas holding the same data agree however
they received it.

`ReadHandler` asks the first live replica (in the caller's preference order, local DC only for LOCAL_*, a quorum
per DC for EACH_QUORUM) for data and the next `block_for - 1` for digests. When all of them have answered, the
state is "match" if every digest equals the data's, else "mismatch": the caller then asks every contacted
endpoint for data and calls `resolve`. Any failure among the contacted is "failed", since exactly `block_for`
endpoints are contacted.

`resolve` merges the versions with storage.merge.merge_versions (the one merge rule, storage.cells.reconcile)
and canonicalises the result. For each endpoint it then sends only what that endpoint lacks: the partition
deletion if the merged one is newer, the range tombstones it does not hold, newer row deletions, and the cells
where reconcile(its cell, merged cell) is not its own cell. Applying that mutation (merge by the same rule) makes
the endpoint's canonical form equal to the merged one; an endpoint already equal gets no entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable, Mapping

import msgpack

from widecol.coordinator.consistency import (
    DcOf,
    assure_sufficient_live,
    block_for,
    is_local,
    quorum,
    validate_for_read,
)
from widecol.errors import ReadFailure, ReadTimeout
from widecol.storage.cells import newer_deletion, reconcile
from widecol.storage.merge import RawPartition, merge_versions, purge
from widecol.storage.token import partition_sort_key

_FLOOR = -(1 << 62)  # a local time before every ldt: nothing expires, nothing is purged

Canonical = tuple  # (deletion, ranges sorted and unique, rows sorted: [(ck, row deletion, cells dict)])
_EMPTY: Canonical = (None, [], [])

# ---------------------------------------------------------------------------------------------------------------
# Wire form <-> versions


def _deletion(d: object) -> tuple | None:
    return None if d is None else (d[0], d[1])  # type: ignore[index]


def _version(wire: list) -> tuple:
    """A partition (or mutation) in wire form as a version for merge_versions: fresh tuples and dicts."""
    _table_id, _key, deletion, ranges, rows = wire
    out_rows = []
    for ck, rowdel, cells in rows:
        merged: dict = {}
        for colkey, ts, value, ldt, ttl in cells:
            cell = (ts, value, ldt, ttl)
            old = merged.get(colkey)
            merged[colkey] = cell if old is None else reconcile(old, cell)
        out_rows.append((ck, _deletion(rowdel), merged))
    return _deletion(deletion), [(s, e, ts, ldt) for s, e, ts, ldt in ranges], out_rows


def _range_order(r: tuple) -> tuple:
    return (r[0] is not None, r[0] or b"", r[1] is None, r[1] or b"", r[2], r[3])


def _canonical(versions: Iterable[tuple]) -> Canonical:
    """VERSIONS merged by the one rule, with what its own deletions shadow left out, in a canonical order."""
    kept = purge(merge_versions(versions), _FLOOR, None)
    if kept is None:
        return _EMPTY
    deletion, ranges, rows = kept
    return deletion, sorted(set(ranges), key=_range_order), rows


def _to_wire(table_id: str, key: bytes, part: Canonical) -> list:
    deletion, ranges, rows = part
    return [
        table_id,
        key,
        None if deletion is None else list(deletion),
        [list(r) for r in ranges],
        [
            [ck, None if rowdel is None else list(rowdel), [[col, *cells[col]] for col in sorted(cells)]]
            for ck, rowdel, cells in rows
        ],
    ]


def canonical(wire: list) -> list:
    """WIRE in canonical form: what digest hashes and resolve returns. Equal data, equal lists."""
    return _to_wire(wire[0], wire[1], _canonical([_version(wire)]))


def empty_partition(table_id: str, key: bytes) -> list:
    return [table_id, key, None, [], []]


def wire_of_raw(table_id: str, key: bytes, raw: RawPartition) -> list:
    """A replica's answer: Table.read_raw's raw partition (deletion, ranges, rows dict) in canonical wire form."""
    deletion, ranges, rows = raw
    version = (
        _deletion(deletion),
        [tuple(r) for r in ranges],
        [(ck, _deletion(rowdel), dict(cells)) for ck, (rowdel, cells) in rows.items()],
    )
    return _to_wire(table_id, key, _canonical([version]))


def raw_of_wire(wire: list) -> RawPartition:
    """WIRE as a raw partition (deletion, ranges, rows dict) for storage.merge.live_row and friends."""
    deletion, ranges, rows = _version(wire)
    return deletion, ranges, {ck: [rowdel, cells] for ck, rowdel, cells in rows}


def digest(partition_wire: list) -> bytes:
    """16 bytes that are equal for partitions with equal canonical forms, whatever the order of their lists."""
    packed = msgpack.packb(canonical(partition_wire), use_bin_type=True)
    return hashlib.md5(packed, usedforsecurity=False).digest()


# ---------------------------------------------------------------------------------------------------------------
# Reconciliation and repair


def _missing(mine: Canonical, merged: Canonical) -> Canonical | None:
    """The smallest version that, merged into MINE, gives MERGED; None if MINE lacks nothing."""
    m_del, m_ranges, m_rows = merged
    e_del, e_ranges, e_rows = mine
    deletion = m_del if m_del is not None and newer_deletion(e_del, m_del) != e_del else None
    have = set(e_ranges)
    ranges = [r for r in m_ranges if r not in have]
    by_ck = {ck: (rowdel, cells) for ck, rowdel, cells in e_rows}
    rows = []
    for ck, rowdel, cells in m_rows:
        e_rowdel, e_cells = by_ck.get(ck, (None, {}))
        rd = rowdel if rowdel is not None and newer_deletion(e_rowdel, rowdel) != e_rowdel else None
        out = {}
        for col, cell in cells.items():
            mine_cell = e_cells.get(col)
            if mine_cell is None or reconcile(mine_cell, cell) != mine_cell:
                out[col] = cell
        if rd is not None or out:
            rows.append((ck, rd, out))
    if deletion is None and not ranges and not rows:
        return None
    return deletion, ranges, rows


def resolve(responses: Mapping[str, list]) -> tuple[list, dict]:
    """Merge the data responses of one partition; return (merged wire, {endpoint: repair mutation wire}).

    The merged wire is canonical and keeps tombstones (storage.merge.live_row gives what the client sees).
    Endpoints that already hold the merged state get no repair. Cost: linear in the cells of all responses.
    """
    if not responses:
        raise ValueError("resolve needs at least one response")
    first = next(iter(responses.values()))
    table_id, key = first[0], first[1]
    for wire in responses.values():
        if wire[0] != table_id or wire[1] != key:
            raise ValueError("responses are for different partitions")
    mine = {endpoint: _canonical([_version(wire)]) for endpoint, wire in responses.items()}
    merged = _canonical(_version(wire) for wire in responses.values())
    repairs = {}
    for endpoint, part in mine.items():
        diff = _missing(part, merged)
        if diff is not None:
            repairs[endpoint] = _to_wire(table_id, key, diff)
    return _to_wire(table_id, key, merged), repairs


def resolve_many(responses: Mapping[str, list[list]]) -> tuple[list[list], dict]:
    """resolve for a range read: each endpoint answered a list of partitions over the same range.

    A partition missing from an endpoint's list counts as empty there. Returns (merged partitions in token order,
    leaving out those with nothing at all, {endpoint: [repair mutation wire, ...]}).
    """
    by_key: dict[bytes, dict] = {}
    for endpoint, partitions in responses.items():
        for wire in partitions:
            by_key.setdefault(wire[1], {})[endpoint] = wire
    merged_out = []
    repairs: dict = {}
    for key in sorted(by_key, key=partition_sort_key):
        present = by_key[key]
        table_id = next(iter(present.values()))[0]
        full = {e: present.get(e) or empty_partition(table_id, key) for e in responses}
        merged, part_repairs = resolve(full)
        if merged[2] is not None or merged[3] or merged[4]:
            merged_out.append(merged)
        for endpoint, mutation in part_repairs.items():
            repairs.setdefault(endpoint, []).append(mutation)
    return merged_out, repairs


# ---------------------------------------------------------------------------------------------------------------
# The read handler


class ReadHandler:
    """The decisions of one single-partition read at one consistency level. Pure: no clock, no I/O."""

    def __init__(
        self,
        level: str,
        replicas: Iterable,
        *,
        live: Collection,
        dc_of: DcOf,
        local_dc: str,
        rf_by_dc: Mapping[str, int],
    ) -> None:
        self.level = validate_for_read(level)
        replicas = list(dict.fromkeys(replicas))
        assure_sufficient_live(self.level, replicas, live, dc_of, local_dc, rf_by_dc, False)
        self.required = block_for(self.level, rf_by_dc, local_dc)
        candidates = [e for e in replicas if e in live]
        if is_local(self.level):
            candidates = [e for e in candidates if dc_of(e) == local_dc]
        if self.level == "EACH_QUORUM":
            need = {dc: quorum(rf) for dc, rf in rf_by_dc.items() if rf > 0}
            contacts = []
            for e in candidates:
                dc = dc_of(e)
                if need.get(dc, 0) > 0:
                    contacts.append(e)
                    need[dc] -= 1
        else:
            contacts = candidates[: self.required]
        self.contacts: list = contacts
        self.data_endpoint = contacts[0]
        self.digest_endpoints: list = contacts[1:]
        self._contact_set = frozenset(contacts)
        self._data: dict = {}
        self._digests: dict = {}
        self._failed: set = set()

    def on_data(self, endpoint: object, wire: list) -> None:
        """ENDPOINT answered with data (normally the data endpoint; any contact's data also stands as its digest)."""
        if endpoint in self._contact_set and endpoint not in self._failed:
            self._data[endpoint] = wire
            self._digests[endpoint] = digest(wire)

    def on_digest(self, endpoint: object, digest_bytes: bytes) -> None:
        if endpoint in self._contact_set and endpoint not in self._failed and endpoint not in self._data:
            self._digests[endpoint] = digest_bytes

    def on_failure(self, endpoint: object) -> None:
        if endpoint in self._contact_set and endpoint not in self._digests:
            self._failed.add(endpoint)

    @property
    def received(self) -> int:
        return len(self._digests)

    @property
    def state(self) -> str:
        """"waiting", then "match" or "mismatch" once every contact answered, or "failed" if one cannot."""
        if self._failed:
            return "failed"
        if len(self._digests) < len(self.contacts):
            return "waiting"
        if not self._data:
            return "waiting"  # only possible if the data endpoint sent a digest: the caller still owes data
        return "match" if len(set(self._digests.values())) == 1 else "mismatch"

    def result(self) -> list:
        """The data response, when the state is "match"."""
        if self.state != "match":
            raise RuntimeError(f"no result in state {self.state}")
        return self._data.get(self.data_endpoint) or next(iter(self._data.values()))

    def full_read_endpoints(self) -> list:
        """When "mismatch": every contacted endpoint; ask each for data and pass the answers to resolve."""
        return list(self.contacts)

    def timeout_error(self) -> ReadTimeout:
        return ReadTimeout(self.level, self.received, self.required, bool(self._data))

    def failure_error(self) -> ReadFailure:
        """The error for a read that `failed`: a contacted replica answered with an error."""
        return ReadFailure(self.level, self.received, self.required, len(self._failed), bool(self._data))

    def __repr__(self) -> str:
        return f"ReadHandler({self.level}, contacts={len(self.contacts)}, received={self.received})"


def complete_prefix(answers: Mapping[str, tuple[list, bool]]) -> tuple[dict[str, list], bytes | None]:
    """Range-read ANSWERS (endpoint -> (partition wires in token order, whether it had more)) cut to what every
    answer covers: a replica that had more than a chunk is complete only up to its last partition, so partitions
    past the earliest such last one are left out of every answer. Returns the cut answers and the sort key of the
    cut (None when every answer was complete)."""
    cut = None
    for wires, more in answers.values():
        if more and wires:
            last = partition_sort_key(wires[-1][1])
            cut = last if cut is None or last < cut else cut
    return {e: [w for w in wires if cut is None or partition_sort_key(w[1]) <= cut]
            for e, (wires, _more) in answers.items()}, cut
