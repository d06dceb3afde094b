"""The ``redis-xcom`` command line (``python -m redis_xcom`` too)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from redis_xcom import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="redis-xcom",
        description="Tools for redis-xcom, the Redis-backed XCom backend for Apache Airflow 3.",
    )
    parser.add_argument("--version", action="version", version=f"redis-xcom {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="run an example DAG end to end and show where its XComs went",
        description=(
            "Run an example DAG (TaskFlow, multiple_outputs, mapping, a templated BashOperator pull, a "
            "branch) with `airflow dags test` in a temporary AIRFLOW_HOME (SQLite) and the redis-xcom "
            "backend, then show each XCom's DB reference and Redis value and check they agree. Redis is "
            "--redis-url, else AIRFLOW__REDIS_XCOM__URL, else an embedded fakeredis server: the demo "
            "never writes to a Redis you did not name. Other AIRFLOW__REDIS_XCOM__* settings are used "
            "as they are. Exit code 0 when every check passed, 1 when one failed, 2 on bad usage."
        ),
    )
    demo.add_argument("--redis-url", metavar="URL", help="Redis to use (default: $AIRFLOW__REDIS_XCOM__URL)")
    demo.add_argument(
        "--embedded",
        action="store_true",
        help="use an embedded fakeredis server even if a Redis is configured",
    )
    demo.add_argument(
        "--no-fallback",
        dest="fallback",
        action="store_false",
        help="fail instead of using the embedded server when the configured Redis is unreachable",
    )
    demo.add_argument(
        "--key-prefix", metavar="PREFIX", help="key prefix of the demo's values (default: redis-xcom-demo)"
    )
    demo.add_argument(
        "--keep-keys",
        action="store_true",
        help="leave the run's keys in a real Redis (by default the demo deletes them at the end)",
    )
    demo.add_argument(
        "--keep-home", action="store_true", help="keep the temporary AIRFLOW_HOME (always kept on failure)"
    )
    demo.add_argument(
        "--timeout",
        type=float,
        default=300,
        metavar="SECONDS",
        help="limit per airflow command (default 300)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from redis_xcom.ops.demo import run_demo

        return run_demo(
            args.redis_url,
            force_embedded=args.embedded,
            fallback=args.fallback,
            key_prefix=args.key_prefix,
            keep_keys=args.keep_keys,
            keep_home=args.keep_home,
            timeout=args.timeout,
        )
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown ones


if __name__ == "__main__":
    sys.exit(main())
