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
    _add_ops_commands(commands)
    return parser


def _add_ops_commands(commands: argparse._SubParsersAction) -> None:
    """The operations commands: each reads [redis_xcom] as the workers do."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON document (for scripts)")
    exits = "Exit code 0 when it did what was asked, 1 when it failed or found a problem, 2 on bad usage."

    clear = commands.add_parser(
        "clear",
        parents=[common],
        help="delete the Redis values of a selection of XComs",
        description=(
            "Delete the Redis values of a selection (ExclusiveRedisXCom.clear): never a key outside "
            "it, and each deleted key leaves its run's index. Prints how many keys and bytes go, with "
            "a few of them; asks y/N on a terminal (--yes is required without one). The DB rows stay. "
            + exits
        ),
    )
    # Required, except for an asset's state (checked when the command runs).
    clear.add_argument("--dag-id", help="the DAG whose values go (required, except with --state --asset-*)")
    clear.add_argument("--run-id", help="only this DAG run (reads the run's index: no keyspace scan)")
    clear.add_argument("--task-id", help="only this task")
    clear.add_argument("--map-index", type=int, help="only this map index (-1: unmapped)")
    clear.add_argument("--key", help="only this XCom key")
    clear.add_argument("--dry-run", action="store_true", help="only say what would be deleted")
    clear.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    clear.add_argument(
        "--state",
        action="store_true",
        help="clear the task state store's keys of the selection (Airflow 3.3+) instead of XCom values",
    )
    asset = clear.add_mutually_exclusive_group()
    asset.add_argument(
        "--asset-id",
        type=int,
        metavar="ID",
        help="with --state: this asset's state as the API server keeps it (instead of --dag-id)",
    )
    asset.add_argument(
        "--asset-name", metavar="NAME", help="with --state: this asset's state as tasks keep it by name"
    )
    asset.add_argument(
        "--asset-uri", metavar="URI", help="with --state: this asset's state as tasks keep it by URI"
    )

    gc = commands.add_parser(
        "gc",
        parents=[common],
        help="delete Redis values whose xcom row is gone; report rows whose value is gone",
        description=(
            "Reconcile Redis with Airflow's metadata DB ([database] sql_alchemy_conn): delete every "
            "value under key_prefix that no xcom row refers to (airflow db clean, a deleted DAG run "
            "or DAG, REST DELETE, XComModel.clear never tell the backend), and report rows whose "
            "value is gone, by DAG. Values younger than --grace are kept. Stops without deleting "
            "when more than half of the values it examined would go (a wrong or empty DB?) unless "
            "--force. " + exits
        ),
    )
    gc.add_argument("--dry-run", action="store_true", help="only report what would be deleted")
    gc.add_argument(
        "--grace",
        type=int,
        default=3600,
        metavar="SECONDS",
        help="never delete a value written (or read) less than this long ago (default 3600)",
    )
    gc.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    gc.add_argument("--force", action="store_true", help="delete even when more than half would go")
    gc.add_argument(
        "--state",
        action="store_true",
        help="reclaim worker-side state store values whose row is gone (Airflow 3.3+) instead of XCom values",
    )

    stats = commands.add_parser(
        "stats",
        parents=[common],
        help="what uses the memory: keys and bytes per DAG, largest values, TTLs, the server",
        description=(
            "Keys and bytes per DAG, the largest XComs, chunked values and a histogram of the TTLs "
            "left, from a walk of the values under key_prefix; then each server's memory, maxmemory, "
            "eviction policy, persistence and version. " + exits
        ),
    )
    stats.add_argument(
        "--top", type=int, default=10, metavar="N", help="largest XComs and DAGs shown (default 10)"
    )

    doctor = commands.add_parser(
        "doctor",
        parents=[common],
        help="check the configuration and the Redis it names",
        description=(
            "Check [redis_xcom] and its source, the connection and its latency, TLS and auth, that "
            "every command the backend sends is allowed, the eviction policy, persistence, maxmemory "
            "headroom, proto-max-bulk-len against chunk_bytes, the cluster or Sentinel, and "
            "[core] xcom_backend. Each check prints ok, warning or fail with what to do; a last line "
            "sums up (the counts, and the check to act on first). Exit code 0 "
            "when nothing failed (warnings too, unless --strict), 1 on a failure."
        ),
    )
    doctor.add_argument("--strict", action="store_true", help="exit 1 on warnings too")


def subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each command: what `airflow redis-xcom` and the docs show."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return [(name, helps[name], sub) for name, sub in action.choices.items()]
    raise AssertionError("the redis-xcom parser has no commands")


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Run the parsed command: `redis-xcom <command>` and `airflow redis-xcom <command>` alike."""
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
    if args.command in ("clear", "gc", "stats", "doctor"):
        from redis_xcom.ops.commands import run_command

        return run_command(args)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse rejects unknown ones


if __name__ == "__main__":
    sys.exit(main())
