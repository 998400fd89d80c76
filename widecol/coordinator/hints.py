"""The hint store: durable per-target queues of mutations a replica missed, and their replay bookkeeping.

How this works. A coordinator that could not deliver a write to a replica (down, or timed out) keeps a hint: the
mutation in its wire form and the time it was created. Each target host has a folder `<directory>/<target>/` of
append-only segment files `<segment id, 16 digits>.hints`; a hint is one record (marker, length, header CRC, payload
CRC, msgpack `[created_at, mutation_wire]`), written with one os.write and fsynced before `add` returns (writers on
other threads share fsyncs). A hint's id is its position, `segment_id << 40 | offset`, so ids grow in the order hints
were stored.

Delivery is the caller's: `replay(target)` yields batches of pending hints in order (skipping, and counting, hints
older than their table's gc_grace_seconds), and `acknowledge(target, ids)` marks delivered ones. Acknowledgements are
made durable in `<target>/progress`, replaced atomically (tmp + fsync + rename): a watermark (every id below it is
done) and the intervals of done ids above it, so the record stays small however the caller orders its
acknowledgements. A segment whose hints are all done is deleted, after the progress that says so is durable.

Opening scans every segment of every target, verifying each record; a corrupt record is logged with file and offset
and skipped, and the scan resynchronises on the next record marker whose header CRC holds, so one bad byte costs one
hint. New hints always go to a fresh segment, never after a possibly torn tail. docs/hints.md has the byte layout.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import msgpack

log = logging.getLogger(__name__)

MAGIC = b"WCHT"
VERSION = 1
_HEADER = struct.Struct(">4sB3xQ")  # magic, version, reserved, segment id
_HEADER_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size + _HEADER_CRC.size  # 20
RECORD_MARKER = b"WHNT"
_RECORD = struct.Struct(">4sIII")  # marker, payload length, crc32(marker + length), crc32(payload)
RECORD_HEADER_SIZE = _RECORD.size  # 16
MAX_RECORD = 64 * 1024 * 1024
PROGRESS_MAGIC = b"WCHP"
_PROGRESS = struct.Struct(">4sBxxxI")  # magic, version, reserved, crc32(payload)
PROGRESS_NAME = "progress"
OFFSET_BITS = 40
_OFFSET_MASK = (1 << OFFSET_BITS) - 1
_NAME = re.compile(r"^(\d{16})\.hints$")


def hint_id(segment_id: int, offset: int) -> int:
    return (segment_id << OFFSET_BITS) | offset


def should_hint(down_since: float | None, now: float, max_window_s: float) -> bool:
    """Whether a write that missed a replica should be hinted, as Cassandra's max_hint_window: yes for a replica
    that is up (it timed out, DOWN_SINCE is None) or has been down for at most MAX_WINDOW_S seconds."""
    return down_since is None or now - down_since <= max_window_s


@dataclass(frozen=True, slots=True)
class Hint:
    """One stored hint. `id` orders hints of a target in the order they were stored."""

    id: int
    mutation_wire: list
    created_at: float


@dataclass(frozen=True)
class HintStatistics:
    """Counters since open (stored ... corrupt) and the state on disk now (pending, bytes_on_disk, segments)."""

    stored: int
    replayed: int
    acknowledged: int
    expired: int
    corrupt: int
    pending: dict[str, int]
    bytes_on_disk: int
    segments: int

    @property
    def total_pending(self) -> int:
        return sum(self.pending.values())


def encode_record(payload: bytes) -> bytes:
    head = RECORD_MARKER + struct.pack(">I", len(payload))
    return head + struct.pack(">II", zlib.crc32(head), zlib.crc32(payload)) + payload


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _record_at(data: bytes, offset: int) -> tuple[int, int] | None:
    """(payload length, payload crc) if a record header with a valid header CRC starts at OFFSET."""
    if len(data) - offset < RECORD_HEADER_SIZE:
        return None
    marker, length, head_crc, payload_crc = _RECORD.unpack_from(data, offset)
    if marker != RECORD_MARKER or zlib.crc32(data[offset : offset + 8]) != head_crc or length > MAX_RECORD:
        return None
    return length, payload_crc


def _decode(data: bytes, offset: int, path: Path) -> tuple[float, list, int] | None:
    """(created_at, mutation_wire, payload length) of the record at OFFSET, or None (logged) if it is not valid."""
    header = _record_at(data, offset)
    if header is None:
        log.warning("hints %s: corrupt record header at offset %d", path, offset)
        return None
    length, crc = header
    start = offset + RECORD_HEADER_SIZE
    payload = data[start : start + length]
    if len(payload) < length:
        log.warning("hints %s: torn record at offset %d (%d of %d bytes)", path, offset, len(payload), length)
        return None
    if zlib.crc32(payload) != crc:
        log.warning("hints %s: CRC mismatch at offset %d; record skipped", path, offset)
        return None
    try:
        item = msgpack.unpackb(payload)
        created_at, wire = item
        if not isinstance(created_at, int | float) or not isinstance(wire, list):
            raise ValueError("not [created_at, mutation]")
    except (ValueError, TypeError, msgpack.UnpackException) as e:
        log.warning("hints %s: undecodable record at offset %d (%s); skipped", path, offset, e)
        return None
    return float(created_at), wire, length


def scan_segment(path: Path, segment_id: int) -> tuple[list[int], int]:
    """The offsets of the valid records of one segment file, and the file's size. Never raises on bad bytes:
    each problem is logged with the file and offset, and the scan resumes at the next valid record header."""
    data = path.read_bytes()
    if len(data) < HEADER_SIZE:
        log.warning("hints %s: header torn at offset 0 (%d bytes); no records", path, len(data))
        return [], len(data)
    magic, version, sid = _HEADER.unpack_from(data)
    (crc,) = _HEADER_CRC.unpack_from(data, _HEADER.size)
    if magic != MAGIC or version != VERSION or crc != zlib.crc32(data[: _HEADER.size]) or sid != segment_id:
        log.warning("hints %s: bad segment header at offset 0; reading records anyway", path)
    offsets: list[int] = []
    offset = HEADER_SIZE
    while offset < len(data):
        header = _record_at(data, offset)
        end = offset + RECORD_HEADER_SIZE + header[0] if header is not None else -1
        if header is not None and end <= len(data):
            if _decode(data, offset, path) is not None:
                offsets.append(offset)
            offset = end  # the header CRC vouches for the length, so skip exactly this record
            continue
        what = "torn record" if header is not None else "corrupt record header"
        resume = data.find(RECORD_MARKER, offset + 1)
        while resume >= 0 and _record_at(data, resume) is None:
            resume = data.find(RECORD_MARKER, resume + 1)
        if resume < 0:
            log.warning("hints %s: %s at offset %d; rest of file (%d bytes) dropped",
                        path, what, offset, len(data) - offset)
            break
        log.warning("hints %s: %s at offset %d; resynchronised at offset %d", path, what, offset, resume)
        offset = resume
    return offsets, len(data)


class _Segment:
    """One segment file: the offsets of its valid records and which of them are done (delivered or skipped)."""

    __slots__ = ("id", "path", "fd", "size", "offsets", "done", "ndone", "first")

    def __init__(self, segment_id: int, path: Path, fd: int | None, size: int, offsets: list[int]) -> None:
        self.id = segment_id
        self.path = path
        self.fd = fd
        self.size = size
        self.offsets = offsets
        self.done = bytearray(len(offsets))
        self.ndone = 0
        self.first = 0  # index of the first record not done

    @property
    def pending(self) -> int:
        return len(self.offsets) - self.ndone

    def runs(self) -> Iterator[tuple[int, int, int]]:
        """(done flag, first id, last id) of each run of records with the same flag, in order."""
        index, count = 0, len(self.offsets)
        while index < count:
            flag = self.done[index]
            end = self.done.find(1 - flag, index)
            end = count if end < 0 else end
            yield flag, hint_id(self.id, self.offsets[index]), hint_id(self.id, self.offsets[end - 1])
            index = end

    def mark(self, index: int) -> bool:
        if self.done[index]:
            return False
        self.done[index] = 1
        self.ndone += 1
        if index == self.first:
            found = self.done.find(0, index)
            self.first = found if found >= 0 else len(self.offsets)
        return True


class _Target:
    __slots__ = ("name", "path", "segments", "active", "next_segment")

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        self.path = path
        self.segments: dict[int, _Segment] = {}  # in id order: ids only grow
        self.active: _Segment | None = None
        self.next_segment = 1

    def pending(self) -> int:
        return sum(s.pending for s in self.segments.values())


def _target_dirname(target: str) -> str:
    if not isinstance(target, str) or target in ("", ".", ".."):
        raise ValueError(f"bad hint target {target!r}")
    return quote(target, safe="")


class HintStore:
    """The hints of one node, in DIRECTORY. Thread-safe; every method does blocking file I/O.

    With fsync=False nothing is fsynced: a stored hint survives the process being killed, not a power loss.
    """

    def __init__(self, directory: str | Path, fsync: bool = True, segment_bytes: int = 8 * 1024 * 1024) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sync_cond = threading.Condition()
        self._syncing = False
        self._written = 0  # records written, and of those, covered by an fsync
        self._synced = 0
        self._dirty: set[_Segment] = set()
        self._targets: dict[str, _Target] = {}
        self._closed = False
        self._stored = self._replayed = self._acknowledged = self._expired = self._corrupt = 0
        for path in sorted(self.directory.iterdir()):
            if path.is_dir():
                self._open_target(unquote(path.name), path)

    # -- opening ---------------------------------------------------------------------------------------------------

    def _open_target(self, name: str, path: Path) -> None:
        state = _Target(name, path)
        (path / (PROGRESS_NAME + ".tmp")).unlink(missing_ok=True)
        watermark, intervals = self._read_progress(path / PROGRESS_NAME)
        for file in sorted(path.iterdir()):
            m = _NAME.match(file.name)
            if not m:
                continue
            segment_id = int(m.group(1))
            state.next_segment = max(state.next_segment, segment_id + 1)
            try:
                offsets, size = scan_segment(file, segment_id)
            except OSError as e:
                log.error("hints %s: unreadable (%s); left in place and ignored", file, e)
                continue
            segment = _Segment(segment_id, file, None, size, offsets)
            for index, offset in enumerate(offsets):
                hid = hint_id(segment_id, offset)
                i = bisect_right(intervals, hid)
                if hid < watermark or i % 2 == 1 or (i > 0 and intervals[i - 1] == hid):
                    segment.mark(index)
            state.segments[segment_id] = segment
        # ids are never reused: a new segment sorts above every id the progress record speaks of
        above_watermark = (watermark >> OFFSET_BITS) + (1 if watermark & _OFFSET_MASK else 0)
        above_intervals = (intervals[-1] >> OFFSET_BITS) + 1 if intervals else 0
        state.next_segment = max(state.next_segment, above_watermark, above_intervals)
        self._targets[name] = state
        self._delete_done_segments(state)

    @staticmethod
    def _read_progress(path: Path) -> tuple[int, list[int]]:
        """(watermark, flat sorted list of inclusive [start, end] intervals); no progress if missing or bad."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return 0, []
        try:
            magic, version, crc = _PROGRESS.unpack_from(data)
            payload = data[_PROGRESS.size :]
            if magic != PROGRESS_MAGIC or version != VERSION or zlib.crc32(payload) != crc:
                raise ValueError("bad magic, version or CRC")
            watermark, intervals = msgpack.unpackb(payload)
            if not isinstance(watermark, int) or not all(isinstance(x, int) for x in intervals):
                raise ValueError("not [watermark, intervals]")
            return watermark, list(intervals)
        except (ValueError, TypeError, struct.error, msgpack.UnpackException) as e:
            log.warning("hints %s: corrupt progress record at offset 0 (%s); its hints will be replayed", path, e)
            return 0, []

    # -- adding ----------------------------------------------------------------------------------------------------

    def add(self, target: str, mutation_wire: list, created_at: float) -> None:
        """Store a hint for TARGET. When this returns it is fsynced (with fsync=True). Cost: one write and one
        fsync, shared with adds on other threads that overlap it."""
        self.add_many([(target, mutation_wire, created_at)])

    def add_many(self, hints: Iterable[tuple[str, list, float]], sync: bool = True) -> None:
        """Store many (target, mutation_wire, created_at) hints with one fsync per file touched. With sync=False
        they have reached the operating system when this returns, and `sync()` makes them durable."""
        records = [(_target_dirname(t), t, encode_record(msgpack.packb([c, m]))) for t, m, c in hints]
        for _, _, record in records:
            if len(record) > MAX_RECORD:
                raise ValueError(f"hint of {len(record)} bytes is over the {MAX_RECORD} byte limit")
        with self._lock:
            if self._closed:
                raise RuntimeError("hint store is closed")
            for dirname, target, record in records:
                segment = self._writable(dirname, target, len(record))
                assert segment.fd is not None
                _write_all(segment.fd, record)
                segment.offsets.append(segment.size)
                segment.done.append(0)
                segment.size += len(record)
                self._dirty.add(segment)
                self._written += 1
                self._stored += 1
            written = self._written
        if sync:
            self._wait_synced(written)

    def _writable(self, dirname: str, target: str, length: int) -> _Segment:
        state = self._targets.get(target)
        if state is None:
            path = self.directory / dirname
            path.mkdir(exist_ok=True)
            if self.fsync:
                _fsync_dir(self.directory)
            state = self._targets[target] = _Target(target, path)
        active = state.active
        if active is not None and (active.size + length <= self.segment_bytes or active.size == HEADER_SIZE):
            return active
        if active is not None:  # roll: the old file's writes must be durable before its descriptor goes
            assert active.fd is not None
            if self.fsync and active in self._dirty:
                os.fsync(active.fd)
            self._dirty.discard(active)
            os.close(active.fd)
            active.fd = None
        segment_id = state.next_segment
        path = state.path / f"{segment_id:016d}.hints"
        while path.exists():  # an unreadable file left in place at open
            segment_id += 1
            path = state.path / f"{segment_id:016d}.hints"
        state.next_segment = segment_id + 1
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        header = _HEADER.pack(MAGIC, VERSION, segment_id)
        _write_all(fd, header + _HEADER_CRC.pack(zlib.crc32(header)))
        if self.fsync:
            os.fsync(fd)
            _fsync_dir(state.path)
        segment = state.active = state.segments[segment_id] = _Segment(segment_id, path, fd, HEADER_SIZE, [])
        return segment

    def sync(self) -> None:
        """Fsync every hint written so far (a no-op with fsync=False)."""
        with self._lock:
            written = self._written
        self._wait_synced(written)

    def _wait_synced(self, count: int) -> None:
        if not self.fsync:
            return
        with self._sync_cond:
            while self._synced < count:
                if not self._syncing:
                    self._syncing = True
                    break
                self._sync_cond.wait()
            else:
                return
        try:
            with self._lock:  # duplicated descriptors: a segment deleted meanwhile cannot pull one from under us
                target = self._written
                dirty = [s for s in self._dirty if s.fd is not None]
                fds = [os.dup(s.fd) for s in dirty if s.fd is not None]
                self._dirty.clear()
            try:
                for fd in fds:
                    os.fsync(fd)
            except OSError:
                with self._lock:  # not durable: the next sync tries these files again
                    self._dirty.update(s for s in dirty if s.fd is not None)
                raise
            finally:
                for fd in fds:
                    os.close(fd)
            with self._sync_cond:
                self._synced = max(self._synced, target)
        finally:
            with self._sync_cond:
                self._syncing = False
                self._sync_cond.notify_all()

    # -- reading ---------------------------------------------------------------------------------------------------

    def targets(self) -> list[str]:
        """The hosts with pending hints, sorted."""
        with self._lock:
            return sorted(name for name, state in self._targets.items() if state.pending())

    def pending(self, target: str) -> int:
        with self._lock:
            state = self._targets.get(target)
            return state.pending() if state is not None else 0

    def replay(
        self,
        target: str,
        max_batch_bytes: int = 1024 * 1024,
        now: float | None = None,
        max_age: Callable[[str], float | None] | None = None,
    ) -> Iterator[list[Hint]]:
        """Yield TARGET's pending hints in the order they were stored, in batches of at most MAX_BATCH_BYTES of
        payload (a bigger hint is a batch of its own). Covers the hints stored before the call that are not done
        when their segment is reached. The caller owns the batches; replay does not mark anything delivered.

        With NOW and MAX_AGE (table id -> its gc_grace_seconds, or None if the table is gone), a hint created at
        or more than MAX_AGE seconds before NOW is skipped, counted as expired and never replayed again: delivering
        it could resurrect data a tombstone has since been purged for. A record found corrupt is skipped likewise.
        """
        if (now is None) != (max_age is None):
            raise ValueError("replay takes both now and max_age, or neither")
        with self._lock:
            state = self._targets.get(target)
            if state is None:
                return
            plan = [(s, len(s.offsets)) for s in state.segments.values()]
        batch: list[Hint] = []
        size = 0
        skipped = False
        for segment, count in plan:
            if segment.first >= count or self._targets.get(target) is not state:
                continue
            try:
                data = segment.path.read_bytes()
            except FileNotFoundError:  # all done and deleted meanwhile, or dropped
                continue
            for index in range(segment.first, count):
                if segment.done[index]:
                    continue
                offset = segment.offsets[index]
                decoded = _decode(data, offset, segment.path)
                if decoded is None:
                    skipped |= self._skip(segment, index, "corrupt")
                    continue
                created_at, wire, length = decoded
                if max_age is not None and now is not None:
                    age = max_age(wire[0]) if wire and isinstance(wire[0], str) else None
                    if age is None or now >= created_at + age:
                        skipped |= self._skip(segment, index, "expired")
                        continue
                if batch and size + length > max_batch_bytes:
                    yield self._count_replayed(batch)
                    batch, size = [], 0
                batch.append(Hint(hint_id(segment.id, offset), wire, created_at))
                size += length
        if batch:
            yield self._count_replayed(batch)
        if skipped:
            with self._lock:
                if self._targets.get(target) is state:
                    self._persist_progress(state)
                    self._delete_done_segments(state)

    def _count_replayed(self, batch: list[Hint]) -> list[Hint]:
        with self._lock:
            self._replayed += len(batch)
        return batch

    def _skip(self, segment: _Segment, index: int, why: str) -> bool:
        with self._lock:
            if not segment.mark(index):
                return False
            if why == "expired":
                self._expired += 1
            else:
                self._corrupt += 1
            return True

    # -- acknowledging ---------------------------------------------------------------------------------------------

    def acknowledge(self, target: str, hint_ids: Iterable[int]) -> None:
        """Mark HINT_IDS delivered: no replay yields them again. When this returns that is durable (with
        fsync=True), and files whose hints are all done are deleted. Unknown or repeated ids are ignored.
        Cost: one small atomic file replacement, whatever the number of ids."""
        with self._lock:
            state = self._targets.get(target)
            if state is None:
                return
            changed = False
            for hid in hint_ids:
                segment = state.segments.get(hid >> OFFSET_BITS)
                if segment is None:
                    continue
                offset = hid & _OFFSET_MASK
                index = bisect_right(segment.offsets, offset) - 1
                if index >= 0 and segment.offsets[index] == offset and segment.mark(index):
                    self._acknowledged += 1
                    changed = True
            if changed:
                self._persist_progress(state)
                self._delete_done_segments(state)

    def _persist_progress(self, state: _Target) -> None:
        """Write STATE's progress record atomically. Called with the lock held. Cost: one step per run of done
        or pending hints, not per hint."""
        watermark: int | None = None
        intervals: list[int] = []
        current: list[int] = []  # [done flag, first id, last id] of the run being extended

        def emit() -> None:
            nonlocal watermark
            if not current:
                return
            if not current[0] and watermark is None:
                watermark = current[1]
            elif current[0] and watermark is not None:  # done runs before the watermark are implied by it
                intervals.extend(current[1:])

        for segment in state.segments.values():
            for flag, first, last in segment.runs():
                if current and current[0] == flag:
                    current[2] = last
                else:
                    emit()
                    current = [flag, first, last]
        emit()
        if watermark is None:
            watermark = state.next_segment << OFFSET_BITS
        payload = msgpack.packb([watermark, intervals])
        data = _PROGRESS.pack(PROGRESS_MAGIC, VERSION, zlib.crc32(payload)) + payload
        tmp = state.path / (PROGRESS_NAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            if self.fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, state.path / PROGRESS_NAME)
        if self.fsync:
            _fsync_dir(state.path)

    def _delete_done_segments(self, state: _Target) -> None:
        """Delete the files of STATE whose hints are all done. Called with the lock held (or while opening)."""
        for segment_id in list(state.segments):
            segment = state.segments[segment_id]
            if segment.pending:
                continue
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None
            if segment is state.active:
                state.active = None
            self._dirty.discard(segment)
            segment.path.unlink(missing_ok=True)
            del state.segments[segment_id]

    def drop(self, target: str) -> None:
        """Forget every hint of TARGET (e.g. the host left the cluster) and delete its folder."""
        with self._lock:
            state = self._targets.pop(target, None)
            if state is None:
                return
            for segment in state.segments.values():
                if segment.fd is not None:
                    os.close(segment.fd)
                    segment.fd = None
                self._dirty.discard(segment)
                segment.path.unlink(missing_ok=True)
            for leftover in state.path.iterdir():  # the progress record last: a crash before it replays, not loses
                if leftover.is_file():
                    leftover.unlink()
            try:
                state.path.rmdir()
            except OSError as e:
                log.warning("hints %s: folder not removed on drop (%s)", state.path, e)
            if self.fsync:
                _fsync_dir(self.directory)

    # -- state -----------------------------------------------------------------------------------------------------

    def statistics(self) -> HintStatistics:
        with self._lock:
            pending = {name: n for name, state in self._targets.items() if (n := state.pending())}
            segments = [s for state in self._targets.values() for s in state.segments.values()]
            return HintStatistics(
                stored=self._stored,
                replayed=self._replayed,
                acknowledged=self._acknowledged,
                expired=self._expired,
                corrupt=self._corrupt,
                pending=pending,
                bytes_on_disk=sum(s.size for s in segments),
                segments=len(segments),
            )

    def close(self) -> None:
        """Fsync what was written and close the files. The store cannot be used afterwards."""
        self.sync()
        with self._lock:
            self._closed = True
            for state in self._targets.values():
                for segment in state.segments.values():
                    if segment.fd is not None:
                        os.close(segment.fd)
                        segment.fd = None
                state.active = None
