"""The commit log: append-only segments of CRC-checked records, group commit, replay.

How this works. Every write is appended as one record to the active segment file with a single os.write, so it
has reached the operating system (and survives the process being killed) before the write is acknowledged. When
fsync happens depends on the mode, as in Cassandra:
- periodic: a background thread fsyncs every `period_ms`; a power loss may lose the last period.
- batch: `wait_synced(position)` blocks until an fsync covers the record. Concurrent waiters share fsyncs (group
  commit): one thread syncs while the others wait for it, then all whose records it covered return.

Positions are `(segment_id, offset_after_record)` tuples, ordered. Each segment remembers, per table, the last
position written for that table; `mark_clean(table, position)` (after a flush made that table's data up to POSITION
durable in an SSTable) forgets them, and a segment with no dirty table left (and not active) is deleted.

Replay reads every segment in order. A record whose CRC fails is logged with file and offset and skipped; if its
length is implausible (a torn tail) the rest of that segment is skipped. Replay never stops the node and never drops
a valid record that precedes a bad one. docs/formats.md gives the byte layout.
"""

from __future__ import annotations

import logging
import os
import re
import struct
import threading
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack

log = logging.getLogger(__name__)

MAGIC = b"WCCL"
VERSION = 1
_HEADER = struct.Struct(">4sB3xQ")  # magic, version, reserved, segment id
_HEADER_CRC = struct.Struct(">I")
HEADER_SIZE = _HEADER.size + _HEADER_CRC.size  # 20
_RECORD = struct.Struct(">II")  # payload length, crc32(length bytes + payload)
RECORD_HEADER_SIZE = _RECORD.size
MAX_RECORD = 256 * 1024 * 1024
_NAME = re.compile(r"^CommitLog-(\d{16})\.log$")

Position = tuple  # (segment_id, offset)


def segment_name(segment_id: int) -> str:
    return f"CommitLog-{segment_id:016d}.log"


def encode_record(payload: bytes) -> bytes:
    length = struct.pack(">I", len(payload))
    return length + struct.pack(">I", zlib.crc32(payload, zlib.crc32(length))) + payload


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _Segment:
    __slots__ = ("id", "path", "fd", "dirty")

    def __init__(self, segment_id: int, path: Path, fd: int | None) -> None:
        self.id = segment_id
        self.path = path
        self.fd = fd
        self.dirty: dict[str, int] = {}


class CommitLog:
    """One node's commit log in DIRECTORY. Thread-safe."""

    def __init__(
        self,
        directory: str | Path,
        sync: str = "periodic",
        period_ms: int = 1000,
        segment_bytes: int = 32 * 1024 * 1024,
    ) -> None:
        if sync not in ("periodic", "batch"):
            raise ValueError(f"commitlog sync mode must be periodic or batch, not {sync!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.sync_mode = sync
        self.period = period_ms / 1000.0
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._sync_cond = threading.Condition()
        self._syncing = False
        self._segments: dict[int, _Segment] = {}
        for path in self.directory.iterdir():
            m = _NAME.match(path.name)
            if m:
                self._segments[int(m.group(1))] = _Segment(int(m.group(1)), path, None)
            elif path.name.endswith(".tmp"):
                path.unlink()
        self._replayable = sorted(self._segments)
        self._active: _Segment | None = None
        self._offset = 0
        self._written: Position = (0, 0)
        self._synced: Position = (0, 0)
        self._unsynced_fds: list[int] = []
        self._closed = False
        self._stop = threading.Event()
        self._sync_thread: threading.Thread | None = None
        self.syncs = 0
        self.records = 0

    # -- replay ----------------------------------------------------------------------------------------------------

    def replay(self) -> Iterator[tuple[Position, Any]]:
        """Yield (position, decoded payload) for every valid record of the segments present at open."""
        for segment_id in self._replayable:
            yield from self._replay_segment(self._segments[segment_id])

    def _replay_segment(self, segment: _Segment) -> Iterator[tuple[Position, Any]]:
        data = segment.path.read_bytes()
        if len(data) < HEADER_SIZE:
            log.warning("commit log %s: header torn at offset 0 (%d bytes); segment skipped", segment.path, len(data))
            return
        magic, version, sid = _HEADER.unpack_from(data)
        (crc,) = _HEADER_CRC.unpack_from(data, _HEADER.size)
        if magic != MAGIC or version != VERSION or crc != zlib.crc32(data[: _HEADER.size]) or sid != segment.id:
            log.warning("commit log %s: bad header at offset 0; segment skipped", segment.path)
            return
        offset = HEADER_SIZE
        size = len(data)
        while offset < size:
            if size - offset < RECORD_HEADER_SIZE:
                log.warning("commit log %s: torn record header at offset %d; tail skipped", segment.path, offset)
                return
            length, crc = _RECORD.unpack_from(data, offset)
            end = offset + RECORD_HEADER_SIZE + length
            if length > MAX_RECORD or end > size:
                log.warning(
                    "commit log %s: torn or corrupt record at offset %d (length %d, %d bytes left); tail skipped",
                    segment.path, offset, length, size - offset,
                )
                return
            payload = data[offset + RECORD_HEADER_SIZE : end]
            if zlib.crc32(payload, zlib.crc32(data[offset : offset + 4])) != crc:
                log.warning("commit log %s: CRC mismatch at offset %d; record skipped", segment.path, offset)
                offset = end
                continue
            try:
                item = msgpack.unpackb(payload)
            except (ValueError, msgpack.UnpackException) as e:
                log.warning("commit log %s: undecodable record at offset %d (%s); skipped", segment.path, offset, e)
                offset = end
                continue
            offset = end
            yield (segment.id, offset), item

    # -- writing ---------------------------------------------------------------------------------------------------

    def start(self, min_segment_id: int = 1) -> None:
        """Open a fresh active segment (its id above every existing one and at least MIN_SEGMENT_ID, so positions
        only grow) and, in periodic mode, start the sync thread. Call after replay."""
        with self._lock:
            next_id = max(max(self._segments, default=0) + 1, min_segment_id)
            self._open_segment(next_id)
        if self.sync_mode == "periodic":
            self._sync_thread = threading.Thread(target=self._sync_loop, name="commitlog-sync", daemon=True)
            self._sync_thread.start()

    def _open_segment(self, segment_id: int) -> None:
        path = self.directory / segment_name(segment_id)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        header = _HEADER.pack(MAGIC, VERSION, segment_id)
        os.write(fd, header + _HEADER_CRC.pack(zlib.crc32(header)))
        os.fsync(fd)
        _fsync_dir(self.directory)
        if self._active is not None and self._active.fd is not None:
            self._unsynced_fds.append(self._active.fd)
            self._active.fd = None
        segment = _Segment(segment_id, path, fd)
        self._segments[segment_id] = segment
        self._active = segment
        self._offset = HEADER_SIZE

    def append(self, payload: bytes, table_ids: list[str] | tuple[str, ...] | set[str]) -> Position:
        """Append one record whose payload is PAYLOAD (msgpack bytes) touching TABLE_IDS.

        When this returns the record is in the operating system's hands (it survives a kill of this process);
        call wait_synced(position) for it to survive a power loss as well.
        """
        record = encode_record(payload)
        with self._lock:
            if self._closed or self._active is None:
                raise RuntimeError("commit log is not open for writing")
            if self._offset + len(record) > self.segment_bytes and self._offset > HEADER_SIZE:
                self._open_segment(self._active.id + 1)
            segment = self._active
            assert segment.fd is not None
            view = memoryview(record)
            while view:
                n = os.write(segment.fd, view)
                view = view[n:]
            self._offset += len(record)
            position = (segment.id, self._offset)
            for table_id in table_ids:
                segment.dirty[table_id] = self._offset
            self._written = position
            self.records += 1
        return position

    def position(self) -> Position:
        """The position after the last appended record."""
        with self._lock:
            return self._written if self._active is None else (self._active.id, self._offset)

    def wait_synced(self, position: Position) -> None:
        """Block until every record up to POSITION is fsynced. Concurrent callers share one fsync."""
        with self._sync_cond:
            while self._synced < position:
                if not self._syncing:
                    self._syncing = True
                    break
                self._sync_cond.wait()
            else:
                return
        try:
            self._sync_once()
        finally:
            with self._sync_cond:
                self._syncing = False
                self._sync_cond.notify_all()

    def _sync_once(self) -> None:
        with self._lock:
            target = self._written
            fds = self._unsynced_fds
            self._unsynced_fds = []
            active_fd = self._active.fd if self._active is not None else None
        for fd in fds:
            os.fsync(fd)
            os.close(fd)
        if active_fd is not None:
            os.fsync(active_fd)
        self.syncs += 1
        with self._sync_cond:
            if self._synced < target:
                self._synced = target

    def _sync_loop(self) -> None:
        while not self._stop.wait(self.period):
            if self._synced < self._written:
                self.wait_synced(self._written)

    # -- segment lifecycle -----------------------------------------------------------------------------------------

    def mark_clean(self, table_id: str, position: Position) -> None:
        """Table TABLE_ID's records up to POSITION are durable elsewhere; delete segments nobody needs."""
        with self._lock:
            for segment in self._segments.values():
                last = segment.dirty.get(table_id)
                if last is not None and (segment.id, last) <= position:
                    del segment.dirty[table_id]
            self._delete_clean_locked()

    def forget_replayed(self) -> None:
        """After replay has been flushed: the segments that existed at open hold nothing needed any more."""
        with self._lock:
            for segment_id in self._replayable:
                self._segments[segment_id].dirty.clear()
            self._replayable = []
            self._delete_clean_locked()

    def _delete_clean_locked(self) -> None:
        for segment_id in list(self._segments):
            segment = self._segments[segment_id]
            if (segment is self._active and not self._closed) or segment.dirty or segment_id in self._replayable:
                continue
            if segment.fd is not None:
                os.close(segment.fd)
            segment.path.unlink(missing_ok=True)
            del self._segments[segment_id]

    def segment_ids(self) -> list[int]:
        with self._lock:
            return sorted(self._segments)

    def close(self) -> None:
        """Fsync everything written and close the files."""
        self._stop.set()
        if self._sync_thread is not None:
            self._sync_thread.join()
        if self._active is not None:
            self.wait_synced(self._written)
        with self._lock:
            self._closed = True
            for fd in self._unsynced_fds:
                os.close(fd)
            self._unsynced_fds = []
            for segment in self._segments.values():
                if segment.fd is not None:
                    os.close(segment.fd)
                    segment.fd = None
            # Closed, the active segment takes no more records: like the others, it goes once no table needs it.
            # After a clean close every table is flushed, so the next open has nothing to read again.
            self._delete_clean_locked()
