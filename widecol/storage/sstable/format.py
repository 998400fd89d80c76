"""The SSTable layout, shared by writer.py and reader.py. docs/formats.md describes the bytes.

An SSTable of generation G in a table's folder is six files (five before version 4):
  G-Data.db        header (magic, version) then blocks: [u32 length][u32 crc32(payload)][payload], a payload
                   being [u32 n][n x 8-byte token prefix][n x key end][n x fragment end][entries], entry j being
                   [fragment][key][u32 crc32(fragment + key)], the ends u16 (u32 if n's top bit is set) offsets in
                   the entries (version 4; version 3, still read, had u32 ends then [keys][fragments]; version 2
                   [u32 size][msgpack [[key, ...], [end, ...]]][fragments])
  G-Index.db       one entry per block (first sort key, first clustering, last sort key, offset) + crc32
  G-Filter.db      bloom filter over partition keys + crc32
  G-Statistics.db  timestamps, tokens, counts + crc32
  G-Partitions.db  v4: [u32 n][u32 blocks][n x u32 token top][n x u16 entry length][blocks x u32 entries], one
                   token top (a sort key's first 4 bytes) and length (0: over 65,535 bytes) an entry in file order,
                   and each block's number of entries; + crc32
  G-TOC.txt        the component file names, one a line
Every file is written under a .tmp name, fsynced, then renamed; the table's manifest lists the live generations.
"""

from __future__ import annotations

import struct

import msgpack

from widecol.errors import Corruption

try:  # ISA-L's crc32 computes zlib's CRC-32 about 3x faster (a 5 KiB block, a 150-byte entry); zlib's is the fallback
    from isal.isal_zlib import crc32
except ImportError:
    from zlib import crc32

DATA_MAGIC = b"WCSSTDAT"
FORMAT_VERSION = 4  # the version written
READABLE_VERSIONS = (2, 3, 4)
DATA_HEADER = struct.Struct(">8sI")  # magic, version
BLOCK_HEADER = struct.Struct(">II")  # payload length, crc32(payload)
BLOCK_COUNT = struct.Struct(">I")  # v3, v4: the number of fragments in the block, first in its payload
TOKEN_PREFIX = 8  # v3, v4: bytes of a fragment's sort key kept in the directory (the token as unsigned)
BLOCK_DIRECTORY = struct.Struct(">I")  # v2: length of the block's directory: [[key, ...], [end offset, ...]]
BLOCK_TARGET = 4096  # payload bytes after which a block is closed
ENTRY_CRC = struct.Struct(">I")  # v4: after each entry's fragment and key, crc32 of both
WIDE_ENDS = 1 << 31  # v4: set in a block's n when its directory's ends are u32 (entries over 65,535 bytes)
MAX_ENTRY_LENGTH = 0xFFFF  # v4: Partitions.db records a longer entry's length as 0
COMPONENTS = ("Data.db", "Index.db", "Filter.db", "Statistics.db", "Partitions.db", "TOC.txt")
TRAILER = struct.Struct(">I")


def components(version: int) -> tuple[str, ...]:
    """The component files of an SSTable of format VERSION (Partitions.db is new in version 4)."""
    return COMPONENTS if version >= 4 else tuple(c for c in COMPONENTS if c != "Partitions.db")


def component_name(generation: int, component: str) -> str:
    return f"{generation}-{component}"


def seal(payload: bytes) -> bytes:
    """A small component's bytes: payload then crc32(payload)."""
    return payload + TRAILER.pack(crc32(payload))


def unseal(data: bytes, path: str) -> object:
    """Check and decode a sealed component; Corruption names the file on any mismatch."""
    if len(data) < TRAILER.size:
        raise Corruption(path, 0, f"component truncated to {len(data)} bytes")
    payload = data[: -TRAILER.size]
    (crc,) = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    if crc32(payload) != crc:
        raise Corruption(path, len(payload), "component checksum mismatch")
    try:
        return msgpack.unpackb(payload, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise Corruption(path, 0, f"component undecodable: {e}") from None
