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
        if args.command == "cql":
            from widecol.repl import main as repl_main

            return repl_main(args)
        if args.command == "serve":
            config = _serve_config(args)
            logging.basicConfig(
                level=args.log_level, format=f"%(asctime)s {config.name} %(levelname)s %(name)s: %(message)s"
            )
            from widecol.node import run_node

            run_node(config)
            return 0
    except ConfigError as e:
        print(f"widecol: {e}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
