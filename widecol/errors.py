"""Every error widecol raises on purpose, in Cassandra's vocabulary.

Each class says who is at fault (the client, the cluster's state, the disk, a peer) and carries the fields that
the native protocol's ERROR message sends for it. `code` is the protocol's error code (native protocol v4/v5
spec, section 9), so the server maps an exception to a frame with no table of its own.
"""

from __future__ import annotations


class WidecolError(Exception):
    """Base of every deliberate widecol error. `code` is the native protocol error code."""

    code = 0x0000

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServerError(WidecolError):
    """Something went wrong inside the server: a bug, or a failure with no better name."""

    code = 0x0000


class ProtocolError(WidecolError):
    """The peer (client or node) broke the wire protocol."""

    code = 0x000A


# ---------------------------------------------------------------------------------------------------------------
# The cluster's state


class Unavailable(WidecolError):
    """Fewer replicas are alive than the consistency level needs; nothing was attempted."""

    code = 0x1000

    def __init__(self, consistency: str, required: int, alive: int) -> None:
        super().__init__(
            f"Cannot achieve consistency level {consistency}: {required} replicas required, {alive} alive"
        )
        self.consistency = consistency
        self.required = required
        self.alive = alive


class Overloaded(WidecolError):
    code = 0x1001


class IsBootstrapping(WidecolError):
    code = 0x1002


class TruncateError(WidecolError):
    code = 0x1003


class _LevelNotMet(WidecolError):
    """What timeouts and failures share: the consistency level, and the responses received and required."""

    def __init__(self, message: str, consistency: str, received: int, required: int) -> None:
        super().__init__(message)
        self.consistency = consistency
        self.received = received
        self.required = required


def _timed_out(consistency: str, received: int, required: int) -> str:
    return f"Operation timed out - received only {received} responses (required {required}) at consistency {consistency}"


def _failed(consistency: str, received: int, required: int, failures: int) -> str:
    return (f"Operation failed - received {received} responses and {failures} failures at consistency "
            f"{consistency} (required {required})")


class WriteTimeout(_LevelNotMet):
    """The level's count of acknowledgements did not arrive in time; the write may still be applied."""

    code = 0x1100

    def __init__(self, consistency: str, received: int, required: int, write_type: str = "SIMPLE") -> None:
        super().__init__(_timed_out(consistency, received, required), consistency, received, required)
        self.write_type = write_type


class ReadTimeout(_LevelNotMet):
    code = 0x1200

    def __init__(self, consistency: str, received: int, required: int, data_present: bool = False) -> None:
        super().__init__(_timed_out(consistency, received, required), consistency, received, required)
        self.data_present = data_present


class ReadFailure(_LevelNotMet):
    """Replicas answered the read with an error (not a timeout), so the level cannot be met."""

    code = 0x1300

    def __init__(self, consistency: str, received: int, required: int, failures: int,
                 data_present: bool = False) -> None:
        super().__init__(_failed(consistency, received, required, failures), consistency, received, required)
        self.failures = failures
        self.data_present = data_present


class WriteFailure(_LevelNotMet):
    """Replicas answered the write with an error (not a timeout), so the level cannot be met; replicas that did
    not fail may still have applied it."""

    code = 0x1500

    def __init__(self, consistency: str, received: int, required: int, failures: int,
                 write_type: str = "SIMPLE") -> None:
        super().__init__(_failed(consistency, received, required, failures), consistency, received, required)
        self.failures = failures
        self.write_type = write_type


# ---------------------------------------------------------------------------------------------------------------
# The client's mistakes


class SyntaxException(WidecolError):
    """The statement does not parse. `line` is 1-based, `column` 0-based, as Cassandra reports them."""

    code = 0x2000

    def __init__(self, message: str, line: int = 0, column: int = 0) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class Unauthorized(WidecolError):
    code = 0x2100


class InvalidRequest(WidecolError):
    """The statement parses but is semantically wrong: unknown names, wrong types, unsupported features."""

    code = 0x2200


class ConfigurationException(WidecolError):
    code = 0x2300


class AlreadyExists(ConfigurationException):
    code = 0x2400

    def __init__(self, keyspace: str, table: str = "") -> None:
        what = f"table {keyspace}.{table}" if table else f"keyspace {keyspace}"
        super().__init__(f"Cannot add already existing {what}")
        self.keyspace = keyspace
        self.table = table


class Unprepared(WidecolError):
    code = 0x2500

    def __init__(self, statement_id: bytes) -> None:
        super().__init__(f"Prepared query with ID {statement_id.hex()} not found")
        self.statement_id = statement_id


# ---------------------------------------------------------------------------------------------------------------
# The disk's fault


class Corruption(ServerError):
    """Bytes on disk fail their checksum or their format. Names the file and the byte offset."""

    def __init__(self, path: str, offset: int, detail: str) -> None:
        super().__init__(f"corruption in {path} at offset {offset}: {detail}")
        self.path = path
        self.offset = offset
        self.detail = detail


class ConfigError(Exception):
    """A bad cluster.toml or command-line value. Its message is one line naming the key."""
