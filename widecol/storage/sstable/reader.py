"""SSTableReader: point reads, clustering slices and sort-key range scans over one SSTable.

How this works. Opening loads the small components (index, bloom filter, statistics) into memory, checking their
CRCs, and keeps the data file open. A partition's blocks are the contiguous run whose [first sort key, last sort
key] contains its sort key, found by bisection; a clustering slice narrows that run further with the blocks' first
clustering keys. Each block read is CRC-checked: a mismatch raises Corruption naming the file and the offset, so a
damaged block never yields rows. Reads use os.pread on a descriptor held for the reader's life, so they are
thread-safe and survive the file being unlinked by a compaction while a read is in flight.

Point reads (get, once Table has tested `probe`: the bounds and the blocked bloom filter) take a fast path. From
format version 4, each fragment is an entry [fragment][key][crc32] in its block, and Partitions.db lists every
entry's token top (the first 4 bytes of its sort key) and length, and each block's number of entries; loaded on
first use, these become arrays of tops, file offsets and lengths. A point read bisects the tops within the few a
radix table leaves, reads its one entry (~150 bytes, not the ~5 KB block), checks its CRC and its key, and decodes
it, with no block search and no block cache. A token top shared by two entries (a wide partition, or a 32-bit
collision) or an entry over 65,535 bytes takes the block path. Before version 4, the blocks' first and last token
prefixes are kept as lists of ints, built on first use, and bisected with int comparisons within the one or two
blocks a radix table leaves; only a read whose token equals a block's last token falls back to comparing sort keys.
A block found in the block cache was checked when it was loaded; one read from the file is checked before it is
used or cached.
"""

from __future__ import annotations

import itertools
import os
import struct
import sys
from array import array
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path

import msgpack

from widecol.errors import Corruption
from widecol.storage.sstable.bloom import MASK_SHIFT, MASKS, BlockedBloom, read_filter
from widecol.storage.sstable.cache import BlockCache
from widecol.storage.sstable.format import (
    BLOCK_COUNT,
    BLOCK_DIRECTORY,
    BLOCK_HEADER,
    DATA_HEADER,
    DATA_MAGIC,
    ENTRY_CRC,
    READABLE_VERSIONS,
    TOKEN_PREFIX,
    TRAILER,
    WIDE_ENDS,
    component_name,
    components,
    crc32,
    unseal,
)
from widecol.storage.token import partition_sort_key

PartitionData = tuple  # (deletion, ranges, rows): rows = [(ck, rowdel, cells dict), ...]


_UIDS = itertools.count(1)
_U32 = BLOCK_COUNT
_U32_PAIR = struct.Struct(">II")
_U16 = struct.Struct(">H")
_PAYLOAD = BLOCK_HEADER.size  # where a block's payload starts in its bytes
_TOKENS = _PAYLOAD + BLOCK_COUNT.size  # v3, v4: where the token prefixes start
_PREFIX = struct.Struct(">Q")  # a sort key's token prefix as an unsigned int (orders as the bytes do)
_TOP = struct.Struct(">I")  # v4: its first 4 bytes, a token top in Partitions.db
_pread = os.pread
# The most values one C-level pass takes while loading Partitions.db (a few ms each): a thread loading it, a flush's
# or a compaction's (SSTableReader.prepare_reads), holds the interpreter lock no longer than that at a time.
_PASS = 1 << 16
_unpackb = msgpack.unpackb
_crc32 = crc32


def _prefix_indexes(data: bytes, token: bytes, n: int) -> Iterator[int]:
    """The indexes, in order, of the N token prefixes of the checked block DATA (version 3 or 4) that equal TOKEN:
    found by bytes.find, without decoding the directory, a match across two prefixes skipped."""
    end = _TOKENS + TOKEN_PREFIX * n
    p = data.find(token, _TOKENS, end)
    while p >= 0:
        if (p - _TOKENS) & 7:  # matched across two prefixes
            p = data.find(token, p + 1, end)
            continue
        yield (p - _TOKENS) >> 3
        p = data.find(token, p + TOKEN_PREFIX, end)


def _locate(data: bytes, sk: bytes, key: bytes) -> tuple[int, int] | None:
    """Where partition KEY (sort key SK) is in the checked version-3 block DATA: (start, end) of its fragment, or
    None. Equal tokens are consecutive (fragments are in sort-key order), each checked against its key."""
    (n,) = _U32.unpack_from(data, _PAYLOAD)
    key_ends = _TOKENS + TOKEN_PREFIX * n
    keys = key_ends + 8 * n
    for i in _prefix_indexes(data, sk[:TOKEN_PREFIX], n):
        if i:
            start, end = _U32_PAIR.unpack_from(data, key_ends + 4 * i - 4)
        else:
            start, (end,) = 0, _U32.unpack_from(data, key_ends)
        if end - start == len(key) and data.startswith(key, keys + start):
            fragments = keys + _U32.unpack_from(data, key_ends + 4 * n - 4)[0]
            if i:
                start, end = _U32_PAIR.unpack_from(data, key_ends + 4 * n + 4 * i - 4)
            else:
                start, (end,) = 0, _U32.unpack_from(data, key_ends + 4 * n)
            return fragments + start, fragments + end
    return None


def _locate4(data: bytes, sk: bytes, key: bytes) -> tuple[int, int] | None:
    """_locate() in a checked version-4 block: entry i is [fragment][key][crc], its key ending at key_ends[i] and
    its fragment at fragment_ends[i] (u16, or u32 when n has WIDE_ENDS), offsets in the entries."""
    (word,) = _U32.unpack_from(data, _PAYLOAD)
    n = word & (WIDE_ENDS - 1)
    ends = _U32 if word & WIDE_ENDS else _U16
    w = ends.size
    key_ends = _TOKENS + TOKEN_PREFIX * n
    entries = key_ends + 2 * w * n
    for i in _prefix_indexes(data, sk[:TOKEN_PREFIX], n):
        (key_end,) = ends.unpack_from(data, key_ends + w * i)
        (fragment_end,) = ends.unpack_from(data, key_ends + w * (n + i))
        if key_end - fragment_end == len(key) and data.startswith(key, entries + fragment_end):
            start = ends.unpack_from(data, key_ends + w * (i - 1))[0] + ENTRY_CRC.size if i else 0
            return entries + start, entries + fragment_end
    return None


def radix_table(values: list[int] | array, width: int = 64, spread: int = 1) -> tuple[array, int]:
    """(RADIX, SHIFT) such that bisect_left(VALUES, t, RADIX[t >> SHIFT], RADIX[(t >> SHIFT) + 1]) equals
    bisect_left(VALUES, t) for any WIDTH-bit unsigned t, VALUES being sorted WIDTH-bit unsigned ints.

    Slot p holds the first index whose value is at least p << SHIFT; there are 2 ** (len(VALUES) // SPREAD)
    .bit_length() slots (between one and two per SPREAD values), and one more holding len(VALUES). Token prefixes
    are uniform (Murmur3), so a slot spans one or two SPREAD values: the bisection then touches a few items, where
    bisecting the whole list touches a cold one at each of ~15-20 steps."""
    shift = max(0, width - max(1, (len(values) // spread).bit_length()))
    slots = 1 << (width - shift)
    # Slot p holds how many values fall in the slots before it. VALUES are sorted, so a pass over _PASS of them
    # finishes every slot up to the last one it touches: count the pass's slots (a C-level count), then extend the
    # table with their running sum from the values before the pass. Only one pass's counts are held at a time.
    radix = array("I")
    for i in range(0, len(values), _PASS):
        part = values[i : i + _PASS]
        last = part[-1] >> shift
        if last < len(radix):
            continue  # every value here is in the last finished slot: I counts them for the slots after it
        per_slot = Counter(map(shift.__rrshift__, part))  # value >> shift
        # The slots below len(RADIX) are finished; the last of them may have values in this pass too.
        before = i + sum(map(per_slot.__getitem__, range(part[0] >> shift, len(radix))))
        radix.extend(itertools.accumulate(map(per_slot.__getitem__, range(len(radix), last)), initial=before))
    radix.extend(itertools.repeat(len(values), slots + 1 - len(radix)))  # the slots after the last value's
    return radix, shift


def _decode(blob: bytes | memoryview) -> PartitionData:
    """A packed fragment as (deletion, ranges, rows), rows being (ck, row deletion, {column key: cell})."""
    deletion, ranges, packed = _unpackb(blob, use_list=False)
    rows = []
    for ck, rowdel, wire in packed:  # plain loops: cheaper than comprehensions for the usual one or two cells
        cells = {}
        for c in wire:
            cells[c[0]] = c[1:]
        rows.append((ck, rowdel, cells))
    return deletion, list(ranges), rows


class SSTableReader:
    def __init__(self, directory: Path, generation: int, cache: BlockCache | None = None) -> None:
        self._fd = -1
        self.uid = next(_UIDS)
        self.cache = cache
        self.directory = directory
        self.generation = generation
        self.data_path = str(directory / component_name(generation, "Data.db"))
        index = self._component("Index.db")
        if not isinstance(index, list) or len(index) != 5:
            raise Corruption(str(directory / component_name(generation, "Index.db")), 0, "index is not a 5-list")
        self.first_sks: list[bytes] = index[0]
        self.first_cks: list[bytes] = index[1]
        self.last_sks: list[bytes] = index[2]
        self.offsets: list[int] = index[3]
        self.data_end: int = index[4]
        self._ends = self.offsets[1:] + [self.data_end]
        # The sort-key bounds (an empty SSTable's admit nothing: no sort key is both >= 0xff and <= b"").
        self._lo: bytes = self.first_sks[0] if self.offsets else b"\xff"
        self._hi: bytes = self.last_sks[-1] if self.offsets else b""
        self.bloom = read_filter(self._component("Filter.db"))  # type: ignore[arg-type]
        # What a point read tests before get(): (bounds, the blocked filter's words and their count), which Table
        # tests for all its SSTables in one loop of its own; None for a classic filter, tested by may_contain().
        self.probe: tuple[bytes, bytes, array, int] | None = None
        if isinstance(self.bloom, BlockedBloom):
            self._words, self._n = self.bloom.words, self.bloom.n
            self.probe = (self._lo, self._hi, self._words, self._n)
        else:
            self.may_contain = self._may_contain_classic  # type: ignore[method-assign]
        self.stats: dict = self._component("Statistics.db")  # type: ignore[assignment]
        # No partition here needs purging or expiry: no tombstone and no TTL cell.
        self.clean = self.stats.get("tombstones", 1) == 0 and self.stats.get("ttl_cells", 1) == 0
        self._key_base = self.uid << 32  # block i is cached under _key_base | i
        self._fd = os.open(self.data_path, os.O_RDONLY)
        header = os.pread(self._fd, DATA_HEADER.size, 0)
        magic, self.version = DATA_HEADER.unpack(header) if len(header) == DATA_HEADER.size else (b"", 0)
        if magic != DATA_MAGIC or self.version not in READABLE_VERSIONS:
            os.close(self._fd)
            self._fd = -1
            raise Corruption(self.data_path, 0, f"bad data file header (version {self.version})")
        self.size_on_disk = 0
        for c in components(self.version):
            path = directory / component_name(generation, c)
            try:
                self.size_on_disk += os.path.getsize(path)
            except FileNotFoundError:
                self.close()
                raise Corruption(str(path), 0, "component missing") from None
        self._reserved = 0  # bytes of the block cache's capacity that _places holds (charged on first use)

    # What only point reads and slices use is built on first use: a compaction worker, which opens SSTables only
    # to merge them, never builds it (a few MB at 1,000,000 partitions).

    @cached_property
    def first_keys(self) -> list[tuple[bytes, bytes]]:
        """(first sort key, first clustering) of each block, for slices' bisection."""
        return list(zip(self.first_sks, self.first_cks, strict=True))

    @cached_property
    def _tokens(self) -> tuple[list[int], list[int], array, int] | None:
        """For get(): the blocks' first and last token prefixes as ints, and radix_table() of the last ones (None
        if some sort key is too short to have a token prefix)."""
        unpack = _PREFIX.unpack_from
        try:
            firsts = [unpack(s)[0] for s in self.first_sks]
            lasts = [unpack(s)[0] for s in self.last_sks]
        except (struct.error, TypeError):
            return None
        return firsts, lasts, *radix_table(lasts)

    @cached_property
    def _places(self) -> tuple[array, array, array, array, int] | None:
        """For get() from version 4: Partitions.db as (token tops, entry offsets, entry lengths, radix_table(tops),
        its shift), or None before version 4. The arrays (~14 bytes an entry) are charged to the block cache's
        capacity, which point reads no longer use."""
        if self.version < 4:
            return None
        path = self.directory / component_name(self.generation, "Partitions.db")
        tops, lengths, counts = array("I"), array("H"), array("I")
        try:  # read straight into the arrays: no copy of the file's bytes in memory
            with open(path, "rb") as f:
                header = f.read(_U32_PAIR.size)
                n, blocks = _U32_PAIR.unpack(header) if len(header) == _U32_PAIR.size else (0, -1)
                if blocks != len(self.offsets) or os.fstat(f.fileno()).st_size != 8 + 6 * n + 4 * blocks + 4:
                    raise Corruption(str(path), 0, f"{n} entries and {blocks} blocks do not fit its size")
                tops.fromfile(f, n)
                lengths.fromfile(f, n)
                counts.fromfile(f, blocks)
                trailer = f.read(TRAILER.size)
        except FileNotFoundError:
            raise Corruption(str(path), 0, "component missing") from None
        except EOFError:
            raise Corruption(str(path), 0, "component truncated") from None
        crc = crc32(counts, crc32(lengths, crc32(tops, crc32(header))))
        if len(trailer) != TRAILER.size or crc != TRAILER.unpack(trailer)[0]:
            raise Corruption(str(path), 8 + 6 * n + 4 * blocks, "component checksum mismatch")
        if sys.byteorder == "little":
            for a in (tops, lengths, counts):
                a.byteswap()
        # Each entry's offset: a block's entries follow its header and directory, back to back. One running sum
        # over the entries, steps[k] taking entry k - 1's length, plus the jump over a header and directory where a
        # block starts (from where the previous block's recorded lengths end, so a block with an unknown length
        # does not shift the next one).
        steps = array("q", [0] if n else [])
        for i in range(0, n - 1, _PASS):
            steps.fromlist(lengths[i : min(i + _PASS, n - 1)].tolist())
        k = recorded_end = 0
        wide = []
        for offset, word in zip(self.offsets, counts, strict=True):
            c = word & (WIDE_ENDS - 1)
            base = offset + _TOKENS + (TOKEN_PREFIX + (8 if word & WIDE_ENDS else 4)) * c
            if k < n:
                steps[k] += base - recorded_end
            if word & WIDE_ENDS:
                wide.append((k, c))
            recorded_end = base + sum(lengths[k : k + c])
            k += c
        if k != n:
            raise Corruption(str(path), 0, f"the blocks' counts add up to {k} entries, not {n}")
        total = 0  # the running sum, in place and a pass at a time: STEPS becomes the entries' offsets
        for i in range(0, n, _PASS):
            steps[i : i + _PASS] = array("q", itertools.accumulate(steps[i : i + _PASS], initial=total))[1:]
            total = steps[min(i + _PASS, n) - 1]
        starts = steps
        for k, c in wide:  # an entry may be over 65,535 bytes: the offsets after it in its block are unknown
            if 0 in lengths[k : k + c]:
                lengths[k : k + c] = array("H", bytes(2 * c))
        radix, shift = radix_table(tops, 32, 8)
        if self.cache is not None:  # as a difference: two threads may build this at once, one result is kept
            weight = sum(a.itemsize * len(a) for a in (tops, starts, lengths, radix))
            self.cache.reserve(weight - self._reserved)
            self._reserved = weight
        return tops, starts, lengths, radix, shift

    @property
    def serves_point_reads(self) -> bool:
        """Whether what point reads need is built: a point read has come, or prepare_reads() ran."""
        return "_places" in self.__dict__ or "_tokens" in self.__dict__

    def prepare_reads(self) -> None:
        """Build now what point reads build on first use: Partitions.db's arrays from version 4 (0.29 s at 1,050,000
        entries), the blocks' token lists in version 3. A flush or compaction calls this before installing the
        SSTable, so that no read waits for it. A damaged Partitions.db is left for reads to report."""
        try:
            if self.version >= 4:
                self._places  # noqa: B018 - a cached property, built here
            elif self.version == 3:
                self._tokens  # noqa: B018
        except Corruption:
            pass

    def _component(self, component: str) -> object:
        path = self.directory / component_name(self.generation, component)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise Corruption(str(path), 0, "component missing") from None
        return unseal(data, str(path))

    def retire(self) -> None:
        """This SSTable left the table (compacted away, truncated, dropped): free its cached blocks. Reads already
        in flight still work (the descriptor stays open until the reader is garbage)."""
        if self.cache is not None:
            self.cache.forget(self.uid)
            self.cache.reserve(-self._reserved)
            self._reserved = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __del__(self) -> None:
        try:
            self.close()
        except OSError:
            pass

    # -- blocks ------------------------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.offsets)

    def read_block(self, i: int) -> bytes:
        """Block I as it is in the file ([length][crc][payload]), its CRC and its directory's geometry checked."""
        offset = self.offsets[i]
        size = self._ends[i] - offset
        data = _pread(self._fd, size, offset)
        # The common case in one test: the whole block, its length, its CRC and (v3) its directory's last offsets.
        if len(data) == size and size >= _TOKENS:
            length, crc = BLOCK_HEADER.unpack_from(data)
            if length == size - _PAYLOAD and _crc32(memoryview(data)[_PAYLOAD:]) == crc:
                if self.version < 3:
                    return data
                (n,) = _U32.unpack_from(data, _PAYLOAD)
                if self.version >= 4:  # the last entry's key, then its CRC, end the block
                    w = 4 if n & WIDE_ENDS else 2
                    n &= WIDE_ENDS - 1
                    entries = _TOKENS + (TOKEN_PREFIX + 2 * w) * n
                    if n and entries <= size:
                        last = _U32 if w == 4 else _U16
                        if entries + last.unpack_from(data, entries - w * n - w)[0] + ENTRY_CRC.size == size:
                            return data
                else:
                    keys = _TOKENS + 16 * n  # after the token prefixes, the key ends and the fragment ends
                    if n and keys <= size:
                        (key_end,) = _U32.unpack_from(data, keys - 4 * n - 4)
                        (fragment_end,) = _U32.unpack_from(data, keys - 4)
                        if keys + key_end + fragment_end == size:
                            return data
        raise self._block_error(offset, size, data)

    def _block_error(self, offset: int, size: int, data: bytes) -> Corruption:
        """Why block DATA (SIZE bytes at file OFFSET by the index) failed read_block's checks."""
        if len(data) != size:
            return Corruption(self.data_path, offset, f"block truncated: {len(data)} of {size} bytes")
        if size < BLOCK_HEADER.size:
            return Corruption(self.data_path, offset, f"block length {size} is shorter than its header")
        length, crc = BLOCK_HEADER.unpack_from(data)
        if length != size - BLOCK_HEADER.size:
            return Corruption(self.data_path, offset, f"block length {length} does not match the index")
        if _crc32(memoryview(data)[BLOCK_HEADER.size :]) != crc:
            return Corruption(self.data_path, offset, "block checksum mismatch")
        return Corruption(self.data_path, offset, "block directory does not match the block")

    def block_directory(self, data: bytes, offset: int) -> tuple[list[bytes], list[bytes], list[int], list[int]]:
        """The directory of a checked block DATA (read at file OFFSET): (sort keys, keys, fragment starts, fragment
        ends), fragment i being DATA[starts[i] : ends[i]]."""
        if self.version >= 3:
            (n,) = _U32.unpack_from(data, _PAYLOAD)
            width = "I"
            if self.version >= 4:
                width = "I" if n & WIDE_ENDS else "H"
                n &= WIDE_ENDS - 1
            ends = struct.unpack_from(f">{2 * n}{width}", data, _TOKENS + TOKEN_PREFIX * n)
            key_ends, fragment_ends = ends[:n], ends[n:]
            region = _TOKENS + (TOKEN_PREFIX + 2 * struct.calcsize(width)) * n
            keys = []
            sks = []
            starts = []
            if self.version >= 4:  # entry i: [fragment][key][crc]
                start = 0
                for i, (key_end, fragment_end) in enumerate(zip(key_ends, fragment_ends, strict=True)):
                    key = data[region + fragment_end : region + key_end]
                    keys.append(key)
                    sks.append(data[_TOKENS + 8 * i : _TOKENS + 8 * i + 8] + key)
                    starts.append(region + start)
                    start = key_end + ENTRY_CRC.size
                return sks, keys, starts, [region + e for e in fragment_ends]
            start = 0
            for i, end in enumerate(key_ends):
                key = data[region + start : region + end]
                keys.append(key)
                sks.append(data[_TOKENS + 8 * i : _TOKENS + 8 * i + 8] + key)
                start = end
            base = region + start
            return sks, keys, [base, *(base + e for e in fragment_ends[:-1])], [base + e for e in fragment_ends]
        try:
            (size,) = BLOCK_DIRECTORY.unpack_from(data, _PAYLOAD)
            keys, ends = msgpack.unpackb(data[_PAYLOAD + 4 : _PAYLOAD + 4 + size])
        except (ValueError, TypeError, struct.error, msgpack.UnpackException) as e:
            raise Corruption(self.data_path, offset, f"block directory undecodable: {e}") from None
        base = _PAYLOAD + 4 + size
        return ([partition_sort_key(k) for k in keys], keys, [base, *(base + e for e in ends[:-1])],
                [base + e for e in ends])

    def _block(self, i: int) -> bytes:
        """Block I as read_block() gives it, through the block cache when the reader has one."""
        cache = self.cache
        if cache is None:
            return self.read_block(i)
        key = self._key_base | i
        data = cache.get(key)
        if data is None:
            data = self.read_block(i)
            cache.put(key, data)
        return data

    def _locate(self, data: bytes, sk: bytes, key: bytes) -> tuple[int, int] | None:
        """Where partition KEY's fragment is in the checked block DATA: (start, end), or None if it is not there."""
        if self.version >= 4:
            return _locate4(data, sk, key)
        if self.version == 3:
            return _locate(data, sk, key)
        _, keys, starts, ends = self.block_directory(data, 0)
        try:
            index = keys.index(key)
        except ValueError:
            return None
        return starts[index], ends[index]

    def _fragment(self, i: int, sk: bytes, key: bytes) -> bytes | None:
        """Partition KEY's packed fragment in block I, or None if it is not there."""
        data = self._block(i)
        where = self._locate(data, sk, key)
        return None if where is None else data[where[0] : where[1]]

    def _find(self, i: int, sk: bytes, key: bytes) -> PartitionData | None:
        """Partition KEY's fragment in block I, decoded, or None."""
        fragment = self._fragment(i, sk, key)
        return None if fragment is None else self.decode_fragment(fragment, self.offsets[i])

    def _deletions(self, i: int, sk: bytes, key: bytes) -> tuple[tuple | None, list] | None:
        """The partition and range deletions of partition KEY's fragment in block I (its first), without decoding
        its rows, or None if it is not there. A slice deep into a wide partition needs only these from its first
        block: 2 us where decoding the block's ~35 rows took 40."""
        fragment = self._fragment(i, sk, key)
        if fragment is None:
            return None
        unpacker = msgpack.Unpacker(use_list=False)
        unpacker.feed(fragment)
        try:
            if unpacker.read_array_header() != 3:
                raise ValueError("not a 3-array")
            return unpacker.unpack(), list(unpacker.unpack())
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise Corruption(self.data_path, self.offsets[i], f"fragment undecodable: {e}") from None

    def _blocks_of(self, sk: bytes) -> tuple[int, int]:
        i = bisect_left(self.last_sks, sk)
        j = bisect_right(self.first_sks, sk, lo=i)
        return i, j

    # -- reads -------------------------------------------------------------------------------------------------------

    def may_contain(self, h: tuple[int, int], sk: bytes) -> bool:
        """False if this SSTable certainly has no partition SK (whose bloom hashes are H). The bloom filter's
        test (bloom.py) is inlined, as Table's point reads inline it over `probe`."""
        if not self._lo <= sk <= self._hi:
            return False
        mask = MASKS[h[1] >> MASK_SHIFT]
        return self._words[h[0] % self._n] & mask == mask

    def _may_contain_classic(self, h: tuple[int, int], sk: bytes) -> bool:
        """may_contain for an SSTable written with a classic filter (before the blocked kind)."""
        return self._lo <= sk <= self._hi and self.bloom.may_contain(h)

    def get(self, sk: bytes, key: bytes) -> PartitionData | None:
        """The whole partition KEY (sort key SK), or None: partition() without bounds, with a one-entry fast path.

        Cost from version 4: a radix table lookup and a bisection over a few ints, one pread of the entry and its
        CRC, then one decode. Before: the same bisection over the blocks, then a block from the cache or one pread
        and a CRC, then finding the fragment in it and one decode."""
        places = self._places
        if places is not None and len(sk) >= TOKEN_PREFIX:  # the writer refuses shorter sort keys
            tops, starts, lengths, radix, shift = places
            (top,) = _TOP.unpack_from(sk)  # as Partitions.db has it: the token prefix's first 4 bytes
            p = top >> shift
            i = bisect_left(tops, top, radix[p], radix[p + 1])
            if i == len(tops) or tops[i] != top:
                return None
            if i + 1 < len(tops) and tops[i + 1] == top:  # a wide partition, or another key with this token top
                return self._get_by_sort_key(sk, key)
            size = lengths[i]
            if not size:  # an entry too long for Partitions.db to give its length
                return self._get_by_sort_key(sk, key)
            offset = starts[i]
            data = _pread(self._fd, size, offset)
            cut = size - ENTRY_CRC.size
            if len(data) != size or cut < 1 or _crc32(data[:cut]) != _U32.unpack_from(data, cut)[0]:
                raise self._entry_error(offset, size, data)
            cut -= len(key)
            if cut < 1 or not data.startswith(key, cut):
                return None  # this token top's one partition is another key
            try:  # the fragment ends where KEY starts iff it decodes exactly (msgpack is self-delimiting)
                return _decode(data[:cut])
            except (ValueError, TypeError, msgpack.UnpackException):
                # Not this entry's key length (its key ends with KEY), or damage the CRC missed: the block path
                # reads the directory, which knows.
                return self._get_by_sort_key(sk, key)
        tokens = self._tokens
        if tokens is None or self.version < 3 or len(sk) < TOKEN_PREFIX:
            return self._get_by_sort_key(sk, key)
        firsts, lasts, radix, shift = tokens
        (t,) = _PREFIX.unpack_from(sk)
        p = t >> shift
        i = bisect_left(lasts, t, radix[p], radix[p + 1])
        if i == len(lasts):
            return None
        if lasts[i] == t:  # SK may sort after block I's last key of the same token: compare as bytes
            return self._get_by_sort_key(sk, key)
        # last_sks[i - 1] < SK < last_sks[i]; block i + 1 starts at or after last_sks[i]: only block I may hold SK.
        first = firsts[i]
        if first >= t and (first > t or self.first_sks[i] > sk):
            return None
        data = self._block(i)
        where = _locate(data, sk, key)
        if where is None:
            return None
        return self.decode_fragment(data[where[0] : where[1]], self.offsets[i])

    def _entry_error(self, offset: int, size: int, data: bytes) -> Corruption:
        """Why the entry DATA (SIZE bytes at file OFFSET by Partitions.db) failed get()'s checks."""
        if len(data) != size:
            return Corruption(self.data_path, offset, f"entry truncated: {len(data)} of {size} bytes")
        return Corruption(self.data_path, offset, "entry checksum mismatch")

    def _get_by_sort_key(self, sk: bytes, key: bytes) -> PartitionData | None:
        """get() by bisecting the sort keys themselves and reading the block: version 2, a version-3 token shared
        with a block boundary, and version 4's shared token tops, long entries and suffix keys."""
        i = bisect_left(self.last_sks, sk)
        first_sks = self.first_sks
        if i == len(first_sks) or first_sks[i] > sk:
            return None
        if i + 1 < len(first_sks) and first_sks[i + 1] <= sk:
            return self.partition(sk, key)
        return self._find(i, sk, key)

    def partition(
        self,
        sk: bytes,
        key: bytes,
        start: bytes | None = None,
        end: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> PartitionData | None:
        """Partition KEY's deletion, range deletions and rows in [START, END), or None if it is not here.

        Rows come in clustering order (reversed if REVERSE); with LIMIT, at most that many, the first in that order.
        """
        i, j = self._blocks_of(sk)
        if i >= j:
            return None
        lo, hi = i, j
        if start is not None:
            lo = max(i, bisect_right(self.first_keys, (sk, start), i, j) - 1)
        if end is not None:
            hi = max(lo + 1, min(j, bisect_left(self.first_keys, (sk, end), i, j)))
        first_rows: list = []
        if lo == i:  # the first block's rows are wanted
            head = self._find(i, sk, key)
            if head is None:
                return None
            deletion, ranges, first_rows = head
            if j == i + 1 and start is None and end is None and limit is None:
                if reverse:
                    first_rows.reverse()
                return head
        else:  # only the deletions, which are in the first fragment: its rows are not decoded
            deletions = self._deletions(i, sk, key)
            if deletions is None:
                return None
            deletion, ranges = deletions
        out: list = []
        for b in range(hi - 1, lo - 1, -1) if reverse else range(lo, hi):
            if b == i:
                rows = first_rows
            else:
                frag = self._find(b, sk, key)
                rows = frag[2] if frag else []
            for row in reversed(rows) if reverse else rows:
                ck = row[0]
                if (start is None or ck >= start) and (end is None or ck < end):
                    out.append(row)
                    if limit is not None and len(out) >= limit:
                        return deletion, ranges, out
        return deletion, ranges, out

    def split_block(self, b: int) -> tuple[list[bytes], list[bytes], list[bytes]]:
        """Block B read from the file (not through the cache) and split: (sort keys, keys, packed fragments)."""
        data = self.read_block(b)
        sks, keys, starts, ends = self.block_directory(data, self.offsets[b])
        return sks, keys, [data[i:j] for i, j in zip(starts, ends, strict=True)]

    def fragments(self) -> Iterator[tuple[bytes, bytes, int, bytes, int]]:
        """Every fragment in file order: (sort key, key, block number, packed bytes, block offset). A partition's
        fragments are consecutive."""
        for b in range(len(self.offsets)):
            for sk, key, blob in zip(*self.split_block(b), strict=True):
                yield sk, key, b, blob, self.offsets[b]

    def decode_fragment(self, blob: bytes, offset: int) -> PartitionData:
        """A packed fragment of the block at file OFFSET, decoded (Corruption if it cannot be)."""
        try:
            return _decode(blob)
        except (ValueError, TypeError, msgpack.UnpackException) as e:
            raise Corruption(self.data_path, offset, f"fragment undecodable: {e}") from None

    def scan(self, lo: bytes | None = None, hi: bytes | None = None) -> Iterator[tuple]:
        """(sk, key, deletion, ranges, rows) of every partition with LO < sk <= HI, in order."""
        b = 0 if lo is None else bisect_right(self.last_sks, lo)
        current: list | None = None
        while b < len(self.offsets):
            if hi is not None and self.first_sks[b] > hi:
                break
            offset = self.offsets[b]
            for sk, key, blob in zip(*self.split_block(b), strict=True):
                if current is not None and current[1] == key:
                    current[4].extend(self.decode_fragment(blob, offset)[2])
                    continue
                if current is not None:
                    yield tuple(current)
                    current = None
                if lo is not None and sk <= lo:
                    continue
                if hi is not None and sk > hi:
                    return
                deletion, ranges, rows = self.decode_fragment(blob, offset)
                current = [sk, key, deletion, ranges, rows]
            b += 1
        if current is not None:
            yield tuple(current)
