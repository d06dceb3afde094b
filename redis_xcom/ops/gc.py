"""`redis-xcom gc`: delete Redis values that no xcom row refers to any more; report rows whose value is gone.

Airflow deletes xcom rows without telling the backend (airflow db clean, a deleted DAG run or DAG,
REST DELETE, XComModel.clear); their values would stay until their TTL. gc walks the values under
key_prefix in SCAN batches, looks each batch up in the xcom table in batched queries, and deletes
the values no row refers to, with each deleted key dropped from its run's index.

A value's age is the smaller of two lower bounds, so a fresh value is never taken for an old one:
OBJECT IDLETIME (seconds since the value was last written or read; under an LFU policy Redis keeps
none) and ``ttl - TTL left`` (which understates the age when [redis_xcom] ttl was lowered since, and
would overstate it when ttl was raised: hence the minimum). A value younger than --grace stays: its
task may have pushed it and not yet committed its row.

Nothing is deleted before the whole walk is done and checked: a first pass only counts, so a wrong
or empty metadata DB (every value an orphan) stops gc before it deletes anything (--force). The
second pass looks every value up again before deleting it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy.exc import SQLAlchemyError

from redis_xcom import keys
from redis_xcom.errors import RedisXComError, UntrustedReferenceError
from redis_xcom.ops.metadata import AirflowXComTable, XComTable
from redis_xcom.ops.output import OK, PROBLEM, Output, confirm
from redis_xcom.ops.progress import progress
from redis_xcom.runtime import get_runtime
from redis_xcom.storage.server_info import ServerInfo
from redis_xcom.storage.store import RedisStore

SHOWN_KEYS = 5
# Above this share of examined values deleted, the DB is more likely wrong than Redis.
GUARD_SHARE = 0.5


@dataclass
class GcReport:
    examined: int = 0
    referenced: int = 0
    orphans: int = 0  # no row refers to them
    kept_in_grace: int = 0  # orphans younger than --grace
    deleted: int = 0
    sample: list[str] = field(default_factory=list)
    missing_by_dag: Counter[str] = field(default_factory=Counter)
    # Rows whose reference is not to their own value (edited through the REST API or the UI).
    untrusted_by_dag: Counter[str] = field(default_factory=Counter)

    @property
    def to_delete(self) -> int:
        return self.orphans - self.kept_in_grace


def age_of(idle: int | None, ttl_left: int, ttl_setting: int) -> int | None:
    """A lower bound of a value's age in seconds; None when it is gone."""
    if ttl_left == -2:
        return None
    bounds = [] if idle is None else [idle]
    if ttl_left >= 0:
        bounds.append(ttl_setting - ttl_left)
    return min(bounds) if bounds else 0  # neither known (no TTL, no idle time): treat as fresh


class Collector:
    """One pass over the values under key_prefix, finding those old enough to go."""

    def __init__(
        self, store: RedisStore, info: ServerInfo, table: XComTable, prefix: str, ttl: int, grace: int
    ) -> None:
        self.store = store
        self.info = info
        self.table = table
        self.prefix = prefix
        self.ttl = ttl
        self.grace = grace

    def batches(self, report: GcReport) -> Iterator[tuple[int, list[str]]]:
        """Yields, per SCAN batch, the keys that are orphans older than grace (report updated as it goes)."""
        head = self.prefix + ":{"
        for batch in self.store.scan(head + "*"):
            values = [(k, c) for k in batch if (c := keys.parse_key(k, self.prefix)) is not None]
            report.examined += len(values)
            referenced = self.table.referenced([c for _, c in values], self.prefix) if values else set()
            orphans = [k for k, _ in values if k not in referenced]
            report.referenced += len(values) - len(orphans)
            old = []
            # With no grace every orphan is old enough: its age is not worth a round trip.
            ages = self.info.ages(orphans) if self.grace else [(None, 0)] * len(orphans)
            for redis_key, (idle, ttl_left) in zip(orphans, ages, strict=True):
                age = age_of(idle, ttl_left, self.ttl)
                if age is None:
                    continue  # expired meanwhile
                report.orphans += 1
                if age < self.grace:
                    report.kept_in_grace += 1
                    continue
                old.append(redis_key)
                if len(report.sample) < SHOWN_KEYS:
                    report.sample.append(redis_key)
            yield len(batch), old


def run_gc(
    *, grace: int, dry_run: bool, yes: bool, force: bool, out: Output, table: XComTable | None = None
) -> int:
    runtime = get_runtime()
    store, info, settings = runtime.store, runtime.info, runtime.settings
    try:
        table = table if table is not None else AirflowXComTable()
        collector = Collector(store, info, table, settings.key_prefix, settings.ttl, grace)
        survey = GcReport()
        with progress("gc: examining", info.key_count()) as bar:
            for scanned, _ in collector.batches(survey):
                bar.advance(scanned)
            for batch in table.references():
                owned = _owned_references(batch, settings.key_prefix, survey)
                found = info.exist([k for _, k in owned])
                survey.missing_by_dag.update(
                    dag for (dag, _), there in zip(owned, found, strict=True) if not there
                )
    except RedisXComError as exc:
        out.note(f"redis-xcom gc failed: {exc}")
        return PROBLEM
    except SQLAlchemyError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        out.note(
            f"redis-xcom gc could not read the xcom table of the metadata DB ({first_line}). Run it "
            "where [database] sql_alchemy_conn names the DB of the Airflow that writes to this Redis."
        )
        return PROBLEM
    _print_survey(survey, grace, dry_run, out)
    summary = _summary(survey, grace, dry_run)
    if dry_run or not survey.to_delete:
        out.document(summary)
        return OK
    if survey.to_delete > GUARD_SHARE * survey.examined and not force:
        out.note(
            f"Stopped: {survey.to_delete} of the {survey.examined} values examined would be deleted, more "
            f"than {GUARD_SHARE:.0%}. Is [database] sql_alchemy_conn the metadata DB of the Airflow that "
            f"writes to this Redis (key_prefix {settings.key_prefix!r})? If so, run again with --force."
        )
        summary["stopped_by_guard"] = True
        out.document(summary)
        return PROBLEM
    refused = confirm(f"Delete {survey.to_delete} values that no xcom row refers to?", yes, out)
    if refused is not None:
        return refused
    done = GcReport()
    try:
        with progress("gc: deleting", info.key_count()) as bar:
            for scanned, old in collector.batches(done):
                done.deleted += store.unlink_indexed_groups(keys.group_by_run_index(old))
                bar.advance(scanned)
    except (RedisXComError, SQLAlchemyError) as exc:
        out.note(f"redis-xcom gc failed after deleting {done.deleted} values: {str(exc).splitlines()[0]}")
        return PROBLEM
    summary["deleted"] = done.deleted
    out.line(f"Deleted {done.deleted} values.")
    out.document(summary)
    return OK


def _owned_references(
    batch: list[tuple[keys.RowCoordinates, object]], prefix: str, report: GcReport
) -> list[tuple[str, str]]:
    """(dag_id, key) of the rows whose reference is to their own value. The others are counted and
    never probed: a row is user input, and its reference may name another DAG's value or no XCom."""
    owned = []
    for row, value in batch:
        try:
            redis_key = keys.owned_key(value, row, prefix)
        except UntrustedReferenceError:
            report.untrusted_by_dag[str(row.dag_id)] += 1
            continue
        if redis_key is not None:
            owned.append((str(row.dag_id), redis_key))
    return owned


def _summary(report: GcReport, grace: int, dry_run: bool) -> dict[str, object]:
    return {
        "examined": report.examined,
        "referenced": report.referenced,
        "orphans": report.orphans,
        "kept_in_grace": report.kept_in_grace,
        "to_delete": report.to_delete,
        "sample_keys": report.sample,
        "grace_seconds": grace,
        "dry_run": dry_run,
        "deleted": 0,
        "stopped_by_guard": False,
        "rows_without_value_by_dag": dict(report.missing_by_dag),
        "rows_with_untrusted_reference_by_dag": dict(report.untrusted_by_dag),
    }


def _print_survey(report: GcReport, grace: int, dry_run: bool, out: Output) -> None:
    out.line(
        f"Examined {report.examined} values: {report.referenced} referenced by an xcom row, "
        f"{report.orphans} orphaned ({report.kept_in_grace} of them younger than --grace {grace}s, kept)."
    )
    verb = "Would delete" if dry_run else "To delete"
    out.line(f"{verb}: {report.to_delete} values.")
    for shown in report.sample:
        out.line(f"  {shown}")
    missing = sum(report.missing_by_dag.values())
    if missing:
        out.line(f"Rows whose value is gone from Redis (expired, evicted or deleted): {missing}")
        for dag_id, count in report.missing_by_dag.most_common():
            out.line(f"  {dag_id}: {count}")
        out.line("  Pulling them raises XComExpiredError; clear and re-run their tasks if they are needed.")
    untrusted = sum(report.untrusted_by_dag.values())
    if untrusted:
        out.line(f"Rows whose reference is not to their own value (not probed): {untrusted}")
        for dag_id, count in report.untrusted_by_dag.most_common():
            out.line(f"  {dag_id}: {count}")
        out.line("  Pulling them raises UntrustedReferenceError; delete or correct those rows.")
