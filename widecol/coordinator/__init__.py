"""The coordinator's decisions, sans-IO: consistency levels, write and read handlers, read repair, hints.

consistency.py  levels, block_for, the Unavailable check
write.py        WriteHandler: targets, hints to store, when the level is met
read.py         ReadHandler, digests, resolve/resolve_many (reconciliation and read-repair mutations)

The trio side (proxy.py) sends the messages these decide on; docs/coordinator.md describes the decisions.
"""

from widecol.coordinator.consistency import assure_sufficient_live, block_for, code, level
from widecol.coordinator.read import ReadHandler, digest, resolve, resolve_many
from widecol.coordinator.write import WriteHandler

__all__ = [
    "ReadHandler",
    "WriteHandler",
    "assure_sufficient_live",
    "block_for",
    "code",
    "digest",
    "level",
    "resolve",
    "resolve_many",
]
