"""cluster.toml -> a validated NodeConfig.

How this works: the file is parsed with tomllib, every section is read against a table of known keys with their
type and default, and the first problem raises ConfigError with one line that names the key. Unknown keys are
errors too, so a typo never silently falls back to a default. Relative data directories are resolved against the
file's folder, so `widecol launch` works from anywhere.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from widecol.errors import ConfigError


@dataclass(frozen=True)
class StorageConfig:
    commitlog_sync: str = "periodic"  # "periodic" or "batch", as Cassandra's commitlog_sync
    commitlog_sync_period_ms: int = 1000
    commitlog_segment_mb: int = 32
    memtable_mb: int = 64
    compaction_min_threshold: int = 4
    block_cache_mb: int = 16  # decoded SSTable blocks kept for reads; 0: no cache
    compaction_process: bool = True  # merge clean SSTables, flush packed memtables in a worker (storage/compactor.py)

    def check(self) -> None:
        if self.commitlog_sync not in ("periodic", "batch"):
            raise ConfigError(
                f'storage.commitlog_sync: expected "periodic" or "batch", got {self.commitlog_sync!r}'
            )
        for name in ("commitlog_sync_period_ms", "commitlog_segment_mb", "memtable_mb", "compaction_min_threshold"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"storage.{name}: must be positive, got {getattr(self, name)}")
        if self.compaction_min_threshold < 2:
            raise ConfigError("storage.compaction_min_threshold: must be at least 2")
        if self.block_cache_mb < 0:
            raise ConfigError(f"storage.block_cache_mb: must be 0 or more, got {self.block_cache_mb}")


@dataclass(frozen=True)
class GossipConfig:
    interval_ms: int = 1000
    phi_convict_threshold: float = 8.0


@dataclass(frozen=True)
class TimeoutsConfig:
    write_ms: int = 2000
    read_ms: int = 5000


@dataclass(frozen=True)
class HintsConfig:
    enabled: bool = True
    max_window_s: int = 3 * 3600


@dataclass(frozen=True)
class StreamingConfig:
    throughput_mb_s: float = 64.0  # cap on data a node streams (bootstrap, decommission, removenode); 0: none

    def check(self) -> None:
        if self.throughput_mb_s < 0:
            raise ConfigError(f"streaming.throughput_mb_s: must be 0 (no cap) or positive, got {self.throughput_mb_s}")


@dataclass(frozen=True)
class NativeConfig:
    max_frame_mb: int = 256
    max_connections: int = 1024


@dataclass(frozen=True)
class NodeConfig:
    """Everything one node needs to start. `data_dir` is absolute."""

    name: str = "local"
    cluster_name: str = "widecol"
    address: str = "127.0.0.1"
    native_port: int = 9042
    internode_port: int = 7000
    data_dir: Path = Path("widecol-data")
    dc: str = "dc1"
    rack: str = "rack1"
    num_tokens: int = 16
    seeds: tuple[str, ...] = ("127.0.0.1:7000",)  # internode "host:port" of each seed
    secret: str | None = None
    standalone: bool = True  # a single node without a cluster file: no internode messaging or gossip
    storage: StorageConfig = field(default_factory=StorageConfig)
    gossip: GossipConfig = field(default_factory=GossipConfig)
    timeouts: TimeoutsConfig = field(default_factory=TimeoutsConfig)
    hints: HintsConfig = field(default_factory=HintsConfig)
    native: NativeConfig = field(default_factory=NativeConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)


_SECTIONS = {
    "storage": StorageConfig,
    "gossip": GossipConfig,
    "timeouts": TimeoutsConfig,
    "hints": HintsConfig,
    "native": NativeConfig,
    "streaming": StreamingConfig,
}
_NODE_KEYS = {"name", "address", "native_port", "internode_port", "data_dir", "dc", "rack"}
_CLUSTER_KEYS = {"name", "num_tokens", "seeds", "secret"}


def _typed(where: str, value: Any, expected: type) -> Any:
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if not isinstance(value, expected):
        raise ConfigError(f"{where}: expected {expected.__name__}, got {type(value).__name__} {value!r}")
    return value


def _section(name: str, cls: type, raw: dict[str, Any]) -> Any:
    known = {f.name: f for f in fields(cls)}
    values = {}
    for key, value in raw.items():
        if key not in known:
            raise ConfigError(f"{name}.{key}: unknown key (known: {', '.join(sorted(known))})")
        default = getattr(cls(), key)
        values[key] = _typed(f"{name}.{key}", value, type(default))
    section = cls(**values)
    if hasattr(section, "check"):
        section.check()
    return section


def load_cluster_file(path: str | Path) -> dict[str, Any]:
    """Parse FILE; raise ConfigError naming the file on a missing file or a TOML syntax error."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such cluster file") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None


def node_names(path: str | Path) -> list[str]:
    """The names of the nodes of cluster file PATH, in file order."""
    raw = load_cluster_file(path)
    return [str(n.get("name")) for n in raw.get("nodes", [])]


def node_config(path: str | Path, node: str) -> NodeConfig:
    """The validated configuration of node NODE of cluster file PATH."""
    path = Path(path).resolve()
    raw = load_cluster_file(path)
    for key in raw:
        if key not in ("cluster", "nodes", *_SECTIONS):
            raise ConfigError(f"{key}: unknown section")
    cluster = raw.get("cluster", {})
    for key in cluster:
        if key not in _CLUSTER_KEYS:
            raise ConfigError(f"cluster.{key}: unknown key (known: {', '.join(sorted(_CLUSTER_KEYS))})")
    nodes = raw.get("nodes")
    if not isinstance(nodes, list) or not nodes:
        raise ConfigError("nodes: the file must list at least one [[nodes]] entry")
    matches = [n for n in nodes if n.get("name") == node]
    if not matches:
        names = ", ".join(str(n.get("name")) for n in nodes)
        raise ConfigError(f"--node {node}: no such node in {path} (nodes: {names})")
    entry = matches[0]
    for key in entry:
        if key not in _NODE_KEYS:
            raise ConfigError(f"nodes.{key}: unknown key (known: {', '.join(sorted(_NODE_KEYS))})")
    for key in ("name", "address"):
        if key not in entry:
            raise ConfigError(f"nodes.{key}: missing for node {node}")
    seeds = cluster.get("seeds", [entry["address"]])
    if not isinstance(seeds, list) or not all(isinstance(s, str) for s in seeds):
        raise ConfigError("cluster.seeds: expected a list of addresses")
    data_dir = Path(_typed("nodes.data_dir", entry.get("data_dir", f"data/{node}"), str))
    if not data_dir.is_absolute():
        data_dir = path.parent / data_dir
    num_tokens = _typed("cluster.num_tokens", cluster.get("num_tokens", 16), int)
    if not 1 <= num_tokens <= 1024:
        raise ConfigError(f"cluster.num_tokens: must be between 1 and 1024, got {num_tokens}")
    ports = {n.get("address"): n.get("internode_port", 7000) for n in nodes}
    seeds = [seed if ":" in seed else f"{seed}:{ports.get(seed, 7000)}" for seed in seeds]
    secret = cluster.get("secret")
    if secret is not None:
        _typed("cluster.secret", secret, str)
    sections = {name: _section(name, cls, raw.get(name, {})) for name, cls in _SECTIONS.items()}
    return NodeConfig(
        name=node,
        cluster_name=_typed("cluster.name", cluster.get("name", "widecol"), str),
        address=_typed("nodes.address", entry["address"], str),
        native_port=_typed("nodes.native_port", entry.get("native_port", 9042), int),
        internode_port=_typed("nodes.internode_port", entry.get("internode_port", 7000), int),
        data_dir=data_dir,
        dc=_typed("nodes.dc", entry.get("dc", "dc1"), str),
        rack=_typed("nodes.rack", entry.get("rack", "rack1"), str),
        num_tokens=num_tokens,
        seeds=tuple(seeds),
        secret=secret,
        standalone=False,
        **sections,
    )
