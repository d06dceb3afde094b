"""`redis-xcom clear`: delete a selection's values as ExclusiveRedisXCom.clear does (redis_xcom.clearing),
saying what goes first."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis_xcom import clearing, keys
from redis_xcom.errors import RedisXComError
from redis_xcom.ops import diagnosis
from redis_xcom.ops.output import OK, Output, confirm, human_bytes
from redis_xcom.ops.progress import progress
from redis_xcom.runtime import get_runtime

SHOWN_KEYS = 5


@dataclass
class Survey:
    """What a clear would delete: counts, bytes and a few of the keys."""

    keys: int = 0
    bytes: int = 0
    chunked: int = 0
    measured_by: str = "MEMORY USAGE"
    sample: list[str] = field(default_factory=list)


def survey(selection: keys.Selection) -> Survey:
    """Walk the selection exactly as clear() does, measuring each key."""
    runtime = get_runtime()
    found = Survey()
    scans = selection.run_id is None
    with progress("scanning", runtime.info.key_count() if scans else None) as bar:
        for _, batch in clearing.selected_keys(runtime, selection):
            for facts in runtime.info.describe(batch):
                if not facts.exists:
                    continue
                found.keys += 1
                found.bytes += facts.bytes
                found.chunked += facts.chunked
                found.measured_by = facts.measured_by
                if len(found.sample) < SHOWN_KEYS:
                    found.sample.append(facts.key)
            bar.advance(len(batch))
    return found


def _arguments(selection: keys.Selection) -> dict[str, Any]:
    return {
        "dag_id": selection.dag_id,
        "run_id": selection.run_id,
        "task_id": selection.task_id,
        "map_index": selection.map_index,
        "key": selection.key,
    }


def _describe(selection: keys.Selection) -> str:
    chosen = {name: value for name, value in _arguments(selection).items() if value is not None}
    return ", ".join(f"{name}={value!r}" for name, value in chosen.items())


def run_clear(selection: keys.Selection, *, dry_run: bool, yes: bool, out: Output) -> int:
    settings, problem = diagnosis.reachable()
    if problem is not None:
        return diagnosis.report(out, "clear", problem)
    try:
        found = survey(selection)
    except RedisXComError as exc:
        return diagnosis.report(out, "clear", diagnosis.diagnose(exc, settings))
    summary = {
        "selection": _arguments(selection),
        "keys": found.keys,
        "bytes": found.bytes,
        "bytes_measured_by": found.measured_by,
        "chunked": found.chunked,
        "sample_keys": found.sample,
        "dry_run": dry_run,
        "deleted": 0,
    }
    size = f"{human_bytes(found.bytes)} ({found.measured_by})"
    verb = "Would delete" if dry_run else "Found"
    out.line(f"{verb} {found.keys} XCom values, {size}, matching {_describe(selection)}.")
    for shown in found.sample:
        out.line(f"  {shown}")
    if found.keys > len(found.sample):
        out.line(f"  ... and {found.keys - len(found.sample)} more")
    if dry_run or not found.keys:
        out.document(summary)
        return OK
    refused = confirm(f"Delete these {found.keys} values from Redis?", yes, out)
    if refused is not None:
        return refused
    try:
        deleted = clearing.clear(get_runtime(), selection)
    except RedisXComError as exc:
        return diagnosis.report(out, "clear", diagnosis.diagnose(exc, settings))
    summary["deleted"] = deleted
    out.line(f"Deleted {deleted} values (their DB rows stay; pulling them raises XComExpiredError).")
    out.document(summary)
    return OK
