"""Streamed chunks carry a checksum that survives the trip through msgpack and catches a changed byte."""

import msgpack
import pytest

from widecol.errors import Corruption
from widecol.net.replica import check_chunk, chunk_crc
from widecol.storage.mutation import Mutation


def test_a_chunk_checksum_survives_msgpack_and_catches_a_change():
    wires = [Mutation("t", b"k%d" % i).set(b"", b"v", b"value %d" % i, 10 + i).to_wire() for i in range(5)]
    wires.append(Mutation("t", b"gone").delete_partition(20, 7).to_wire())
    crc = chunk_crc(wires)
    received = msgpack.unpackb(msgpack.packb([wires, crc], use_bin_type=True), raw=False)
    check_chunk(received[0], received[1])
    received[0][2][4][0][2][0][2] = b"value X"
    with pytest.raises(Corruption):
        check_chunk(received[0], received[1])
