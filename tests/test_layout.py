"""The package's layers, read from its own imports: data flows one way and nothing imports in a circle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "redis_xcom"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module this file imports, at any depth of its code (lazy imports count too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                # `from redis_xcom.codec import science` imports the submodule; a name, the module.
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in NAMES else node.module)
    return found


NAMES = {_module_name(p) for p in PACKAGE.rglob("*.py")}
MODULES = {_module_name(p): _imports(p) for p in PACKAGE.rglob("*.py")}


def _internal(module: str) -> set[str]:
    return {m for m in MODULES[module] if m in MODULES and m != module}


def _in(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("redis_xcom.codec", ("redis", "redis_xcom.storage", "redis_xcom.backend", "redis_xcom.keys")),
        ("redis_xcom.keys", ("redis", "redis_xcom.storage", "redis_xcom.backend", "redis_xcom.codec")),
        ("redis_xcom.storage", ("redis_xcom.codec", "redis_xcom.backend", "redis_xcom.keys")),
        ("redis_xcom.config", ("redis", "redis_xcom.storage", "redis_xcom.codec", "redis_xcom.backend")),
        # The inline decision is pure: a value and a threshold in, a bool out.
        ("redis_xcom.inline", ("redis", "redis_xcom.storage", "redis_xcom.codec", "redis_xcom.backend")),
        # State keys and records are pure; only state.storage reaches the runtime and its store.
        ("redis_xcom.state.keys", ("redis", "redis_xcom.storage", "redis_xcom.codec", "redis_xcom.backend")),
        ("redis_xcom.state.record", ("redis", "redis_xcom.storage", "redis_xcom.backend")),
        ("redis_xcom.state.backend", ("redis", "redis_xcom.storage", "redis_xcom.backend")),
    ],
)
def test_lower_layers_do_not_import_upper_ones(layer: str, forbidden: tuple[str, ...]) -> None:
    offenders = {
        f"{module} imports {imported}"
        for module, imported_set in MODULES.items()
        if _in(module, layer)
        for imported in imported_set
        if any(_in(imported, f) for f in forbidden)
    }
    assert not offenders, sorted(offenders)


def test_only_the_command_line_entry_point_imports_ops() -> None:
    offenders = {
        f"{module} imports {imported}"
        for module, imported_set in MODULES.items()
        if not _in(module, "redis_xcom.ops") and module != "redis_xcom.__main__"
        for imported in imported_set
        if _in(imported, "redis_xcom.ops")
    }
    assert not offenders, sorted(offenders)


def test_nothing_imports_the_ui_and_the_ui_imports_no_ops() -> None:
    """The UI plugin is reached only through its entry point (airflow.plugins, the provider info)."""
    offenders = {
        f"{module} imports {imported}"
        for module, imported_set in MODULES.items()
        for imported in imported_set
        if (not _in(module, "redis_xcom.ui") and _in(imported, "redis_xcom.ui"))
        or (_in(module, "redis_xcom.ui") and _in(imported, "redis_xcom.ops"))
    }
    assert not offenders, sorted(offenders)


def test_the_ui_plugin_module_imports_only_airflows_plugin_base_and_the_preload() -> None:
    """Airflow imports plugins in every process: the plugin module must stay that cheap (the app is
    imported on the api-server's first request to it; redis-py only where the backend is in use,
    tests/test_preload.py)."""
    imported = MODULES["redis_xcom.ui.plugin"] - {"__future__", "typing"}
    assert imported == {"airflow.plugins_manager", "redis_xcom.ui.app", "redis_xcom.preload"}


def test_no_import_cycles() -> None:
    def visit(module: str, path: tuple[str, ...]) -> None:
        for nxt in _internal(module):
            if nxt in path:
                cycle = " -> ".join((*path[path.index(nxt) :], nxt))
                raise AssertionError(f"import cycle: {cycle}")
            if nxt not in done:
                visit(nxt, (*path, nxt))
        done.add(module)

    done: set[str] = set()
    for module in MODULES:
        visit(module, (module,))


def test_a_worker_importing_the_backend_loads_no_scientific_library() -> None:
    code = (
        "import sys, redis_xcom; redis_xcom.ExclusiveRedisXCom; "
        "print(','.join(m for m in ('numpy', 'pandas', 'pyarrow', 'polars') if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "", f"importing the backend loaded {loaded.stdout.strip()}"
