"""BlockCache: the engine's least-recently-used cache of checked SSTable data blocks, for point reads.

How this works. A point read or a clustering slice asks its SSTable reader for a block; the reader looks it up here
under `uid << 32 | block number` first, and on a miss reads it from the file (one pread), checks its CRC and its
directory's geometry and stores its bytes as they are: one bytes object an entry, which the reader searches without
decoding (format version 3). A block's bytes are checked once, when they come from the file; a cached block is
served from memory. Entries are weighed by their bytes plus ENTRY_OVERHEAD, and the least recently used are evicted
past `capacity` bytes, so the cache counts against the node's memory like a memtable does.

Never stale: SSTables are immutable, and every reader has a process-unique uid (never the generation number, which
a truncated or re-created table reuses), so a flush, a compaction, a truncate or a drop can only make entries
unreachable, never wrong. `forget(uid)` frees a retired reader's entries at once. Thread-safe.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

ENTRY_OVERHEAD = 200  # the bytes object's header, the ordered dict's entry, its int key, the (block, weight) pair


class BlockCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.size = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[int, tuple[bytes, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: int) -> bytes | None:
        # No lock: each OrderedDict call is atomic under the interpreter lock; an entry evicted between the two
        # calls is still a correct block to return. (The hit and miss counters are approximate under races.)
        entries = self._entries
        entry = entries.get(key)
        if entry is None:
            self.misses += 1
            return None
        try:
            entries.move_to_end(key)
        except KeyError:
            pass
        self.hits += 1
        return entry[0]

    def put(self, key: int, block: bytes, weight: int) -> None:
        if weight > self.capacity:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old[1]
            self._entries[key] = (block, weight)
            self.size += weight
            while self.size > self.capacity:
                _, (_, w) = self._entries.popitem(last=False)
                self.size -= w

    def forget(self, uid: int) -> None:
        """Drop every block of reader UID (retired by a compaction, a truncate or a drop)."""
        with self._lock:
            for key in [k for k in self._entries if k >> 32 == uid]:
                self.size -= self._entries.pop(key)[1]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = 0
