"""`widecol status`: the cluster as one node sees it, printed like `nodetool status`.

It asks the node over the native protocol (widecol.client) for system_views.ring, a virtual table with one row
per node and keyspace ('' for the plain ring): state, address, load, tokens, owned share, host id, rack and data
centre. Owned share is primary ownership without a keyspace (it sums to 100%) and effective ownership with one
(it sums to the replication factor times 100%). A standalone node (no cluster file) has no such table: it is shown
as the one node it is, from system.local.
"""

from __future__ import annotations

import sys
from typing import IO

from widecol.client import NoHostAvailable, connect
from widecol.errors import WidecolError

HEADER = ("--", "Address", "Load", "Tokens", "Owns", "Host ID", "Rack")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} TiB"


def rows_for(host: str, keyspace: str | None) -> list[dict]:
    with connect(host) as client:
        try:
            literal = (keyspace or "").replace("'", "''")
            result = client.execute(f"SELECT * FROM system_views.ring WHERE keyspace_name = '{literal}'")
        except WidecolError:
            local = client.execute("SELECT * FROM system.local").as_dicts()[0]
            return [{"state": "UN", "address": str(local["broadcast_address"]), "load": 0.0,
                     "tokens": len(local["tokens"] or ()), "owns": 1.0, "host_id": str(local["host_id"]),
                     "rack": local["rack"], "data_center": local["data_center"]}]
        return result.as_dicts()


def render(rows: list[dict], keyspace: str | None) -> str:
    out = []
    for dc in sorted({r["data_center"] for r in rows}):
        out.append(f"Datacenter: {dc}")
        out.append("=" * (len(dc) + 12))
        out.append("Status=Up/Down")
        out.append("|/ State=Normal/Leaving/Joining/Moving")
        table = [HEADER]
        for r in sorted((r for r in rows if r["data_center"] == dc), key=lambda r: r.get("endpoint") or r["address"]):
            table.append((r["state"], r["address"], _size(r["load"] or 0.0), str(r["tokens"]),
                          f"{100 * (r['owns'] or 0.0):.1f}%", r["host_id"] or "?", r["rack"]))
        widths = [max(len(row[i]) for row in table) for i in range(len(HEADER))]
        for row in table:
            out.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        out.append("")
    if keyspace is None:
        out.append("Note: Owns is primary ownership; give a keyspace for effective ownership with its replication.")
    return "\n".join(out)


def main(host: str | None, keyspace: str | None, out: IO[str] = sys.stdout) -> int:
    host = host or "127.0.0.1:9042"
    try:
        rows = rows_for(host, keyspace)
    except (NoHostAvailable, ConnectionError, OSError) as exc:
        print(f"widecol status: cannot connect to {host}: {exc}", file=sys.stderr)
        return 1
    except WidecolError as exc:
        print(f"widecol status: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(render(rows, keyspace), file=out)
    return 0
