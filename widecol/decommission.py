"""`widecol decommission [HOST[:PORT]]` and `widecol removenode HOST_ID [--host HOST[:PORT]]`.

decommission sends the node the DECOMMISSION command over the native protocol (widecol.client) and waits: the
node marks itself leaving, streams every range it holds to the nodes that gain it, announces that it left, and
stops. removenode asks a live node to remove a dead one: the surviving replicas stream the dead node's ranges to
the nodes that gain them, and the dead node's host id is listed as removed in gossip.
"""

from __future__ import annotations

import sys
from typing import IO

from widecol.client import NoHostAvailable, connect
from widecol.errors import WidecolError

TIMEOUT_S = 3600.0


def _run(command: str, host: str, what: str) -> tuple | None:
    try:
        with connect(host, timeout=30) as client:
            return client.execute(command, timeout=TIMEOUT_S).rows[0]
    except (NoHostAvailable, ConnectionError, OSError) as exc:
        print(f"widecol {what}: cannot connect to {host}: {exc}", file=sys.stderr)
    except WidecolError as exc:
        print(f"widecol {what}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return None


def main(host: str | None, out: IO[str] = sys.stdout) -> int:
    host = host or "127.0.0.1:9042"
    row = _run("DECOMMISSION", host, "decommission")
    if row is None:
        return 1
    partitions, size, seconds = row
    print(f"{host} decommissioned: {partitions} partitions ({size} bytes) streamed in {seconds:.1f} s; "
          "the node is stopping", file=out)
    return 0


def removenode(host_id: str, host: str | None, out: IO[str] = sys.stdout) -> int:
    host = host or "127.0.0.1:9042"
    row = _run(f"REMOVENODE {host_id}", host, "removenode")
    if row is None:
        return 1
    partitions, size, seconds = row
    print(f"{host_id} removed: {partitions} partitions ({size} bytes) streamed to the new replicas in "
          f"{seconds:.1f} s", file=out)
    return 0
