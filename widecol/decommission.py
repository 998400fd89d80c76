"""`widecol decommission [HOST[:PORT]]`, `widecol removenode HOST_ID [--host HOST[:PORT]]` and
`widecol cleanup [KEYSPACE [TABLE]] [--host HOST[:PORT]]`.

decommission sends the node the DECOMMISSION command over the native protocol (widecol.client) and waits: the
node marks itself leaving, streams every range it holds to the nodes that gain it, announces that it left, and
stops. removenode asks a live node to remove a dead one: the surviving replicas stream the dead node's ranges to
the nodes that gain them, and the dead node's host id is listed as removed in gossip. cleanup asks a node to drop
what it holds for ranges it no longer replicates (a node that joined took them over).
"""

from __future__ import annotations

import sys
from typing import IO

from widecol.client import NoHostAvailable, connect
from widecol.errors import WidecolError

TIMEOUT_S = 3600.0


def _run(command: str, host: str, what: str) -> tuple | None:
    rows = _run_all(command, host, what)
    return None if rows is None else rows[0]


def _run_all(command: str, host: str, what: str) -> list | None:
    try:
        with connect(host, timeout=30) as client:
            return list(client.execute(command, timeout=TIMEOUT_S).rows)
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


def cleanup(keyspace: str | None, table: str | None, host: str | None, out: IO[str] = sys.stdout) -> int:
    host = host or "127.0.0.1:9042"
    rows = _run_all(" ".join(["CLEANUP", *(w for w in (keyspace, table) if w)]), host, "cleanup")
    if rows is None:
        return 1
    for ks, name, rewritten, before, after in rows:
        print(f"{ks}.{name}: {rewritten} SSTables rewritten, {before} -> {after} bytes on disk", file=out)
    if not rows:
        print("no table to clean up", file=out)
    return 0
