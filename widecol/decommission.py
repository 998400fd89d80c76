"""`widecol decommission [HOST[:PORT]]`: the node leaves the cluster, handing its data to the new owners.

It sends the node the DECOMMISSION command over the native protocol (widecol.client) and waits: the node marks
itself leaving, streams every range it holds to the nodes that gain it, announces that it left, and stops.
"""

from __future__ import annotations

import sys
from typing import IO

from widecol.client import NoHostAvailable, connect
from widecol.errors import WidecolError

TIMEOUT_S = 3600.0


def main(host: str | None, out: IO[str] = sys.stdout) -> int:
    host = host or "127.0.0.1:9042"
    try:
        with connect(host, timeout=30) as client:
            result = client.execute("DECOMMISSION", timeout=TIMEOUT_S)
    except (NoHostAvailable, ConnectionError, OSError) as exc:
        print(f"widecol decommission: cannot connect to {host}: {exc}", file=sys.stderr)
        return 1
    except WidecolError as exc:
        print(f"widecol decommission: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    partitions, size, seconds = result.rows[0]
    print(f"{host} decommissioned: {partitions} partitions ({size} bytes) streamed in {seconds:.1f} s; "
          "the node is stopping", file=out)
    return 0
