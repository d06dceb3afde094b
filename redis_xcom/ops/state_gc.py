"""`redis-xcom gc --state`: delete worker-side state values that no state row refers to any more.

With ``[workers] state_store_backend = redis_xcom.RedisStateStoreBackend`` the value is in Redis and
its row (``task_state_store`` / ``asset_state_store``, or an ``r:`` field when the server-side backend
is ours too) holds ``{"__airflow_state_ref__": <reference>}``. Airflow deletes rows without telling the
worker backend (``airflow state-store clean`` of expired rows, a deleted DAG run, the REST API and the
UI): such values would stay forever, since worker-side values have no expiry of their own.

A value is kept when a row at its own scope and key holds its reference (a row naming another scope's
value keeps nothing alive: rows are user input), or when it was written less than --grace ago (its
task may not have sent its row yet). Like XCom gc: a first pass counts, a guard stops when more than
half would go, and the deleting pass looks every value up again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.exc import SQLAlchemyError

from redis_xcom.errors import RedisXComError
from redis_xcom.ops.output import OK, PROBLEM, Output, confirm
from redis_xcom.state import keys, maintenance, record, retention, storage
from redis_xcom.state.keys import ASSET, TASK, StateScope

SHOWN = 5
GUARD_SHARE = 0.5
LOOKUP_BATCH = 500
REF_MARKER = "__airflow_state_ref__"


class StateRows(Protocol):
    def references(self, wanted: Sequence[tuple[StateScope, str]], prefix: str) -> set[str]:
        """The references held by the rows of these (scope, key) pairs, each checked to be its own row's."""
        ...

    def asset_ids(self, scope: StateScope) -> list[int]:
        """The ids of the assets a worker-side asset scope (a name or URI) names."""
        ...


@dataclass
class StateGcReport:
    examined: int = 0
    referenced: int = 0
    kept_in_grace: int = 0
    orphans: list[tuple[str, str]] = field(default_factory=list)  # (hash key, field)

    @property
    def to_delete(self) -> int:
        return len(self.orphans)


def wrapped_reference(text: object) -> str | None:
    """The reference a row's JSON text holds, None for any other value."""
    try:
        stored = json.loads(text) if isinstance(text, str | bytes) else text
    except ValueError:
        return None
    ref = stored.get(REF_MARKER) if isinstance(stored, dict) else None
    return ref if isinstance(ref, str) else None


class AirflowStateRows:
    """The state tables of Airflow's metadata DB (3.3+), read through Airflow's own session."""

    def __init__(self, session_factory: Any = None) -> None:
        from airflow.models.asset import AssetModel
        from airflow.models.asset_state_store import AssetStateStoreModel
        from airflow.models.task_state_store import TaskStateStoreModel
        from airflow.utils.session import create_session

        self._task, self._asset, self._assets = TaskStateStoreModel, AssetStateStoreModel, AssetModel
        # Airflow's own session ([database] sql_alchemy_conn), or a given one (tests).
        self._session = session_factory or create_session

    def references(self, wanted: Sequence[tuple[StateScope, str]], prefix: str) -> set[str]:
        from sqlalchemy import select, tuple_

        found: set[str] = set()
        tasks = sorted({(s.dag_id, s.run_id, s.task_id, k) for s, k in wanted if s.kind == TASK})
        assets = sorted({k for s, k in wanted if s.kind != TASK})
        t = self._task
        index = getattr(t, "region_index", None) or t.map_index  # 3.4 renamed it
        region = getattr(t, "region_id", None)
        with self._session() as session:
            for start in range(0, len(tasks), LOOKUP_BATCH):
                columns = [t.dag_id, t.run_id, t.task_id, index, t.key, t.value]
                query = select(*columns, *([region] if region is not None else [])).where(
                    tuple_(t.dag_id, t.run_id, t.task_id, t.key).in_(tasks[start : start + LOOKUP_BATCH])
                )
                for row in session.execute(query):
                    dag, run, task, map_index, key, value = row[:6]
                    row_region = uuid.UUID(str(row[6])) if len(row) > 6 and row[6] is not None else None
                    scope = keys.scope_of(_TaskRow(dag, run, task, map_index, row_region))
                    _keep_own(found, value, [keys.to_reference(prefix, scope, key)])
            a, m = self._asset, self._assets
            for start in range(0, len(assets), LOOKUP_BATCH):
                query = (
                    select(m.name, m.uri, a.key, a.value)
                    .join(m, m.id == a.asset_id)
                    .where(a.key.in_(assets[start : start + LOOKUP_BATCH]))
                )
                for name, uri, key, value in session.execute(query):
                    own = [
                        keys.to_reference(prefix, StateScope(ASSET, asset_kind=kind, asset=ident), key)
                        for kind, ident in (("name", name), ("uri", uri))
                        if ident
                    ]
                    _keep_own(found, value, own)
        return found

    def asset_ids(self, scope: StateScope) -> list[int]:
        from sqlalchemy import select

        m = self._assets
        column = m.name if scope.asset_kind == "name" else m.uri
        with self._session() as session:
            return [int(i) for i in session.scalars(select(m.id).where(column == scope.asset))]


@dataclass(frozen=True)
class _TaskRow:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    region_id: Any = None


def _keep_own(found: set[str], value: object, own: list[str]) -> None:
    ref = wrapped_reference(value)
    if ref is not None and ref in own:
        found.add(ref)


def collect(rows: StateRows, grace_seconds: int) -> Iterator[StateGcReport]:
    """Per batch of worker-side values: what is referenced, kept in grace, or orphaned."""
    prefix = storage.settings().key_prefix
    limit = retention.now_ms() - grace_seconds * 1000
    pending: list[tuple[str, StateScope, str, str]] = []  # hash key, scope, state key, reference
    report = StateGcReport()
    for hash_key, scope in maintenance.state_hashes():
        fields = dict(storage.fields(hash_key))
        for name, data in fields.items():
            if not name.startswith(keys.VALUE):
                continue
            key = name[len(keys.VALUE) :]
            ref = keys.to_reference(prefix, scope, key)
            report.examined += 1
            times = record.times_of(data)
            if times is not None and times[1] > limit:
                report.kept_in_grace += 1
            elif _row_in_redis(fields.get(keys.row_field(key)), ref):
                report.referenced += 1
            else:
                pending.append((hash_key, scope, key, ref))
        if len(pending) >= LOOKUP_BATCH:
            yield _resolved(rows, pending, prefix, report)
            pending, report = [], StateGcReport()
    yield _resolved(rows, pending, prefix, report)


def _row_in_redis(row: bytes | None, ref: str) -> bool:
    """Whether the server-side row (ours too) holds this very reference."""
    if row is None:
        return False
    try:
        found = record.decode(row, 1 << 30, "row")
    except RedisXComError:
        return False
    # A row past its expiry reads as missing: it keeps nothing alive.
    return not found.expired(retention.now_ms()) and wrapped_reference(found.text) == ref


def _asset_row_in_redis(rows: StateRows, scope: StateScope, key: str, ref: str, prefix: str) -> bool:
    """Whether the server-side row of the asset (ours too: keyed by the asset's id) holds ref."""
    for asset_id in rows.asset_ids(scope):
        by_id = StateScope(ASSET, asset_kind="id", asset=str(asset_id))
        if _row_in_redis(storage.read(keys.hash_key(prefix, by_id), keys.row_field(key)), ref):
            return True
    return False


def _resolved(
    rows: StateRows, pending: list[tuple[str, StateScope, str, str]], prefix: str, report: StateGcReport
) -> StateGcReport:
    held = rows.references([(scope, key) for _, scope, key, _ in pending], prefix) if pending else set()
    for hash_key, scope, key, ref in pending:
        if ref in held or (scope.kind == ASSET and _asset_row_in_redis(rows, scope, key, ref, prefix)):
            report.referenced += 1
        else:
            report.orphans.append((hash_key, keys.value_field(key)))
    return report


def run_state_gc(
    *, grace: int, dry_run: bool, yes: bool, force: bool, out: Output, rows: StateRows | None = None
) -> int:
    try:
        rows = rows if rows is not None else AirflowStateRows()
        survey = StateGcReport()
        for part in collect(rows, grace):
            survey.examined += part.examined
            survey.referenced += part.referenced
            survey.kept_in_grace += part.kept_in_grace
            survey.orphans += part.orphans
    except ImportError as exc:
        out.note(f"redis-xcom gc --state needs Airflow 3.3+ (the state store tables): {exc}")
        return PROBLEM
    except (RedisXComError, SQLAlchemyError) as exc:
        out.note(
            f"redis-xcom gc --state failed: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        )
        return PROBLEM
    summary: dict[str, Any] = {
        "examined": survey.examined,
        "referenced": survey.referenced,
        "kept_in_grace": survey.kept_in_grace,
        "to_delete": survey.to_delete,
        "sample": [f"{h} {f}" for h, f in survey.orphans[:SHOWN]],
        "grace_seconds": grace,
        "dry_run": dry_run,
        "deleted": 0,
        "stopped_by_guard": False,
    }
    out.line(
        f"Examined {survey.examined} worker-side state values: {survey.referenced} referenced by a row, "
        f"{survey.kept_in_grace} younger than --grace {grace}s (kept), {survey.to_delete} orphaned."
    )
    for hash_key, name in survey.orphans[:SHOWN]:
        out.line(f"  {hash_key} {name}")
    if dry_run or not survey.to_delete:
        out.document(summary)
        return OK
    if survey.to_delete > GUARD_SHARE * survey.examined and not force:
        out.note(
            f"Stopped: {survey.to_delete} of the {survey.examined} values examined would be deleted, more "
            f"than {GUARD_SHARE:.0%}. Is [database] sql_alchemy_conn the metadata DB of the Airflow that "
            "writes to this Redis? If so, run again with --force."
        )
        summary["stopped_by_guard"] = True
        out.document(summary)
        return PROBLEM
    refused = confirm(f"Delete {survey.to_delete} state values that no row refers to?", yes, out)
    if refused is not None:
        return refused
    deleted = 0
    try:
        for part in collect(rows, grace):  # looked up again: a row may have arrived meanwhile
            for hash_key, name in part.orphans:
                deleted += storage.remove_fields(hash_key, [name])
    except (RedisXComError, SQLAlchemyError) as exc:
        out.note(f"redis-xcom gc --state failed after deleting {deleted} values: {str(exc).splitlines()[0]}")
        return PROBLEM
    summary["deleted"] = deleted
    out.line(f"Deleted {deleted} state values.")
    out.document(summary)
    return OK
