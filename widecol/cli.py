"""The `widecol` command: argument parsing and exit codes, nothing else."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from widecol import __version__
from widecol.config import NodeConfig, node_config
from widecol.errors import ConfigError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="widecol",
        description="widecol: a Cassandra-family wide-column store. Run `widecol COMMAND --help` for details.",
    )
    parser.add_argument("--version", action="version", version=f"widecol {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run one node in the foreground until SIGTERM or SIGINT",
        description="With no options: a single node, data in ./widecol-data, native protocol on 127.0.0.1:9042. "
        "With --config FILE --node NAME: node NAME of cluster file FILE.",
    )
    serve.add_argument("--config", metavar="FILE", help="cluster file (cluster.toml)")
    serve.add_argument("--node", metavar="NAME", help="which node of the cluster file to run")
    serve.add_argument("--data-dir", metavar="DIR", help="data directory of a single node (default ./widecol-data)")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    launch = commands.add_parser(
        "launch",
        help="start every node of a cluster file as child processes (development); Ctrl-C stops them all",
        description="Starts the nodes of FILE (default ./cluster.toml) one at a time, seeds first, each with a "
        "log file beside its data directory, prints when each is up, and stops them all cleanly on Ctrl-C.",
    )
    launch.add_argument("--config", metavar="FILE", help="cluster file (default ./cluster.toml)")

    status = commands.add_parser(
        "status",
        help="the cluster as one node sees it, like nodetool status",
        description="Connects to HOST[:PORT] (default 127.0.0.1:9042) over the native protocol and prints one "
        "line per node: state (UN, DN, UJ, UL), address, load, tokens, owned share, host id, rack.",
    )
    status.add_argument("host", nargs="?", metavar="HOST[:PORT]", help="node to ask (default 127.0.0.1:9042)")
    status.add_argument("keyspace", nargs="?", metavar="KEYSPACE", help="show ownership with this keyspace's "
                        "replication (effective ownership)")

    # -- repair (widecol/repair_cmd.py) --
    repair = commands.add_parser(
        "repair",
        help="make the replicas of a keyspace (or one table) agree: Merkle trees, then stream the differences",
        description="Asks the node at --host (default 127.0.0.1:9042) to repair the token ranges it replicates "
        "against the other replicas; with no KEYSPACE, every non-system keyspace. Shows progress on stderr and "
        "prints what was compared and streamed. Exit 1 if the repair failed or skipped ranges.",
    )
    repair.add_argument("keyspace", nargs="?", metavar="KEYSPACE", help="keyspace to repair (default: all)")
    repair.add_argument("table", nargs="?", metavar="TABLE", help="only this table of KEYSPACE")
    repair.add_argument("--host", metavar="HOST[:PORT]", help="node to ask (default 127.0.0.1:9042)")
    # -- end repair --

    decommission = commands.add_parser(
        "decommission",
        help="make a live node leave the cluster, streaming its data to the new owners, then stop",
        description="Asks the node at HOST[:PORT] (default 127.0.0.1:9042) to leave: it streams every range it "
        "holds to the nodes that gain it, announces that it left, and stops.",
    )
    decommission.add_argument("host", nargs="?", metavar="HOST[:PORT]", help="the node that leaves")

    removenode = commands.add_parser(
        "removenode",
        help="remove a dead node: its ranges are streamed from the surviving replicas to their new owners",
        description="Asks a live node (--host, default 127.0.0.1:9042) to remove the dead node HOST_ID "
        "(see widecol status).",
    )
    removenode.add_argument("host_id", metavar="HOST_ID", help="the dead node's host id")
    removenode.add_argument("--host", metavar="HOST[:PORT]", help="a live node to ask (default 127.0.0.1:9042)")

    cleanup = commands.add_parser(
        "cleanup",
        help="drop the data a node keeps for ranges it no longer replicates (after another node joined)",
        description="Asks the node at --host (default 127.0.0.1:9042) to rewrite its SSTables without the "
        "partitions whose tokens it no longer replicates, as nodetool cleanup does. Refused while nodes join or leave.",
    )
    cleanup.add_argument("keyspace", nargs="?", metavar="KEYSPACE", help="keyspace to clean up (default: all)")
    cleanup.add_argument("table", nargs="?", metavar="TABLE", help="only this table of KEYSPACE")
    cleanup.add_argument("--host", metavar="HOST[:PORT]", help="node to ask (default 127.0.0.1:9042)")

    cql = commands.add_parser(
        "cql",
        help="the CQL shell: interactive, or one statement (-e) or one file (-f) and exit",
        description="Connect to HOST[:PORT] (default 127.0.0.1:9042) over the native protocol.",
    )
    cql.add_argument("host", nargs="?", metavar="HOST[:PORT]", help="node to connect to (default 127.0.0.1:9042)")
    cql.add_argument("-e", "--execute", metavar="STATEMENT", help="run STATEMENT(s) and exit")
    cql.add_argument("-f", "--file", metavar="FILE", help="run the statements of FILE and exit")
    cql.add_argument("-k", "--keyspace", metavar="KEYSPACE", help="USE this keyspace first")
    return parser


def _serve_config(args: argparse.Namespace) -> NodeConfig:
    if args.config or args.node:
        if not (args.config and args.node):
            raise ConfigError("--config and --node go together: widecol serve --config FILE --node NAME")
        if args.data_dir:
            raise ConfigError("--data-dir: not with --config; set data_dir in the cluster file")
        return node_config(args.config, args.node)
    return NodeConfig(data_dir=Path(args.data_dir or "widecol-data").resolve())


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        if args.command == "launch":
            from widecol.launcher import main as launch_main

            return launch_main(args.config)
        if args.command == "status":
            from widecol.status import main as status_main

            return status_main(args.host, args.keyspace)
        if args.command == "repair":  # repair
            from widecol.repair_cmd import main as repair_main

            return repair_main(args.keyspace, args.table, args.host)
        if args.command == "removenode":
            from widecol.decommission import removenode

            return removenode(args.host_id, args.host)
        if args.command == "cleanup":
            from widecol.decommission import cleanup as cleanup_main

            return cleanup_main(args.keyspace, args.table, args.host)
        if args.command == "decommission":
            from widecol.decommission import main as decommission_main

            return decommission_main(args.host)
        if args.command == "cql":
            from widecol.repl import main as repl_main

            return repl_main(args)
        if args.command == "serve":
            config = _serve_config(args)
            logging.basicConfig(
                level=args.log_level, format=f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s"
            )
            from widecol.node import StartError, run_node

            try:
                run_node(config)
            except StartError as e:
                print(f"widecol: {e}", file=sys.stderr)
                return 1
            return 0
    except ConfigError as e:
        print(f"widecol: {e}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
