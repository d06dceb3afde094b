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


# Everything above the storage layer: what the lower layers never import.
_UPPER = (
    "redis_xcom.storage",
    "redis_xcom.runtime",
    "redis_xcom.backend",
    "redis_xcom.clearing",
    "redis_xcom.ui",
    "redis_xcom.ops",
)


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("redis_xcom.codec", ("redis", "airflow", *_UPPER, "redis_xcom.keys")),
        ("redis_xcom.keys", ("redis", "airflow", *_UPPER, "redis_xcom.codec")),
        # The rows the UI and ops read: keys and nothing that talks to Redis or Airflow.
        ("redis_xcom.rows", ("redis", "airflow", *_UPPER)),
        ("redis_xcom.storage", ("redis_xcom.codec", *_UPPER[1:], "redis_xcom.keys", "airflow")),
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


def test_ops_reach_redis_without_airflows_xcom_classes() -> None:
    """ops take the runtime (settings, store, server info) and clearing.py; only doctor compares the
    configured [core] xcom_backend with our class, importing it inside that check."""
    offenders = {
        f"{module} imports {imported}"
        for module, imported_set in _top_level_imports().items()
        if _in(module, "redis_xcom.ops")
        for imported in imported_set
        if _in(imported, "redis_xcom.backend") or _in(imported, "airflow.sdk.bases")
    }
    assert not offenders, sorted(offenders)


def _top_level_imports() -> dict[str, set[str]]:
    """The imports each module makes when it is imported (not those inside functions)."""
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        names: set[str] = set()
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
        found[_module_name(path)] = names
    return found


REDISPY_COMPAT = PACKAGE / "storage" / "redispy_compat.py"
# redis-py's modules and names that are not its public API.
_PRIVATE_REDIS_NAMES = {"PythonRespSerializer", "Encoder", "HiredisRespSerializer"}
# NamedTuple's own API (underscored so as not to clash with fields): not private.
_NAMEDTUPLE_API = {"_replace", "_fields", "_asdict", "_make"}


def _private_redis_touches(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imports_redis = any(_in(m, "redis") for m in _imports(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and _in(node.module, "redis"):
            private = [a.name for a in node.names if a.name.startswith("_") or a.name in _PRIVATE_REDIS_NAMES]
            if any(part.startswith("_") for part in node.module.split(".")) or private:
                found.append(f"line {node.lineno}: from {node.module} import {', '.join(private) or '...'}")
        elif isinstance(node, ast.Import):
            found += [f"line {node.lineno}: import {a.name}" for a in node.names if "._" in a.name]
        elif (
            imports_redis
            and isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "setattr", "hasattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and str(node.args[1].value).startswith("_")
            and not str(node.args[1].value).startswith("__")
        ):
            found.append(f"line {node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
        elif (
            imports_redis
            and isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and node.attr not in _NAMEDTUPLE_API
            and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            found.append(f"line {node.lineno}: .{node.attr}")
    return found


def test_only_redispy_compat_touches_redis_pys_private_attributes() -> None:
    """A private attribute read on an object of a module that uses redis-py, or an import of redis-py's
    internals: only storage/redispy_compat.py may (tests/test_redispy_compat.py checks each touch)."""
    offenders = {
        f"{path.relative_to(PACKAGE.parent)} {touch}"
        for path in PACKAGE.rglob("*.py")
        if path != REDISPY_COMPAT
        for touch in _private_redis_touches(path)
    }
    assert not offenders, sorted(offenders)


def test_the_private_attribute_check_sees_a_touch() -> None:
    """The check above is not vacuous: it finds redispy_compat's own touches."""
    touches = " ".join(_private_redis_touches(REDISPY_COMPAT))
    assert "_retries" in touches and "PythonRespSerializer" in touches


STORE = PACKAGE / "storage" / "store.py"
# The jobs the value store does not do: inspection (server_info), topology (topology), translation (errors).
_INSPECTION = {"describe", "ages", "exist", "nodes", "key_count", "ttl", "eviction_policy"}


def test_the_value_store_holds_no_topology_switch_inspection_or_error_sorting() -> None:
    text = STORE.read_text(encoding="utf-8")
    tree = ast.parse(text)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    }
    assert not names & {"RedisCluster", "SentinelConnectionPool", "get_primaries", "kind"}, (
        "topology: topology.py"
    )
    assert "isinstance(client" not in text and "isinstance(self.client" not in text
    store = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RedisStore")
    methods = {n.name for n in store.body if isinstance(n, ast.FunctionDef)}
    assert not methods & _INSPECTION, "inspection belongs in server_info.py"
    assert not _in_any(_imports(STORE), ("redis_xcom.storage.server_info", "redis.sentinel", "redis.cluster"))
    # Error classes are sorted and messages written in storage/errors.py only.
    assert not names & {
        "RedisUnavailableError",
        "AuthenticationError",
        "MasterNotFoundError",
        "ConnectionError",
    }


def test_each_storage_module_has_one_job() -> None:
    """Error translation only in storage/errors.py, inspection only in server_info.py, the topology
    switch only in topology.py (client.py builds clients and names the kind once, from the URL)."""
    jobs = {
        "RedisUnavailableError": "redis_xcom.storage.errors",
        "RedisCluster.PRIMARIES": "redis_xcom.storage.topology",
        "MEMORY": "redis_xcom.storage.server_info",
    }
    for marker, owner in jobs.items():
        holders = {
            _module_name(path)
            for path in (PACKAGE / "storage").glob("*.py")
            if marker in path.read_text(encoding="utf-8")
        }
        assert holders == {owner}, f"{marker}: {sorted(holders)}"


def _in_any(modules: set[str], layers: tuple[str, ...]) -> bool:
    return any(_in(m, layer) for m in modules for layer in layers)
