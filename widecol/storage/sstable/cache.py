"""BlockCache: the engine's least-recently-used cache of checked SSTable data blocks, for block reads.

How this works. A clustering slice (or a point read of a version-3 SSTable) asks its SSTable reader for a block; the
reader looks it up here under `uid << 32 | block number` first, and on a miss reads it from the file (one pread),
checks its CRC and its directory's geometry and stores its bytes as they are: one bytes object an entry, which the
reader searches without decoding (format versions 3 and 4). A block's bytes are checked once, when they come from the file;
a cached block is served from memory. Entries are weighed by their bytes plus ENTRY_OVERHEAD, and the least recently
used are evicted past `capacity` bytes, so the cache counts against the node's memory like a memtable does.

Admission. Until the cache is full every missed block is admitted; once it is full, each one with probability
1 / ADMIT_WHEN_FULL. When the blocks read are spread over much more data than the cache holds (a large table read
at random), each admission evicts a block that is about as likely to be read again, so admitting all of them buys
no hits and costs an insert and an eviction on every miss (at 1,000,000 rows, reads took 1.16 times as long with
the cache as without it when one missed block in 4 was admitted, 1.07-1.09 times with one in 16 or 64). A block
read often still gets in after ADMIT_WHEN_FULL misses on average. The draw is random, not every n-th miss: a
counter starves a block whose misses fall in step with another's (a hot block missed between two cold ones, say).

Never stale: SSTables are immutable, and every reader has a process-unique uid (never the generation number, which
a truncated or re-created table reuses), so a flush, a compaction, a truncate or a drop can only make entries
unreachable, never wrong. `forget(uid)` frees a retired reader's entries at once. Thread-safe.

Reservations. From SSTable format 4, point reads fetch one entry through an in-memory table of entry places
(Partitions.db, ~14 bytes an entry) and no longer use blocks. A reader charges that table here with
`reserve(bytes)` when it loads it, and releases it when retired: the cache holds blocks (slices, scans) in what is
left of `capacity`, so the node's read memory stays within `[storage] block_cache_mb`.
"""

from __future__ import annotations

import random
import threading
from collections import OrderedDict

ENTRY_OVERHEAD = 200  # the bytes object's header, the ordered dict's entry and its int key
ADMIT_WHEN_FULL = 16  # a full cache admits a missed block with probability 1 / ADMIT_WHEN_FULL


class BlockCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.reserved = 0  # bytes of capacity lent to readers' entry tables (module docstring)
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[int, bytes] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()
        self._draw = random.Random(capacity).random  # admission once full (module docstring); seeded: repeatable

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: int) -> bytes | None:
        """The block cached under KEY, now the most recently used, or None. Cost: two dict operations."""
        # No lock: each OrderedDict call is atomic under the interpreter lock; an entry evicted between the two
        # calls is still a correct block to return. (The hit and miss counters are approximate under races.)
        block = self._entries.get(key)
        if block is None:
            self.misses += 1
            return None
        try:
            self._entries.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return block

    def put(self, key: int, block: bytes) -> None:
        """Offer BLOCK (a checked block's bytes, never mutated) for KEY, weighing len(BLOCK) + ENTRY_OVERHEAD: kept if
        there is room, else with probability 1 / ADMIT_WHEN_FULL, evicting the least recently used blocks past
        capacity. A block heavier than the capacity is never kept."""
        weight = len(block) + ENTRY_OVERHEAD
        capacity = self.capacity - self.reserved
        if weight > capacity or (self.size + weight > capacity and self._draw() * ADMIT_WHEN_FULL >= 1):
            return
        entries = self._entries
        lock = self._lock
        lock.acquire()  # not `with`: acquire, try and finally cost half as much, on every admission
        try:
            old = entries.get(key)  # two readers may load the same block at once
            entries[key] = block
            size = self.size + weight
            if old is not None:
                size -= len(old) + ENTRY_OVERHEAD
            if size > capacity:
                popitem = entries.popitem
                while size > capacity:
                    size -= len(popitem(False)[1]) + ENTRY_OVERHEAD
            self.size = size
        finally:
            lock.release()

    def reserve(self, nbytes: int) -> None:
        """Take NBYTES of the capacity for something else (give them back with a negative NBYTES), evicting the least
        recently used blocks past what is left."""
        with self._lock:
            self.reserved += nbytes
            capacity = self.capacity - self.reserved
            entries = self._entries
            while self.size > capacity and entries:
                self.size -= len(entries.popitem(False)[1]) + ENTRY_OVERHEAD

    def forget(self, uid: int) -> None:
        """Drop every block of reader UID (retired by a compaction, a truncate or a drop)."""
        with self._lock:
            for key in [k for k in self._entries if k >> 32 == uid]:
                self.size -= len(self._entries.pop(key)) + ENTRY_OVERHEAD

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = 0
