"""What reads and writes share: a table's parsed types, bound values, and the keys a WHERE clause names.

How this works. `TableInfo` parses a TableDef's column types once. `Values` turns a statement term (a literal,
a bind marker, a type hint, token(...)) into a validated Python value of a column's type, raising InvalidRequest
in Cassandra's words. `Where` sorts a WHERE clause's relations by what they restrict (partition key columns,
clustering columns, token(...), other columns); `partition_keys` gives every partition key the clause selects
(the product of = and IN values) and `clustering_ranges` the clustering byte ranges [start, end) it selects
(the product of an = / IN prefix, then at most one slice), with what cannot be turned into ranges left over
for filtering. Partition key bytes are the single column's serialized value, or Cassandra's composite form
([2-byte length][bytes][0x00] per component) for several columns.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from widecol.cql import ast
from widecol.errors import InvalidRequest
from widecol.schema.clustering import encode_clustering, encode_component, prefix_upper_bound
from widecol.schema.literals import CollectionLiteral, Literal
from widecol.schema.model import CLUSTERING, PARTITION_KEY, STATIC, ColumnDef, TableDef
from widecol.schema.scalars import CqlType
from widecol.schema.types import parse_type
from widecol.storage.token import token

FILTERING_MESSAGE = (
    "Cannot execute this query as it might involve data filtering and thus may have unpredictable performance. "
    "If you want to execute this query despite the performance unpredictability, use ALLOW FILTERING"
)
SLICE_OPS = ("<", "<=", ">", ">=")
BIGINT = parse_type("bigint")
INT = parse_type("int")


class TableInfo:
    """A TableDef with its column types parsed, and the key encodings of its rows."""

    def __init__(self, table: TableDef) -> None:
        self.table = table
        # Any, not CqlType: callers dispatch on the collection attributes (kind, element, key, value).
        self.types: dict[str, Any] = {c.name: parse_type(c.type) for c in table.columns}
        self.columns: dict[str, ColumnDef] = {c.name: c for c in table.columns}
        self.partition_key = table.partition_key
        self.clustering = table.clustering
        self.pk_types = [self.types[c.name] for c in self.partition_key]
        self.ck_types = [self.types[c.name] for c in self.clustering]
        self.ck_orders = ["DESC" if c.descending else "ASC" for c in self.clustering]
        self.storage_id = table.storage_id
        self.ttl = int(table.options.get("default_time_to_live", 0) or 0)
        self.dropped: dict[str, int] = dict(table.options.get("dropped_columns", {}))

    def column(self, name: str) -> ColumnDef:
        col = self.columns.get(name)
        if col is None:
            raise InvalidRequest(f"Undefined column name {name} in table {self.table.keyspace}.{self.table.name}")
        return col

    def is_static(self, name: str) -> bool:
        return self.columns[name].kind == STATIC

    def is_multicell(self, name: str) -> bool:
        t = self.types[name]
        return t.is_collection and not t.frozen

    def encode_key(self, values: Sequence[Any]) -> bytes:
        """Partition key bytes of VALUES (one per partition key column)."""
        for col, v in zip(self.partition_key, values, strict=True):
            if v is None:
                raise InvalidRequest(f"Invalid null value in condition for column {col.name}")
        parts = [t.serialize(v) for t, v in zip(self.pk_types, values, strict=True)]
        if len(parts) == 1:
            return parts[0]
        return b"".join(struct.pack(">H", len(p)) + p + b"\x00" for p in parts)

    def decode_key(self, key: bytes) -> tuple:
        if len(self.pk_types) == 1:
            return (self.pk_types[0].deserialize(key),)
        out, pos = [], 0
        for t in self.pk_types:
            (n,) = struct.unpack_from(">H", key, pos)
            out.append(t.deserialize(key[pos + 2: pos + 2 + n]))
            pos += n + 3
        return tuple(out)

    def encode_clustering(self, values: Sequence[Any]) -> bytes:
        return encode_clustering(self.ck_types, self.ck_orders, values)


class _Unset:
    """A bound value the client left unset (the native protocol's NOT_SET): a written column it names is left as
    it is; anywhere a value is needed it is an error."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET = _Unset()


class Values:
    """Evaluates statement terms against the bound parameters."""

    def __init__(self, params: list | tuple | dict | None,
                 functions: dict[str, Callable[[], tuple[Any, str]]] | None = None) -> None:
        self.params = params
        self.functions = functions or {}

    def bound(self, marker: ast.BindMarker) -> Any:
        p = self.params
        if isinstance(p, dict):
            key = marker.name if marker.name is not None else marker.index
            if key not in p:
                raise InvalidRequest(f"No value was bound for marker {key}")
            return p[key]
        if p is None or marker.index >= len(p):
            raise InvalidRequest(f"There were {0 if p is None else len(p)} markers(?) in CQL but not as many "
                                 "bound values")
        return p[marker.index]

    def value(self, term: Any, t: CqlType, column: str, unset_ok: bool = False) -> Any:
        """The validated Python value of TERM for a receiver of type T called COLUMN (None for null; UNSET for an
        unset bound value where UNSET_OK, else InvalidRequest)."""
        if isinstance(term, ast.BindMarker):
            v = self.bound(term)
            if v is UNSET:
                if unset_ok:
                    return UNSET
                raise InvalidRequest(f"Invalid unset value for column {column}")
            return None if v is None else t.validate(v)
        if isinstance(term, ast.TypeHint):
            return self.value(term.value, t, column)
        if isinstance(term, (Literal, CollectionLiteral)):
            return t.from_literal(term, column)
        if isinstance(term, ast.FunctionCall):
            fn = self.functions.get(term.name)
            if fn is None or term.args:
                raise InvalidRequest(f"Function {term.name} is not supported yet")
            result, result_type = fn()
            if t.cql_name not in (result_type, "uuid" if result_type == "timeuuid" else result_type):
                raise InvalidRequest(f"Type error: cannot assign result of function system.{term.name} (type "
                                     f"{result_type}) to {column} (type {t.cql_name})")
            return result
        raise InvalidRequest(f"Invalid value for column {column}")

    def values_in(self, rhs: Any, t: CqlType, column: str) -> list:
        """The values of an IN list (a tuple of terms or one marker bound to a list)."""
        if isinstance(rhs, ast.BindMarker):
            items = self.bound(rhs)
            if items is None:
                raise InvalidRequest(f"Invalid null value for IN restriction on {column}")
            return [t.validate(v) for v in items]
        return [self.value(term, t, column) for term in rhs]

    def integer(self, term: Any, what: str) -> int | None:
        """A TTL, timestamp or limit; an unset one counts as not given."""
        if term is None:
            return None
        v = self.value(term, INT if what == "ttl" else BIGINT, what, unset_ok=True)
        return None if v is None or v is UNSET else int(v)

    def token(self, term: Any, info: TableInfo) -> int:
        """A token bound: token(values...) or a bigint."""
        if isinstance(term, ast.FunctionCall) and term.name == "token":
            if len(term.args) != len(info.partition_key):
                raise InvalidRequest("Invalid number of arguments in call to function system.token")
            vals = [self.value(a, t, c.name) for a, t, c in zip(term.args, info.pk_types, info.partition_key,
                                                                    strict=True)]
            return token(info.encode_key(vals))
        v = self.value(term, BIGINT, "partition key token")
        return int(v)


@dataclass
class Where:
    """A WHERE clause's relations, by what they restrict."""

    partition: dict[str, list[ast.Relation]] = field(default_factory=dict)
    clustering: dict[str, list[ast.Relation]] = field(default_factory=dict)
    multi: list[ast.Relation] = field(default_factory=list)
    tokens: list[ast.Relation] = field(default_factory=list)
    others: list[ast.Relation] = field(default_factory=list)

    @classmethod
    def of(cls, info: TableInfo, relations: Sequence[ast.Relation]) -> Where:
        w = cls()
        for r in relations:
            if isinstance(r.lhs, ast.FunctionCall):
                if r.lhs.name != "token":
                    raise InvalidRequest(f"Function {r.lhs.name} is not allowed in a WHERE clause")
                names = [a.name for a in r.lhs.args if isinstance(a, ast.ColumnRef)]
                if names != [c.name for c in info.partition_key]:
                    raise InvalidRequest("The token function arguments must be in the partition key order: "
                                         + ", ".join(c.name for c in info.partition_key))
                w.tokens.append(r)
            elif isinstance(r.lhs, tuple):
                for name in r.lhs:
                    if info.column(name).kind != CLUSTERING:
                        raise InvalidRequest(f"Multi-column relations can only be applied to clustering columns but "
                                             f"was applied to: {name}")
                w.multi.append(r)
            else:
                col = info.column(r.lhs.name)
                if r.op in ("!=",):
                    raise InvalidRequest(f"Unsupported \"!=\" relation: {r.lhs.name} != ...")
                if col.kind == PARTITION_KEY and r.op in ("=", "IN"):
                    w.partition.setdefault(col.name, []).append(r)
                elif col.kind == CLUSTERING and r.op in ("=", "IN", *SLICE_OPS):
                    w.clustering.setdefault(col.name, []).append(r)
                else:
                    w.others.append(r)
        return w


def partition_keys(info: TableInfo, where: Where, values: Values) -> list[bytes] | None:
    """Every partition key the clause selects, sorted and without duplicates; None if not all restricted."""
    if not where.partition or len(where.partition) < len(info.partition_key):
        return None
    choices = []
    for col, t in zip(info.partition_key, info.pk_types, strict=True):
        rels = where.partition[col.name]
        if len(rels) > 1:
            raise InvalidRequest(f"{col.name} cannot be restricted by more than one relation if it includes an "
                                 "Equal")
        r = rels[0]
        vals = [values.value(r.rhs, t, col.name)] if r.op == "=" else values.values_in(r.rhs, t, col.name)
        for v in vals:
            if v is None:
                raise InvalidRequest(f"Invalid null value in condition for column {col.name}")
        choices.append(vals)
    keys = {info.encode_key(combo) for combo in itertools.product(*choices)}
    return sorted(keys, key=lambda k: [encode_component(t, v) for t, v in zip(info.pk_types, info.decode_key(k),
                                                                               strict=True)])


def missing_partition_key(info: TableInfo, where: Where) -> None:
    missing = [c.name for c in info.partition_key if c.name not in where.partition]
    if missing:
        raise InvalidRequest("Some partition key parts are missing: " + ", ".join(missing))


def eq_prefix(info: TableInfo, where: Where, values: Values) -> tuple[int, list[tuple]]:
    """How many clustering columns, from the first on, are restricted by = or IN (single or multi-column), and
    every combination of their values, in clustering order."""
    combos: list[tuple] = [()]
    k = 0
    while k < len(info.clustering):
        name = info.clustering[k].name
        multi = [r for r in where.multi if r.op in ("=", "IN") and r.lhs[0] == name]
        if multi:
            r = multi[0]
            names = list(r.lhs)
            if names != [c.name for c in info.clustering[k:k + len(names)]]:
                raise InvalidRequest(f"Clustering columns must appear in the PRIMARY KEY order in multi-column "
                                     f"relations: ({', '.join(names)})")
            types = info.ck_types[k:k + len(names)]
            if r.op == "=":
                tuples = [_tuple(values, r.rhs, types, names)]
            elif isinstance(r.rhs, ast.BindMarker):
                tuples = [tuple(t.validate(v) for t, v in zip(types, item, strict=True))
                          for item in values.bound(r.rhs) or ()]
            else:
                tuples = [_tuple(values, item, types, names) for item in r.rhs]
            combos = [c + v for c in combos for v in tuples]
            k += len(names)
            continue
        rels = [r for r in where.clustering.get(name, []) if r.op in ("=", "IN")]
        if not rels:
            break
        r, t = rels[0], info.ck_types[k]
        vals = [values.value(r.rhs, t, name)] if r.op == "=" else values.values_in(r.rhs, t, name)
        combos = [c + (v,) for c in combos for v in vals]
        k += 1
    for combo in combos:
        if any(v is None for v in combo):
            raise InvalidRequest("Invalid null value in condition for a clustering column")
    if k == 0:
        return 0, []
    keyed = {info.encode_clustering(c): c for c in combos}
    return k, [keyed[key] for key in sorted(keyed)]


def _tuple(values: Values, term: Any, types: Sequence[CqlType], names: Sequence[str]) -> tuple:
    if isinstance(term, ast.BindMarker):
        return tuple(t.validate(v) for t, v in zip(types, values.bound(term), strict=True))
    if not isinstance(term, CollectionLiteral) or len(term.items) != len(names):
        raise InvalidRequest(f"Expected {len(names)} elements in value tuple, but got {term}")
    return tuple(values.value(item, t, n) for item, t, n in zip(term.items, types, names, strict=True))


def clustering_ranges(info: TableInfo, where: Where, values: Values) -> tuple[list[tuple], list[ast.Relation]]:
    """Byte ranges [start, end) (None: unbounded) selected by the clustering restrictions, in clustering order,
    and the clustering relations left over (which need filtering)."""
    k, prefix = eq_prefix(info, where, values)
    used = {c.name for c in info.clustering[:k]}
    leftover = []
    lower: list[tuple[str, tuple]] = []
    upper: list[tuple[str, tuple]] = []
    for name, rels in where.clustering.items():
        for r in rels:
            if name in used and r.op in ("=", "IN"):
                continue
            if r.op in SLICE_OPS and k < len(info.clustering) and name == info.clustering[k].name:
                v = values.value(r.rhs, info.ck_types[k], name)
                (lower if r.op[0] == ">" else upper).append((r.op, (v,)))
            else:
                leftover.append(r)
    for r in where.multi:
        if r.op in ("=", "IN"):
            continue
        names = list(r.lhs)
        if r.op not in SLICE_OPS or names != [c.name for c in info.clustering[k:k + len(names)]]:
            raise InvalidRequest(f"Unsupported multi-column relation on ({', '.join(names)}) {r.op}")
        if len({info.ck_orders[k + i] for i in range(len(names))}) > 1:
            raise InvalidRequest("Multi-column slices over columns of mixed clustering order are not supported yet")
        if not isinstance(r.rhs, CollectionLiteral) or len(r.rhs.items) != len(names):
            raise InvalidRequest("Expected a tuple of " + str(len(names)) + " values")
        vals = tuple(values.value(item, info.ck_types[k + i], names[i]) for i, item in enumerate(r.rhs.items))
        (lower if r.op[0] == ">" else upper).append((r.op, vals))
    if len(lower) > 1 or len(upper) > 1:
        raise InvalidRequest("More than one restriction was found for the start (or end) bound")
    descending = k < len(info.clustering) and info.ck_orders[k] == "DESC"
    ranges = []
    for combo in (prefix if k else [()]):
        base = info.encode_clustering(combo)
        start: bytes | None = base or None
        end: bytes | None = prefix_upper_bound(base) or None
        for op, vals in lower + upper:
            enc = info.encode_clustering(list(combo) + list(vals))
            after = prefix_upper_bound(enc)
            is_lower = (op[0] == ">") != descending
            inclusive = op.endswith("=")
            if is_lower:
                start = enc if inclusive else after
            else:
                end = after if inclusive else enc
        if start is not None and end is not None and start >= end:
            continue
        ranges.append((start, end))
    ranges.sort(key=lambda r: r[0] or b"")
    return ranges, leftover


def in_ranges(ck: bytes, ranges: Sequence[tuple]) -> bool:
    for start, end in ranges:
        if (start is None or ck >= start) and (end is None or ck < end):
            return True
    return False
