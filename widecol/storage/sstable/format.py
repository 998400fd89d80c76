"""The SSTable layout, shared by writer.py and reader.py. docs/formats.md describes the bytes.

An SSTable of generation G in a table's folder is five files:
  G-Data.db        header (magic, version) then blocks: [u32 length][u32 crc32(payload)][payload], a payload
                   being [u32 n][n x 8-byte token prefix][n x u32 key end][n x u32 fragment end][keys][fragments]
                   (version 3; version 2, still read, had [u32 size][msgpack [[key, ...], [end, ...]]][fragments])
  G-Index.db       one entry per block (first sort key, first clustering, last sort key, offset) + crc32
  G-Filter.db      bloom filter over partition keys + crc32
  G-Statistics.db  timestamps, tokens, counts + crc32
  G-TOC.txt        the component file names, one a line
Every file is written under a .tmp name, fsynced, then renamed; the table's manifest lists the live generations.
"""

from __future__ import annotations

import struct
import zlib

import msgpack

from widecol.errors import Corruption

DATA_MAGIC = b"WCSSTDAT"
FORMAT_VERSION = 3  # the version written
READABLE_VERSIONS = (2, 3)
DATA_HEADER = struct.Struct(">8sI")  # magic, version
BLOCK_HEADER = struct.Struct(">II")  # payload length, crc32(payload)
BLOCK_COUNT = struct.Struct(">I")  # v3: the number of fragments in the block, first in its payload
TOKEN_PREFIX = 8  # v3: bytes of a fragment's sort key kept in the directory (the token as unsigned)
BLOCK_DIRECTORY = struct.Struct(">I")  # v2: length of the block's directory: [[key, ...], [end offset, ...]]
BLOCK_TARGET = 4096  # payload bytes after which a block is closed
COMPONENTS = ("Data.db", "Index.db", "Filter.db", "Statistics.db", "TOC.txt")
TRAILER = struct.Struct(">I")


def component_name(generation: int, component: str) -> str:
    return f"{generation}-{component}"


def seal(payload: bytes) -> bytes:
    """A small component's bytes: payload then crc32(payload)."""
    return payload + TRAILER.pack(zlib.crc32(payload))


def unseal(data: bytes, path: str) -> object:
    """Check and decode a sealed component; Corruption names the file on any mismatch."""
    if len(data) < TRAILER.size:
        raise Corruption(path, 0, f"component truncated to {len(data)} bytes")
    payload = data[: -TRAILER.size]
    (crc,) = TRAILER.unpack_from(data, len(data) - TRAILER.size)
    if zlib.crc32(payload) != crc:
        raise Corruption(path, len(payload), "component checksum mismatch")
    try:
        return msgpack.unpackb(payload, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as e:
        raise Corruption(path, 0, f"component undecodable: {e}") from None
