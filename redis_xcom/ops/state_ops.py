"""What `redis-xcom stats` and `redis-xcom clear --state` see of the state store's keys."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis_xcom.errors import RedisXComError
from redis_xcom.keys import encode_tag_component
from redis_xcom.ops import diagnosis
from redis_xcom.ops.output import OK, Output, confirm
from redis_xcom.state import keys, maintenance, storage
from redis_xcom.state.keys import ASSET, TASK, StateScope

SHOWN = 5


@dataclass
class StateUsage:
    task_scopes: int = 0
    asset_scopes: int = 0
    rows: int = 0  # r: fields (server-side backend)
    values: int = 0  # v: fields (worker-side backend)
    by_dag: Counter[str] = field(default_factory=Counter)

    def document(self) -> dict[str, Any]:
        return {
            "task_scopes": self.task_scopes,
            "asset_scopes": self.asset_scopes,
            "server_side_entries": self.rows,
            "worker_side_values": self.values,
            "entries_by_dag": dict(self.by_dag.most_common()),
        }


def survey() -> StateUsage:
    """One walk of the state hashes under key_prefix: scopes and entries, by DAG."""
    usage = StateUsage()
    for hash_key, scope in maintenance.state_hashes():
        names = [name for name, _ in storage.fields(hash_key)]
        rows = sum(name.startswith(keys.ROW) for name in names)
        values = sum(name.startswith(keys.VALUE) for name in names)
        usage.rows += rows
        usage.values += values
        if scope.kind == TASK:
            usage.task_scopes += 1
            usage.by_dag[scope.dag_id] += rows + values
        else:
            usage.asset_scopes += 1
    return usage


def print_usage(usage: StateUsage, out: Output, top: int) -> None:
    out.line("")
    out.line(
        f"State store: {usage.task_scopes} task scopes, {usage.asset_scopes} asset scopes; "
        f"{usage.rows} server-side entries, {usage.values} worker-side values"
    )
    for dag_id, count in usage.by_dag.most_common(top):
        out.line(f"  {dag_id:<40} {count:>8}")


@dataclass(frozen=True)
class StateSelection:
    """Which state a clear takes: a DAG's task scopes (None means any run, task or map index), or
    one asset's scope; ``key`` None means every key of what is selected."""

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    key: str | None = None
    asset: StateScope | None = None  # an ASSET scope: by id (the API server's), name or URI (workers')

    def pattern(self, prefix: str) -> str:
        """A SCAN pattern that holds every selected hash (``contains`` then decides exactly)."""
        if self.asset is not None:
            # Exact: the encoded name or URI has no glob character left (each is percent-encoded).
            return keys.hash_key(prefix, self.asset)
        run = "*" if self.run_id is None else encode_tag_component(self.run_id)
        task = "*" if self.task_id is None else encode_tag_component(self.task_id)
        dag = encode_tag_component(self.dag_id or "")
        return f"{keys.state_head(prefix)}{TASK}/{dag}/{run}/{task}[}}/]*"

    def contains(self, scope: StateScope) -> bool:
        if self.asset is not None:
            return scope == self.asset
        return (
            scope.kind == TASK
            and scope.dag_id == self.dag_id
            and self.run_id in (None, scope.run_id)
            and self.task_id in (None, scope.task_id)
            and self.map_index in (None, scope.map_index)
        )

    def chosen(self) -> dict[str, Any]:
        """The selection as the summary shows it (what was given, nothing else)."""
        if self.asset is not None:
            shown = {f"asset_{self.asset.asset_kind}": self.asset.asset}
            return shown | ({"key": self.key} if self.key is not None else {})
        return {k: v for k, v in vars(self).items() if v is not None and k != "asset"}


def asset_scope(kind: str, value: str) -> StateScope:
    """The scope of one asset as `clear --state --asset-id/--asset-name/--asset-uri` names it."""
    if kind == "id":
        return StateScope(ASSET, asset_kind="id", asset=str(int(value)))
    return StateScope(ASSET, asset_kind=kind, asset=value)


def selected(selection: StateSelection) -> list[tuple[str, StateScope]]:
    prefix = storage.settings().key_prefix
    found = []
    for batch in storage.scan_keys(selection.pattern(prefix)):
        for hash_key in batch:
            scope = keys.parse_hash_key(hash_key, prefix)
            if scope is not None and selection.contains(scope):
                found.append((hash_key, scope))
    return found


def run_state_clear(selection: StateSelection, *, dry_run: bool, yes: bool, out: Output) -> int:
    settings, problem = diagnosis.reachable()
    if problem is not None:
        return diagnosis.report(out, "clear", problem)
    try:
        hashes = selected(selection)
    except RedisXComError as exc:
        return diagnosis.report(out, "clear", diagnosis.diagnose(exc, settings))
    chosen = selection.chosen()
    scopes = "asset state scopes" if selection.asset is not None else "task state scopes"
    summary: dict[str, Any] = {
        "selection": chosen,
        "asset_scopes" if selection.asset is not None else "task_scopes": len(hashes),
        "sample_keys": [h for h, _ in hashes[:SHOWN]],
        "dry_run": dry_run,
        "deleted": 0,
    }
    verb = "Would clear" if dry_run else "Found"
    what = f"key {selection.key!r} of " if selection.key is not None else ""
    out.line(f"{verb} {what}{len(hashes)} {scopes} matching {chosen}.")
    for hash_key, _ in hashes[:SHOWN]:
        out.line(f"  {hash_key}")
    if dry_run or not hashes:
        out.document(summary)
        return OK
    refused = confirm(f"Delete the state of these {len(hashes)} {scopes} from Redis?", yes, out)
    if refused is not None:
        return refused
    deleted = 0
    prefix = storage.settings().key_prefix
    try:
        for hash_key, scope in hashes:
            if selection.key is not None:
                fields = [keys.row_field(selection.key), keys.value_field(selection.key)]
                deleted += storage.remove_fields(hash_key, fields)
            else:
                deleted += storage.drop_hashes([hash_key], keys.maps_key(prefix, scope))
    except RedisXComError as exc:
        return diagnosis.report(out, "clear", diagnosis.diagnose(exc, settings))
    summary["deleted"] = deleted
    out.line(f"Deleted {deleted} {'entries' if selection.key is not None else scopes}.")
    out.document(summary)
    return OK
