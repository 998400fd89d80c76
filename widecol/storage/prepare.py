"""Preparing a batch of mutations for the engine: validation, the commit log record, and the packed form.

How this works. Every mutation is checked (well-typed, sorted, sizes in range) and packed as the commit log carries
it, outside the engine's lock. prepare() does this for any mutation in one pass over its cells and one msgpack call;
when its rows can be held in packed form (memtable.py) it also cuts the fragment the memtable keeps and the flush
writes, out of the same packed bytes, and sums the statistics the SSTable will record. prepare_plain() is the fast
path for a batch of plain INSERTs built by Mutation.put, which did the checks as it built them (mutation.plain):
no Python work per cell, a few passes in C over the whole batch. Both produce the same commit log bytes
(docs/formats.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import msgpack

from widecol.errors import InvalidRequest
from widecol.storage.memtable import EMPTY_STATS, PACKED_OVERHEAD, packed_size
from widecol.storage.mutation import Mutation
from widecol.storage.sstable.format import BLOCK_TARGET
from widecol.storage.token import partition_sort_key

_NO_TS = 1 << 63
_HEAD_BYTES: dict[str, int] = {}  # table id -> bytes of 0x95 and the packed table id


def validate(m: Mutation) -> None:
    """Raise InvalidRequest unless M is well formed: the engine never logs what it could not apply."""
    key = m.key
    if type(key) is not bytes or not key:
        raise InvalidRequest("Key may not be empty")
    if len(key) > 0xFFFF:
        raise InvalidRequest(f"Key length of {len(key)} is longer than maximum of 65535")
    try:
        ok = m.deletion is None or _is_deletion(m.deletion)
        for start, end, ts, ldt in m.ranges:
            ok = ok and (start is None or type(start) is bytes) and (end is None or type(end) is bytes)
            ok = ok and type(ts) is int and type(ldt) is int
        for ck, rowdel, cells in m.rows:
            ok = ok and type(ck) is bytes and (rowdel is None or _is_deletion(rowdel))
            for colkey, ts, value, ldt, ttl in cells:
                if not (
                    type(colkey) is bytes and type(ts) is int and type(ldt) is int and type(ttl) is int
                    and (value is None or type(value) is bytes) and ttl >= 0
                ):
                    ok = False
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidRequest(f"malformed mutation for table {m.table_id}")


def prepare(m: Mutation, pack: Callable[[Any], bytes] = msgpack.packb) -> tuple[bytes, int, bytes | None, tuple]:
    """validate(M), then M packed as the commit log carries it (msgpack of its wire form) and, when its rows can
    be held in packed form (memtable.py), what memtable.apply needs for that: (packed, packed_size, fragment,
    fragment_stats), in one pass over the cells and one msgpack call; else (packed, -1, None, EMPTY_STATS)."""
    key = m.key
    if m.deletion is not None or m.ranges or type(key) is not bytes or not key or len(key) > 0xFFFF:
        validate(m)
        return pack(m.to_wire()), -1, None, EMPTY_STATS
    canonical = True
    prev_ck = None
    ok = True
    cells_count = tombstones = ttl_cells = max_ldt = 0
    min_ts, max_ts = _NO_TS, -_NO_TS
    rows = m.rows
    try:
        for ck, rowdel, cells in rows:
            if type(ck) is not bytes or (rowdel is not None and not _is_deletion(rowdel)):
                ok = False
                break
            if prev_ck is not None and ck <= prev_ck:
                canonical = False
            elif rowdel is not None:
                tombstones += 1
                min_ts, max_ts = min(min_ts, rowdel[0]), max(max_ts, rowdel[0])
                max_ldt = max(max_ldt, rowdel[1])
            prev_ck = ck
            prev = None
            for colkey, ts, value, ldt, ttl in cells:
                if not (
                    type(colkey) is bytes and type(ts) is int and type(ldt) is int and type(ttl) is int
                    and (value is None or type(value) is bytes) and ttl >= 0
                ):
                    ok = False
                    break
                if prev is not None and colkey <= prev:
                    canonical = False
                if ts < min_ts:
                    min_ts = ts
                if ts > max_ts:
                    max_ts = ts
                if ldt > max_ldt:
                    max_ldt = ldt
                if value is None:
                    tombstones += 1
                elif ttl:
                    ttl_cells += 1
                prev = colkey
            cells_count += len(cells)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise InvalidRequest(f"malformed mutation for table {m.table_id}")
    table_id = m.table_id
    packed = pack([table_id, key, None, [], rows])
    if not canonical:
        return packed, -1, None, EMPTY_STATS
    # packed is 0x95, table id, key, nil, empty array, rows; the fragment [None, [], rows] is 0x93 and the rest.
    head = _HEAD_BYTES.get(table_id)
    if head is None:
        head = _HEAD_BYTES[table_id] = len(msgpack.packb(table_id)) + 1
    fragment = b"\x93" + packed[head + (2 if len(key) < 256 else 3) + len(key):]
    if len(fragment) > BLOCK_TARGET and len(rows) > 1:  # too big for one fragment (memtable.pack_fragment)
        return packed, -1, None, EMPTY_STATS
    stats = (len(rows), cells_count, tombstones, ttl_cells, min_ts, max_ts, max_ldt)
    return packed, packed_size(key, fragment), fragment, stats


def prepare_plain(mutations: Sequence[Mutation], pack: Callable[[Any], bytes] = msgpack.packb) -> tuple | None:
    """The fast path of a batch of INSERTs: when every mutation of MUTATIONS has a put() summary (mutation.plain),
    all to one table, keys of 1 to 255 bytes, return (table_id, payload, sort keys, parts, size, stats): the
    commit log payload (the same bytes as the general path's), and what Memtable.apply_packed takes; else None
    (then prepare() each). It does no Python work per cell and, per mutation, one msgpack call and one token."""
    if not mutations:
        return None
    table_id = mutations[0].table_id
    if type(table_id) is not str:
        return None
    head = _HEAD_BYTES.get(table_id)
    if head is None:
        head = _HEAD_BYTES[table_id] = len(msgpack.packb(table_id)) + 1
    head += 2  # the key's bin 8 header
    # Passes in C (comprehensions, map) rather than one Python loop: this is every INSERT's path.
    plains = [m.plain for m in mutations]
    keys = [m.key for m in mutations]
    if (
        None in plains or {type(k) for k in keys} != {bytes} or min(map(len, keys)) == 0
        or max(map(len, keys)) > 255 or [m.table_id for m in mutations].count(table_id) != len(mutations)
    ):
        return None
    packed = [pack((table_id, m.key, None, (), m.rows)) for m in mutations]  # tuples pack as arrays
    # packed is 0x95, table id, key, nil, empty array, rows; the fragment [None, [], rows] is 0x93 and the rest
    fragments = [b"\x93" + p[head + len(k):] for k, p in zip(keys, packed, strict=True)]
    sks = list(map(partition_sort_key, keys))
    timestamps, ldts, ttls, cells, tombstones = zip(*plains, strict=True)
    n = len(plains)
    cells_count = sum(cells)
    tombstone_count = sum(tombstones)
    ttl_cells = sum(c - t for c, t, ttl in zip(cells, tombstones, ttls, strict=True) if ttl) if any(ttls) else 0
    size = n * PACKED_OVERHEAD + 2 * sum(map(len, keys)) + sum(map(len, fragments))  # memtable.packed_size
    stats = (n, cells_count, tombstone_count, ttl_cells, min(timestamps), max(timestamps), max(0, *ldts))
    packed.insert(0, array_header(n))
    return table_id, b"".join(packed), sks, list(zip(keys, fragments, strict=True)), size, stats


def array_header(n: int) -> bytes:
    """msgpack's header of an array of N items."""
    if n < 16:
        return bytes((0x90 | n,))
    return b"\xdc" + n.to_bytes(2, "big") if n < 0x10000 else b"\xdd" + n.to_bytes(4, "big")


def _is_deletion(d: Any) -> bool:
    return len(d) == 2 and type(d[0]) is int and type(d[1]) is int
