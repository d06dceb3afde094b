"""Run the benchmark suite: ``python -m benchmarks [--smoke] [--redis-url URL] [--only NAME] [--out DIR]``.

Without --redis-url the suite starts a redis-server of its own on a free loopback port (or an
embedded fakeredis when the binary is missing). With --redis-url it writes only keys under a
prefix of its own and deletes them afterwards; it never flushes a server it did not start.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

BENCHMARKS = {
    "codec": "benchmarks.bench_codec",
    "backend": "benchmarks.bench_backend",
    "scaling": "benchmarks.bench_scaling",
    "airflow": "benchmarks.bench_airflow",
    "deployment": "benchmarks.bench_deployment",
    "cluster": "benchmarks.bench_cluster",
    "hybrid": "benchmarks.bench_hybrid",
    "state_store": "benchmarks.bench_state_store",
}
DEFAULT_OUT = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, seconds not minutes (CI)")
    parser.add_argument("--redis-url", help="a Redis of your own (default: start one on a free port)")
    parser.add_argument("--only", action="append", choices=sorted(BENCHMARKS), help="run only these")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"results directory ({DEFAULT_OUT})")
    parser.add_argument(
        "--full-grid",
        action="store_true",
        help="airflow: every S x N combination, 50 MB x 200 (10 GB) included",
    )
    parser.add_argument("--postgres-url", help="a PostgreSQL of your own (default: start one on a free port)")
    parser.add_argument(
        "--db", action="append", choices=["postgres", "sqlite"], help="end to end: only these metadata DBs"
    )
    parser.add_argument(
        "--airflow-size", action="append", help="end to end: only these payload sizes (1.0KB, 1.0MB, 50.0MB)"
    )
    parser.add_argument(
        "--airflow-shape", action="append", choices=["text", "records"], help="end to end: only these shapes"
    )
    parser.add_argument(
        "--reps",
        type=int,
        default=0,
        help="end to end: repetitions (default: 2 of each 50 MB point, 3 with --full-grid; smaller sizes and "
        "the slowest points once)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild RESULTS.md, SUMMARY.md (and README.md's table) and chart.png only",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # Airflow must not touch ~/airflow: the in-process benchmarks get a scratch AIRFLOW_HOME.
    if "AIRFLOW_HOME" not in os.environ:
        scratch = tempfile.mkdtemp(prefix="redis-xcom-bench-home-")
        atexit.register(shutil.rmtree, scratch, ignore_errors=True)
        os.environ["AIRFLOW_HOME"] = scratch
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    from benchmarks import report
    from benchmarks._common import BenchContext, provide_redis, write_result

    args.out.mkdir(parents=True, exist_ok=True)
    if args.report_only:
        report.build(args.out)
        return 0
    failed: list[str] = []
    with provide_redis(args.redis_url) as (url, kind, owned):
        ctx = BenchContext(
            url,
            kind,
            owned,
            args.smoke,
            args.out,
            full_grid=args.full_grid,
            postgres_url=args.postgres_url,
            databases=tuple(args.db or ()),
            airflow_points=tuple(args.airflow_size or ()),
            airflow_shapes=tuple(args.airflow_shape or ()),
            reps=args.reps,
        )
        print(f"Redis: {kind}; key prefix {ctx.prefix}; results in {args.out}", flush=True)
        for name in args.only or list(BENCHMARKS):
            try:
                module = importlib.import_module(BENCHMARKS[name])
            except ModuleNotFoundError as exc:
                print(f"[{name}] skipped: {exc}", flush=True)
                continue
            print(f"[{name}] {module.__doc__.splitlines()[0] if module.__doc__ else ''}", flush=True)
            start = time.perf_counter()
            try:
                if hasattr(module, "run"):
                    doc = module.run(ctx)
                else:  # a standalone benchmark program (bench_codec): its own CLI, its own JSON
                    module.main(["--out", str(args.out), *(["--smoke"] if args.smoke else [])])
                    doc = None
            except Exception:
                traceback.print_exc()
                failed.append(name)
                continue
            finally:
                ctx.cleanup_prefix()
            elapsed = time.perf_counter() - start
            if doc is not None:
                doc["elapsed_s"] = elapsed
                path = write_result(ctx, getattr(module, "NAME", name), doc)
                print(f"[{name}] done in {elapsed:.0f} s -> {path}", flush=True)
            else:
                print(f"[{name}] done in {elapsed:.0f} s", flush=True)
    report.build(args.out)
    written = ", ".join(str(args.out / name) for name in ("RESULTS.md", "SUMMARY.md", "chart.png"))
    print(f"Report: {written}", flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
