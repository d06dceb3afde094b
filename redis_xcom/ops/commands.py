"""Dispatch of the operations commands from their parsed arguments."""

from __future__ import annotations

import argparse

from redis_xcom import airflow_compat
from redis_xcom.errors import ConfigError
from redis_xcom.ops import diagnosis
from redis_xcom.ops.output import USAGE, Output


def run_command(args: argparse.Namespace) -> int:
    out = Output(args.json)
    airflow_compat.load_xcom_machinery()
    try:
        if args.command == "clear":
            misuse = _clear_selection_problem(args)
            if misuse is not None:
                out.note(misuse)
                return USAGE
        if args.command == "clear" and getattr(args, "state", False):
            from redis_xcom.ops.state_ops import StateSelection, asset_scope, run_state_clear

            assets = _asset_options(args)
            asset = asset_scope(*assets[0]) if assets else None
            state = StateSelection(args.dag_id, args.run_id, args.task_id, args.map_index, args.key, asset)
            return run_state_clear(state, dry_run=args.dry_run, yes=args.yes, out=out)
        if args.command == "clear":
            from redis_xcom.keys import Selection
            from redis_xcom.ops.clear import run_clear

            selection = Selection(args.dag_id, args.run_id, args.task_id, args.map_index, args.key)
            return run_clear(selection, dry_run=args.dry_run, yes=args.yes, out=out)
        if args.command == "gc":
            from redis_xcom.ops.gc import run_gc

            if args.grace < 0:
                out.note("--grace must be >= 0 seconds")
                return USAGE
            _, problem = diagnosis.reachable()
            if problem is not None:
                return diagnosis.report(out, "gc", problem)
            if getattr(args, "state", False):
                from redis_xcom.ops.state_gc import run_state_gc

                return run_state_gc(
                    grace=args.grace, dry_run=args.dry_run, yes=args.yes, force=args.force, out=out
                )
            return run_gc(grace=args.grace, dry_run=args.dry_run, yes=args.yes, force=args.force, out=out)
        if args.command == "stats":
            from redis_xcom.ops.stats import run_stats

            return run_stats(top=args.top, out=out)
        if args.command == "doctor":
            from redis_xcom.ops.doctor import run_doctor

            return run_doctor(strict=args.strict, out=out)
    except ConfigError as exc:
        return diagnosis.report(out, args.command, diagnosis.diagnose(exc))
    raise AssertionError(f"unhandled command {args.command!r}")


def _clear_selection_problem(args: argparse.Namespace) -> str | None:
    """Why a clear's options select nothing sensible, or None: a DAG, or with --state an asset."""
    assets = [f"--asset-{kind}" for kind, _ in _asset_options(args)]
    if len(assets) > 1:  # argparse refuses it; `airflow redis-xcom clear` has no exclusive groups
        return f"{assets[0]} and {assets[1]} each name an asset: give one"
    if assets and not getattr(args, "state", False):
        return f"{assets[0]} selects an asset's state: add --state (XCom values belong to DAGs: --dag-id)"
    if assets:
        task_options = [
            o for o in ("dag_id", "run_id", "task_id", "map_index") if getattr(args, o) is not None
        ]
        if task_options:
            task_option = "--" + task_options[0].replace("_", "-")
            return f"{assets[0]} selects an asset's state, {task_option} task state: give one of them"
        return None
    if args.dag_id is None:
        return (
            "--dag-id is required (with --state, an asset's state is --asset-id, --asset-name or --asset-uri)"
        )
    return None


def _asset_options(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(kind, value) of each of --asset-id, --asset-name and --asset-uri given."""
    given = ((kind, getattr(args, f"asset_{kind}", None)) for kind in ("id", "name", "uri"))
    return [(kind, str(value)) for kind, value in given if value is not None]
