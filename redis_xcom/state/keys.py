"""State scopes <-> Redis keys, and the references worker-side values leave in the DB.

Key layout (readable with ``redis-cli --scan --pattern '<prefix>:state:*'``)::

    <prefix>:state:{t/<dag_id>/<run_id>/<task_id>}:<map_index>            hash: one task's state
    <prefix>:state:{t/<dag_id>/<run_id>/<task_id>/<region>}:<map_index>   the same inside a 3.4 region
    <prefix>:state:{t/<dag_id>/<run_id>/<task_id>}#maps                   set: the task's hashes above
    <prefix>:state:{a/<id|name|uri>/<asset>}                              hash: one asset's state

A hash holds every key of its scope, in two fields each: ``r:<key>`` is what the metadata DB row would
hold (written by the server-side backend, ``[state_store] backend``) and ``v:<key>`` a value a DB row
refers to (written on workers, ``[workers] state_store_backend``). Fields are binary-safe, so state keys
are stored verbatim. The hash tag is the task (all its map indexes) or the asset: on a cluster a
scope's keys, its ``#maps`` set included, share one slot, and ``clear`` is one UNLINK there.

Ids are encoded with the XCom keys' escaping (``redis_xcom.keys``): no ``/ { } * ? [ ] \\`` or spaces
survive in a component, so a key names exactly one scope and a glob built from ids selects only it.
Server-side asset scopes carry the asset's id, worker-side ones its name or URI (workers never know
the id): each has its own hash.

A reference is ``redis-xcom-state://<hash key>#<encoded state key>`` and always names a ``v:`` field.
It is deterministic per (scope, key), as Airflow requires.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from redis_xcom.keys import encode_component, encode_tag_component

REFERENCE_SCHEME = "redis-xcom-state://"
STATE = "state"
TASK = "t"
ASSET = "a"
MAPS = "#maps"
ROW = "r:"  # the field a server-side backend writes: what the DB row would hold
VALUE = "v:"  # the field a worker-side backend writes: a value a DB row refers to
ASSET_KINDS = ("id", "name", "uri")


@dataclass(frozen=True)
class StateScope:
    """A task or asset scope as this package keys it (Airflow's TaskScope / AssetScope, either copy).

    ``region`` is Airflow 3.4's region id in hex, None outside a region (and before 3.4).
    """

    kind: str  # TASK or ASSET
    dag_id: str = ""
    run_id: str = ""
    task_id: str = ""
    map_index: int = -1
    region: str | None = None
    asset_kind: str = ""  # one of ASSET_KINDS
    asset: str = ""

    def describe(self) -> str:
        """The scope as errors name it."""
        if self.kind == TASK:
            region = f", region_id={uuid.UUID(hex=self.region)}" if self.region else ""
            return (
                f"task state of dag_id={self.dag_id!r}, run_id={self.run_id!r}, task_id={self.task_id!r}, "
                f"map_index={self.map_index}{region}"
            )
        shown = int(self.asset) if self.asset_kind == "id" else self.asset
        return f"asset state of asset {self.asset_kind}={shown!r}"


def scope_of(scope: Any) -> StateScope:
    """Airflow's scope as ours. Duck-typed: the API server hands core's TaskScope / AssetScope, workers
    the task SDK's, and they are distinct classes with the same fields."""
    if hasattr(scope, "task_id"):
        region_id = getattr(scope, "region_id", None)  # 3.4+; the zero UUID is "no region"
        region = region_id.hex if region_id is not None and region_id.int else None
        return StateScope(TASK, scope.dag_id, scope.run_id, scope.task_id, int(scope.map_index), region)
    if getattr(scope, "asset_id", None) is not None:
        return StateScope(ASSET, asset_kind="id", asset=str(int(scope.asset_id)))
    if getattr(scope, "name", None):
        return StateScope(ASSET, asset_kind="name", asset=scope.name)
    if getattr(scope, "uri", None):
        return StateScope(ASSET, asset_kind="uri", asset=scope.uri)
    raise TypeError(f"not a state store scope (TaskScope or AssetScope): {scope!r}")


def state_head(prefix: str) -> str:
    """What every state key starts with; XCom keys (``<prefix>:{``) never do."""
    return f"{prefix}:{STATE}:{{"


def tag(prefix: str, scope: StateScope) -> str:
    """The scope's keys up to and including their hash tag."""
    if scope.kind == TASK:
        ids = (scope.dag_id, scope.run_id, scope.task_id)
        inner = "/".join([TASK, *(encode_tag_component(i) for i in ids)])
        if scope.region:
            inner += "/" + scope.region
    else:
        inner = f"{ASSET}/{scope.asset_kind}/{encode_tag_component(scope.asset)}"
    return state_head(prefix) + inner + "}"


def hash_key(prefix: str, scope: StateScope) -> str:
    """The hash holding the scope's state."""
    if scope.kind == TASK:
        return f"{tag(prefix, scope)}:{scope.map_index}"
    return tag(prefix, scope)


def maps_key(prefix: str, scope: StateScope) -> str | None:
    """The set naming every map index's hash of the scope's task (None for an asset)."""
    return tag(prefix, scope) + MAPS if scope.kind == TASK else None


def row_field(key: str) -> str:
    return ROW + key


def value_field(key: str) -> str:
    return VALUE + key


def to_reference(prefix: str, scope: StateScope, key: str) -> str:
    """The reference a worker-side value leaves in its DB row."""
    return f"{REFERENCE_SCHEME}{hash_key(prefix, scope)}#{encode_component(key)}"


def parse_hash_key(redis_key: str, prefix: str) -> StateScope | None:
    """The scope whose hash this is, or None when it is not one (another prefix, a ``#maps`` set,
    an XCom key, or anything not written in the canonical form ``hash_key`` builds)."""
    head = state_head(prefix)
    if not redis_key.startswith(head):
        return None
    inner, close, rest = redis_key[len(head) :].partition("}")
    if not close:
        return None
    parts = inner.split("/")
    scope: StateScope | None = None
    try:
        if parts[0] == TASK and len(parts) in (4, 5) and rest.startswith(":"):
            region = parts[4] if len(parts) == 5 else None
            if region is not None and (len(region) != 32 or uuid.UUID(hex=region).hex != region):
                return None
            dag, run, task = (unquote(p) for p in parts[1:4])
            scope = StateScope(TASK, dag, run, task, int(rest[1:]), region)
        elif parts[0] == ASSET and len(parts) == 3 and parts[1] in ASSET_KINDS and not rest:
            scope = StateScope(ASSET, asset_kind=parts[1], asset=unquote(parts[2]))
    except ValueError:  # a map index or region that is no number
        return None
    # Only the canonical spelling is ours: %41 for A, +01 for 1 and the like name no hash we wrote.
    if scope is None or hash_key(prefix, scope) != redis_key:
        return None
    return scope


def parse_reference(ref: object, prefix: str) -> tuple[StateScope, str] | None:
    """(scope, state key) of a reference in its canonical form under prefix, else None."""
    if not isinstance(ref, str) or not ref.startswith(REFERENCE_SCHEME):
        return None
    redis_key, hash_sign, encoded = ref[len(REFERENCE_SCHEME) :].rpartition("#")
    if not hash_sign:
        return None
    scope = parse_hash_key(redis_key, prefix)
    if scope is None:
        return None
    key = unquote(encoded)
    if to_reference(prefix, scope, key) != ref:
        return None
    return scope, key
