"""The sans-IO rule (docs/architecture.md): core modules import neither trio nor socket, and imports point down."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "widecol"
# Packages whose every module is a core or a synchronous library: no trio, no sockets.
CORE_PACKAGES = ["cluster", "cql", "schema", "storage", "coordinator"]
CORE_FILES = [
    "net/native/frame.py", "net/native/codec.py", "net/native/messages.py", "net/native/results.py",
    "net/native/connection.py", "net/frames.py", "config.py", "errors.py",
]
FORBIDDEN = {"trio", "socket", "asyncio"}
# Lower layers must not import higher ones.
LAYERS = ["storage", "schema", "cql", "cluster", "coordinator", "net", "client", "repl", "node", "cli"]


def _modules():
    for package in CORE_PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))
    for name in CORE_FILES:
        if (ROOT / name).exists():
            yield ROOT / name


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", list(_modules()), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_does_no_network_io(path):
    bad = {name for name in _imports(path) if name.split(".")[0] in FORBIDDEN}
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_imports_point_down(layer):
    above = set(LAYERS[LAYERS.index(layer) + 1 :])
    for path in sorted((ROOT / layer).rglob("*.py")) if (ROOT / layer).is_dir() else []:
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "widecol" and len(parts) > 1:
                assert parts[1] not in above, f"{path.relative_to(ROOT)} imports {name}, a higher layer"
