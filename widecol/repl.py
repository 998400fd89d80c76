"""`widecol cql`: the CQL shell, interactive (prompt_toolkit) or running -e / -f / piped statements.

How this works: `Shell` holds a session's state (the client, the consistency level, paging, expanded output, a
cached copy of the schema) and runs one statement at a time: the shell's own commands (CONSISTENCY, PAGING,
EXPAND, DESCRIBE, SOURCE, HELP, EXIT) here, everything else through `client.execute`. It writes results to
`out` and each failure as one line to `err`, and says whether the statement succeeded; it never raises for a
server's error. Splitting input into statements is `repl_statements`, formatting `repl_format`, DESCRIBE
`widecol.cql.describe` (shared with the server) and completion `repl_complete`, all plain functions.

`main` connects, then picks a driver: `-e`/`-f` run their text and exit (2 when a statement failed); a stdin
that is not a terminal is read line by line as it arrives; a terminal gets the prompt_toolkit loop, where Enter
runs the buffer once it ends a statement (or is a shell command) and otherwise starts a continuation line, so a
multi-line statement is one history entry. History is kept in $WIDECOL_HISTORY or ~/.widecol_history.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TextIO

from widecol.cql.describe import SchemaInfo, describe, quote
from widecol.errors import WidecolError
from widecol.repl_format import expanded, format_rows, row_count, table
from widecol.repl_statements import Statement, finish, first_word, is_shell_command, pending, strip_comments

DEFAULT_HOST = "127.0.0.1:9042"
DEFAULT_PAGE_SIZE = 100
FETCH_SIZE = 5000  # page size when the shell fetches every page itself
LEVELS = ("ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL", "LOCAL_SERIAL",
          "LOCAL_ONE")
MAX_SOURCE_DEPTH = 10
# Native protocol error codes and the words cqlsh shows for them.
_DESCRIPTIONS = {
    0x0000: "Server error", 0x000A: "Protocol error", 0x1000: "Unavailable exception", 0x1001: "Overloaded",
    0x1002: "Is bootstrapping", 0x1003: "Truncate error",
    0x1100: "Coordinator node timed out waiting for replica nodes' responses",
    0x1200: "Coordinator node timed out waiting for replica nodes' responses",
    0x2000: "Syntax error in CQL query", 0x2100: "Unauthorized", 0x2200: "Invalid query",
    0x2300: "Query invalid because of configuration issue", 0x2400: "Already exists",
    0x2500: "Unprepared query",
}


class Client(Protocol):
    """What the shell needs of widecol.client's connection."""

    @property
    def keyspace(self) -> str | None: ...

    def execute(self, query: str, params: Any = None, consistency: str = "ONE", page_size: int = 5000,
                paging_state: bytes | None = None) -> Any: ...

    def close(self) -> None: ...


class ShellError(Exception):
    """A mistake in a shell command (not a CQL statement); its message is shown as it is."""


def error_line(e: BaseException) -> str:
    """One readable line for a failed statement, as cqlsh words server errors."""
    if isinstance(e, WidecolError):
        desc = _DESCRIPTIONS.get(e.code, "Server error")
        return f'{type(e).__name__}: Error from server: code={e.code:04x} [{desc}] message="{e.message}"'
    if isinstance(e, ShellError):
        return str(e)
    return f"{type(e).__name__}: {e}"


class Shell:
    """One shell session over CLIENT. `interactive` turns on paging (PAGING can change it); ASK_MORE is called
    between pages and returns False to stop."""

    def __init__(self, client: Client, *, out: TextIO, err: TextIO, interactive: bool = False,
                 ask_more: Callable[[], bool] | None = None) -> None:
        self.client = client
        self.out, self.err = out, err
        self.interactive = interactive
        self.consistency = "ONE"
        self.paging = interactive
        self.page_size = DEFAULT_PAGE_SIZE
        self.expand = False
        self.done = False
        self.ask_more = ask_more or (lambda: True)
        self._schema: SchemaInfo | None = None
        self._depth = 0

    # -- state -----------------------------------------------------------------------------------------------

    @property
    def keyspace(self) -> str | None:
        return self.client.keyspace

    def prompt(self) -> str:
        """`cql> `, or `cql:KS> ` in a keyspace."""
        return f"cql:{self.keyspace}> " if self.keyspace else "cql> "

    def schema(self) -> SchemaInfo:
        """The schema from system_schema.keyspaces, .tables and .columns, read once and kept until a statement
        changes the schema. Raises the client's errors."""
        if self._schema is None:
            self._schema = SchemaInfo.from_rows(*(self._all_rows(f"SELECT * FROM system_schema.{t}")
                                                  for t in ("keyspaces", "tables", "columns")))
        return self._schema

    def schema_or_none(self) -> SchemaInfo | None:
        """`schema()`, or None when it cannot be read (for completion, which must not fail)."""
        try:
            return self.schema()
        except (WidecolError, ConnectionError, OSError):
            return None

    def _all_rows(self, query: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        state = None
        while True:
            r = self.client.execute(query, consistency="ONE", page_size=FETCH_SIZE, paging_state=state)
            names = [name for name, _ in r.columns]
            out += [dict(zip(names, row, strict=True)) for row in r.rows]
            state = r.paging_state
            if not state:
                return out

    # -- running ---------------------------------------------------------------------------------------------

    def run(self, text: str, origin: str | None = None) -> bool:
        """Run every statement of TEXT (the last may lack its `;`); True when all succeeded. Stops after EXIT."""
        statements, unfinished = finish(text)
        ok = True
        for stmt in statements:
            if self.done:
                break
            ok = self.run_one(stmt, origin) and ok
        if unfinished and not self.done:
            self._fail(ShellError("Incomplete statement at end of input (an unclosed string or comment)"),
                       origin, unfinished)
            ok = False
        return ok

    def run_one(self, stmt: Statement, origin: str | None = None) -> bool:
        """Run one statement or shell command; show its result or its error. True when it succeeded."""
        try:
            if is_shell_command(stmt.text):
                self._command(stmt.text)
            else:
                self._cql(stmt.text)
            return True
        except (WidecolError, ShellError, ConnectionError, OSError) as e:
            self._fail(e, origin, stmt.text, stmt.line)
            return False

    def _fail(self, e: BaseException, origin: str | None, text: str, line: int = 1) -> None:
        where = f"{origin}:{line}:" if origin else ""
        self.err.write(where + error_line(e) + "\n")
        self.err.flush()

    def _write(self, lines: list[str]) -> None:
        self.out.write("".join(line + "\n" for line in lines))
        self.out.flush()

    def _cql(self, text: str) -> None:
        paged = self.paging and self.interactive
        size = self.page_size if paged else FETCH_SIZE
        r = self.client.execute(text, consistency=self.consistency, page_size=size)
        if r.kind == "schema_change":
            self._schema = None
        if r.kind != "rows":
            return
        names = [name for name, _ in r.columns]
        total = 0
        if paged:
            while True:
                if r.rows or total == 0:  # a last page can come back empty; show nothing for it
                    self._show(names, format_rows(r.columns, r.rows), total + 1)
                total += len(r.rows)
                if not r.paging_state or not self.ask_more():
                    break
                r = self.client.execute(text, consistency=self.consistency, page_size=size,
                                        paging_state=r.paging_state)
        else:
            rows = list(r.rows)
            while r.paging_state:
                r = self.client.execute(text, consistency=self.consistency, page_size=size,
                                        paging_state=r.paging_state)
                rows += r.rows
            self._show(names, format_rows(r.columns, rows), 1)
            total = len(rows)
        self._write(["", row_count(total)] if not self.expand else [row_count(total)])

    def _show(self, names: list[str], cells: list[list[str]], first_row: int) -> None:
        if self.expand:
            self._write([""] + expanded(names, cells, first_row))
        else:
            self._write([""] + table(names, cells))

    # -- shell commands --------------------------------------------------------------------------------------

    def _command(self, text: str) -> None:
        word = first_word(text)
        body = strip_comments(text).strip().rstrip(";").strip()
        args = body[len(word):].strip()
        getattr(self, f"_cmd_{'describe' if word == 'desc' else word}")(args)

    def _cmd_consistency(self, args: str) -> None:
        if not args:
            self._write([f"Current consistency level is {self.consistency}."])
            return
        level = args.upper()
        if level not in LEVELS:
            raise ShellError(f"Improper CONSISTENCY command: {args!r} is not one of {', '.join(LEVELS)}")
        self.consistency = level
        self._write([f"Consistency level set to {level}."])

    def _cmd_paging(self, args: str) -> None:
        word = args.upper()
        if not word:
            state = "enabled" if self.paging else "disabled"
            hint = "Use PAGING OFF to disable" if self.paging else "Use PAGING ON to enable"
            self._write([f"Query paging is currently {state}. {hint}", f"Page size: {self.page_size}"])
        elif word == "ON":
            self.paging = True
            self._write(["Now Query paging is enabled", f"Page size: {self.page_size}"])
        elif word == "OFF":
            self.paging = False
            self._write(["Disabled Query paging."])
        elif word.isdigit() and int(word) > 0:
            self.paging, self.page_size = True, int(word)
            self._write(["Now Query paging is enabled", f"Page size: {self.page_size}"])
        else:
            raise ShellError(f"Improper PAGING command: expected ON, OFF or a positive page size, not {args!r}")

    def _cmd_expand(self, args: str) -> None:
        word = args.upper()
        if not word:
            state, hint = ("enabled", "OFF to disable") if self.expand else ("disabled", "ON to enable")
            self._write([f"Expanded output is currently {state}. Use EXPAND {hint}"])
        elif word in ("ON", "OFF"):
            self.expand = word == "ON"
            self._write(["Now Expanded output is enabled" if self.expand else "Disabled Expanded output."])
        else:
            raise ShellError(f"Improper EXPAND command: expected ON or OFF, not {args!r}")

    def _cmd_describe(self, args: str) -> None:
        text = describe(self.schema(), args, self.keyspace)
        self._write(["", text, ""])

    def _cmd_source(self, args: str) -> None:
        name = args.strip()
        if len(name) >= 2 and name[0] == name[-1] and name[0] in "'\"":
            name = name[1:-1]
        if not name:
            raise ShellError("SOURCE needs a file name: SOURCE 'file.cql'")
        if self._depth >= MAX_SOURCE_DEPTH:
            raise ShellError(f"SOURCE: files nested deeper than {MAX_SOURCE_DEPTH}; is a file sourcing itself?")
        path = Path(name).expanduser()
        try:
            content = path.read_text()
        except OSError as e:
            raise ShellError(f"Could not open {name!r}: {e.strerror or e}") from None
        self._depth += 1
        try:
            if not self.run(content, origin=str(name)):
                raise ShellError(f"SOURCE {name!r}: some statements failed")
        finally:
            self._depth -= 1

    def _cmd_help(self, args: str) -> None:
        topic = args.strip().lower()
        if not topic:
            shell = sorted(t for t in HELP if t in _SHELL_TOPICS)
            cql = sorted(t for t in HELP if t not in _SHELL_TOPICS)
            self._write(["", "Shell commands (`;` optional, any case):", "  " + "  ".join(shell), "",
                         "CQL help topics (end each CQL statement with `;`):", "  " + "  ".join(cql), "",
                         "HELP <topic> tells more.", ""])
            return
        text = HELP.get(topic.split()[0].upper())
        if text is None:
            raise ShellError(f"No help for {args.strip()!r}; HELP lists the topics")
        self._write(["", text, ""])

    def _cmd_exit(self, args: str) -> None:
        self.done = True

    _cmd_quit = _cmd_exit

    def _cmd_clear(self, args: str) -> None:
        if self.interactive:
            self.out.write("\x1b[2J\x1b[H")
            self.out.flush()

    _cmd_cls = _cmd_clear


HELP = {
    "CONSISTENCY": "CONSISTENCY              show the consistency level of every request\n"
                   "CONSISTENCY <level>      set it: " + ", ".join(LEVELS),
    "PAGING": "PAGING                   show whether results are paged, and the page size\n"
              "PAGING ON | OFF          page results (interactive only; Enter for the next page, q to stop)\n"
              "PAGING <n>               page results, n rows a page (default 100)",
    "EXPAND": "EXPAND ON | OFF          show each row as a block of `column | value` lines",
    "DESCRIBE": "DESCRIBE KEYSPACES       the keyspace names\n"
                "DESCRIBE TABLES          the tables of the current keyspace (or of every keyspace)\n"
                "DESCRIBE KEYSPACE [k]    CQL that recreates keyspace k and its tables\n"
                "DESCRIBE TABLE [k.]t     CQL that recreates table t\n"
                "DESCRIBE SCHEMA          CQL that recreates every user keyspace\n"
                "DESC is short for DESCRIBE.",
    "SOURCE": "SOURCE 'file'            run the statements of a file",
    "HELP": "HELP [topic]             this help",
    "EXIT": "EXIT | QUIT              leave the shell (Ctrl-D also does)",
    "USE": "USE <keyspace>;          make <keyspace> the default for unqualified table names",
    "SELECT": "SELECT cols FROM [k.]t [WHERE ...] [ORDER BY ...] [LIMIT n] [ALLOW FILTERING];",
    "INSERT": "INSERT INTO [k.]t (cols) VALUES (values) [IF NOT EXISTS] [USING TTL n];",
    "UPDATE": "UPDATE [k.]t [USING TTL n] SET col = value, ... WHERE key = ...;",
    "DELETE": "DELETE [cols] FROM [k.]t WHERE key = ...;",
    "CREATE": "CREATE KEYSPACE k WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1};\n"
              "CREATE TABLE [k.]t (col type, ..., PRIMARY KEY ((pk, ...), ck, ...)) [WITH ...];",
}
HELP["DESC"] = HELP["DESCRIBE"]
_SHELL_TOPICS = {"CONSISTENCY", "PAGING", "EXPAND", "DESCRIBE", "DESC", "SOURCE", "HELP", "EXIT", "QUIT"}
HELP["QUIT"] = HELP["EXIT"]


# ---------------------------------------------------------------------------------------------------------------
# Drivers: -e / -f, piped stdin, the terminal


def history_path() -> Path:
    """$WIDECOL_HISTORY, or ~/.widecol_history."""
    return Path(os.environ.get("WIDECOL_HISTORY") or Path.home() / ".widecol_history")


def run_stream(shell: Shell, stream: TextIO) -> bool:
    """Run statements from STREAM as its lines arrive (a pipe, not a terminal); True when all succeeded."""
    ok = True
    buffer = ""
    for line in stream:
        buffer += line
        statements, buffer = pending(buffer)
        for stmt in statements:
            if shell.done:
                return ok
            ok = shell.run_one(stmt) and ok
        if shell.done:
            return ok
    return shell.run(buffer) and ok


def ask_more_on_terminal() -> bool:
    """Between pages: show `---MORE---` and wait for Enter; `q` (or Ctrl-D) stops."""
    try:
        answer = input("---MORE---")
    except (EOFError, KeyboardInterrupt):
        return False
    return answer.strip().lower() not in ("q", "quit")


def run_terminal(shell: Shell) -> None:
    """The interactive loop: prompt_toolkit with history, completion and multi-line statements. Returns on
    EXIT, QUIT or Ctrl-D."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory
    from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent

    from widecol.repl_complete import Completer
    from widecol.repl_statements import is_complete

    bindings = KeyBindings()

    @bindings.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        buf = event.current_buffer
        if buf.complete_state and buf.complete_state.current_completion is not None:
            buf.apply_completion(buf.complete_state.current_completion)
            return
        if is_complete(buf.text):
            buf.validate_and_handle()
        else:
            buf.insert_text("\n")

    @bindings.add("escape", "enter")
    def _newline(event: KeyPressEvent) -> None:
        event.current_buffer.insert_text("\n")

    path = history_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    session: PromptSession[str] = PromptSession(
        history=FileHistory(str(path)),
        completer=Completer(shell.schema_or_none, lambda: shell.keyspace),
        multiline=True,
        key_bindings=bindings,
        prompt_continuation=lambda width, line_number, is_soft_wrap: "   ... ",
        complete_while_typing=False,
        enable_history_search=False,
    )
    while not shell.done:
        try:
            text = session.prompt(shell.prompt())
        except KeyboardInterrupt:
            continue  # Ctrl-C drops the unfinished statement, as in cqlsh
        except EOFError:
            shell.out.write("\n")
            return
        statements, rest = pending(text)
        try:
            for stmt in statements:
                if shell.done:
                    return
                shell.run_one(stmt)
            if rest.strip() and not shell.done:
                shell.run(rest)  # accepted although unfinished (Enter on a blank last line)
        except KeyboardInterrupt:
            shell.err.write("Interrupted: the statement may still run on the node\n")


def main(args: argparse.Namespace) -> int:
    """`widecol cql`: 0 when done, 1 when the node cannot be reached, 2 when a statement of -e, -f or piped
    input failed (or the arguments are wrong: -e with -f, a bad HOST[:PORT], an unreadable file)."""
    from widecol import client as wclient

    if args.execute is not None and args.file is not None:
        print("widecol cql: use -e or -f, not both", file=sys.stderr)
        return 2
    address = args.host or DEFAULT_HOST
    try:
        client = wclient.connect(address)
    except ValueError as e:  # not a HOST[:PORT]
        print(f"widecol cql: {e}", file=sys.stderr)
        return 2
    except (ConnectionError, OSError, WidecolError) as e:
        print(f"widecol cql: cannot connect to {address}: {e}", file=sys.stderr)
        return 1
    try:
        terminal = args.execute is None and args.file is None and sys.stdin.isatty() and sys.stdout.isatty()
        shell = Shell(client, out=sys.stdout, err=sys.stderr, interactive=terminal,
                      ask_more=ask_more_on_terminal)
        if args.keyspace and not shell.run_one(Statement(f"USE {quote(args.keyspace)}")):
            return 2
        if args.execute is not None:
            return 0 if shell.run(args.execute) else 2
        if args.file is not None:
            try:
                text = Path(args.file).read_text()
            except OSError as e:
                print(f"widecol cql: cannot read {args.file}: {e.strerror or e}", file=sys.stderr)
                return 2
            return 0 if shell.run(text, origin=args.file) else 2
        if not terminal:
            return 0 if run_stream(shell, sys.stdin) else 2
        print(f"Connected to widecol at {address}.\nUse HELP for help.")
        run_terminal(shell)
        return 0
    finally:
        client.close()
