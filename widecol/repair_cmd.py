"""`widecol repair`: ask one node to repair a keyspace (or one table) against the other replicas, and show it.

How this works. The command connects to the node with widecol.client and sends `REPAIR ks` or `REPAIR ks.table`
(bare `REPAIR`: every non-system keyspace), our extension to the native protocol's QUERY that the node answers
when the repair is over with one row: ranges compared, out of sync and skipped, partitions and bytes streamed,
seconds. Meanwhile a second connection polls system_views.repair twice a second and draws the progress of the
running session on stderr: a bar redrawn in place when stderr is a terminal, a plain line per change otherwise.
Exit status 0 when every range was repaired, 1 with one line on stderr when the repair failed, could not start,
or skipped ranges whose replicas were down.
"""

from __future__ import annotations

import re
import sys
from typing import IO, Any

import trio

from widecol.client import AsyncClient, ClientConnectionError, NoHostAvailable, OperationTimedOut
from widecol.client_result import quote
from widecol.errors import WidecolError

POLL_S = 0.5
BAR_WIDTH = 30
REQUEST_TIMEOUT_S = 7 * 24 * 3600.0  # a repair takes as long as it takes
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def statement(keyspace: str | None, table: str | None) -> str:
    """The REPAIR statement for KEYSPACE (and TABLE): plain names as typed (CQL folds them to lower case),
    others quoted."""
    def name(n: str) -> str:
        return n if _PLAIN.fullmatch(n) or (n.startswith('"') and n.endswith('"') and len(n) > 1) else quote(n)
    if keyspace is None:
        return "REPAIR"
    return f"REPAIR {name(keyspace)}" + (f".{name(table)}" if table else "")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.2f} {unit}"
        n /= 1024
    return f"{n:.2f} GiB"


def progress_line(row: dict[str, Any], bar: bool) -> str:
    """One session's progress as the command shows it."""
    done, total = row["ranges_done"] or 0, row["ranges_total"] or 0
    what = row["table_name"] or row["keyspace_name"]
    tail = (f"{done}/{total} ranges  {what}  {row['ranges_out_of_sync'] or 0} out of sync  "
            f"{_size(row['bytes_streamed'] or 0)} streamed")
    if not bar:
        return f"repair: {tail}"
    filled = BAR_WIDTH * done // total if total else 0
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {tail}"


def render(report: dict[str, Any], target: str) -> str:
    lines = [
        f"Repair of {target} finished in {report['seconds']:.2f} s",
        f"  ranges compared:      {report['ranges_compared']}",
        f"  ranges out of sync:   {report['ranges_out_of_sync']}",
        f"  ranges skipped:       {report.get('ranges_skipped') or 0}",
        f"  partitions streamed:  {report['partitions_streamed']}",
        f"  bytes streamed:       {report['bytes_streamed']} ({_size(report['bytes_streamed'])})",
    ]
    return "\n".join(lines)


async def _watch(host: str, err: IO[str], bar: bool) -> None:
    """Draw the running session's progress until cancelled; a node without the view shows nothing."""
    last = None
    try:
        async with await AsyncClient.connect(host, timeout=10) as client:
            while True:
                await trio.sleep(POLL_S)
                try:
                    rows = (await client.execute("SELECT * FROM system_views.repair")).as_dicts()
                except WidecolError:
                    return
                running = [r for r in rows if r["state"] == "running"]
                if not running:
                    continue
                line = progress_line(max(running, key=lambda r: r["id"]), bar)
                if line != last:
                    err.write(f"\r{line}\x1b[K" if bar else f"{line}\n")
                    err.flush()
                    last = line
    except (NoHostAvailable, ClientConnectionError, OSError):
        return  # progress is a nicety: the repair's own connection reports the failure
    finally:
        if bar and last is not None:
            err.write("\r\x1b[K")
            err.flush()


async def _repair(host: str, query: str, err: IO[str], bar: bool) -> dict[str, Any]:
    failure: BaseException | None = None
    async with await AsyncClient.connect(host, timeout=10) as client:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_watch, host, err, bar)
            try:
                result = await client.execute(query, timeout=REQUEST_TIMEOUT_S)
            except (WidecolError, OSError) as exc:  # raised below, outside the nursery's exception group
                failure = exc
            nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return result.as_dicts()[0]


def main(keyspace: str | None, table: str | None, host: str | None = None, out: IO[str] = sys.stdout,
         err: IO[str] = sys.stderr) -> int:
    host = host or "127.0.0.1:9042"
    query = statement(keyspace, table)
    target = "every keyspace" if keyspace is None else keyspace + (f".{table}" if table else "")
    bar = hasattr(err, "isatty") and err.isatty()
    try:
        report = trio.run(_repair, host, query, err, bar)
    except NoHostAvailable as exc:
        print(f"widecol repair: cannot connect to {host}: {exc}", file=err)
        return 1
    except (ClientConnectionError, OperationTimedOut) as exc:
        print(f"widecol repair: {host}: {type(exc).__name__}: {exc}", file=err)
        return 1
    except OSError as exc:
        print(f"widecol repair: cannot connect to {host}: {exc}", file=err)
        return 1
    except WidecolError as exc:
        print(f"widecol repair: {type(exc).__name__}: {exc}", file=err)
        return 1
    print(render(report, target), file=out)
    if report.get("ranges_skipped"):
        print(f"widecol repair: incomplete: {report['ranges_skipped']} ranges skipped, replicas unreachable: "
              f"{report.get('unreachable') or '?'}", file=err)
        return 1
    return 0
