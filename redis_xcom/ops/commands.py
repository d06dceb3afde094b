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
        if args.command == "clear" and getattr(args, "state", False):
            from redis_xcom.ops.state_ops import StateSelection, run_state_clear

            state = StateSelection(args.dag_id, args.run_id, args.task_id, args.map_index, args.key)
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
