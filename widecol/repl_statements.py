"""Splitting shell input into statements, and recognising the shell's own commands.

How this works: `split` scans the text once with a small state machine (code, '...' string, "..." identifier,
$$...$$ string, -- or // line comment, /* */ block comment). A `;` ends a statement only in the code state, so a
`;` inside a literal or a comment does not. A statement whose text is only whitespace and comments is dropped.
What follows the last `;` is returned as the unfinished rest, which the caller keeps in its buffer.

Shell commands (CONSISTENCY, PAGING, EXPAND, DESCRIBE, SOURCE, HELP, EXIT, QUIT) need no `;`: `is_complete`
treats an unfinished rest that starts with one of them as complete at the end of a line, as cqlsh does.
Everything here is plain string work, with no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

SHELL_COMMANDS = frozenset({
    "consistency", "paging", "expand", "describe", "desc", "source", "help", "exit", "quit", "clear", "cls",
})


@dataclass(frozen=True)
class Statement:
    """One statement: its text without the final `;`, and the 1-based line of the input it starts on."""

    text: str
    line: int = 1


def split(text: str, first_line: int = 1) -> tuple[list[Statement], str]:
    """The complete statements of TEXT (those ended by a `;` outside literals and comments) and the rest after
    the last one, verbatim. Statements that hold nothing but comments and whitespace are left out."""
    statements: list[Statement] = []
    state = "code"
    start = 0  # where the current statement starts
    content = -1  # where its first non-comment character is, -1 while there is none
    line = first_line
    start_line = first_line
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        pair = text[i:i + 2]
        if state == "code":
            if ch == ";":
                if content >= 0:
                    statements.append(Statement(text[content:i].strip(), start_line))
                start, content = i + 1, -1
                i += 1
                continue
            if pair in ("--", "//"):
                state, i = "line", i + 2
                continue
            if pair == "/*":
                state, i = "block", i + 2
                continue
            if not ch.isspace() and content < 0:
                content, start_line = i, line
            if ch == "'":
                state = "string"
            elif ch == '"':
                state = "ident"
            elif pair == "$$":
                state, i = "dollar", i + 2
                continue
        elif state == "string" and ch == "'":
            if text[i + 1:i + 2] == "'":
                i += 1
            else:
                state = "code"
        elif state == "ident" and ch == '"':
            if text[i + 1:i + 2] == '"':
                i += 1
            else:
                state = "code"
        elif state == "dollar" and pair == "$$":
            state, i = "code", i + 2
            continue
        elif state == "line" and ch == "\n":
            state = "code"
        elif state == "block" and pair == "*/":
            state, i = "code", i + 2
            continue
        if ch == "\n":
            line += 1
        i += 1
    return statements, text[start:]


def strip_comments(text: str) -> str:
    """TEXT without its comments (literals kept as written), for deciding what an unfinished statement is."""
    out: list[str] = []
    state = "code"
    i, n = 0, len(text)
    while i < n:
        ch, pair = text[i], text[i:i + 2]
        if state == "code":
            if pair in ("--", "//"):
                state, i = "line", i + 2
                continue
            if pair == "/*":
                state, i = "block", i + 2
                out.append(" ")
                continue
            if ch == "'":
                state = "string"
            elif ch == '"':
                state = "ident"
            out.append(ch)
        elif state in ("string", "ident"):
            out.append(ch)
            if ch == ("'" if state == "string" else '"'):
                state = "code"  # a doubled quote re-enters the literal on the next character
        elif state == "line" and ch == "\n":
            state = "code"
            out.append(ch)
        elif state == "block" and pair == "*/":
            state, i = "code", i + 2
            continue
        i += 1
    return "".join(out)


def first_word(text: str) -> str:
    """The first word of TEXT outside comments, lowercased ('' when there is none)."""
    words = strip_comments(text).split(None, 1)
    if not words:
        return ""
    word = words[0]
    end = 0
    while end < len(word) and (word[end].isalnum() or word[end] == "_"):
        end += 1
    return word[:end].lower()


def is_shell_command(text: str) -> bool:
    """True when TEXT starts with one of the shell's own commands rather than a CQL statement."""
    return first_word(text) in SHELL_COMMANDS


def is_blank(text: str) -> bool:
    """True when TEXT holds only whitespace and comments."""
    return not strip_comments(text).strip()


def is_complete(buffer: str) -> bool:
    """True when the interactive line editor should run BUFFER rather than ask for another line: it ends a
    statement with `;` (and has nothing unfinished after it), or it is a shell command, or it is blank."""
    statements, rest = split(buffer)
    if is_blank(rest):
        return True
    return is_shell_command(rest) and not _open_literal(rest)


def _open_literal(text: str) -> bool:
    """True when TEXT ends inside a string, quoted identifier or block comment."""
    return split(text + "\n;")[1] != ""


def pending(buffer: str) -> tuple[list[Statement], str]:
    """The statements to run now for BUFFER at the end of a line, and what stays buffered: like `split`, and an
    unfinished shell command counts as complete."""
    statements, rest = split(buffer)
    if not is_blank(rest) and is_shell_command(rest) and not _open_literal(rest):
        line = 1 + buffer[: len(buffer) - len(rest)].count("\n")
        statements.append(Statement(rest.strip(), line + _leading_newlines(rest)))
        rest = ""
    return statements, rest


def finish(buffer: str) -> tuple[list[Statement], str]:
    """At the end of all input (-e, -f, stdin): every statement, the last one with or without its `;`.
    The second value is the unfinished text that cannot be run (an open string or comment), or ''."""
    statements, rest = split(buffer)
    if is_blank(rest):
        return statements, ""
    if _open_literal(rest):
        return statements, rest
    line = 1 + buffer[: len(buffer) - len(rest)].count("\n")
    statements.append(Statement(rest.strip(), line + _leading_newlines(rest)))
    return statements, ""


def _leading_newlines(text: str) -> int:
    return text[: len(text) - len(text.lstrip())].count("\n")
