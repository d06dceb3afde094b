"""`airflow redis-xcom <command>` (the provider info's `cli` field, Airflow 3.2+): the console script's
commands and arguments, run by Airflow's own CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from redis_xcom.ops import airflow_cli, cli
from tests.redis_process import REDIS_SERVER, RedisServer

try:
    from airflow.providers_manager import ProvidersManager

    HAS_CLI_FIELD = hasattr(ProvidersManager, "cli_command_functions")
except ImportError:  # pragma: no cover - Airflow is a dependency
    HAS_CLI_FIELD = False
needs_cli_field = pytest.mark.skipif(
    not HAS_CLI_FIELD,
    reason="this Airflow has no provider `cli` field (added in 3.2); redis-xcom still works",
)


def _airflow_parser():  # type: ignore[no-untyped-def]
    from airflow.cli.cli_parser import get_parser

    return get_parser()


@needs_cli_field
@pytest.mark.parametrize(
    "argv",
    [
        ["clear", "--dag-id", "etl", "--run-id", "r", "--map-index", "3", "--dry-run", "--json"],
        ["gc", "--grace", "60", "--yes", "--force"],
        ["gc"],
        ["stats", "--top", "5"],
        ["doctor", "--strict"],
        ["demo", "--embedded", "--no-fallback", "--timeout", "30"],
        ["demo"],
    ],
)
def test_airflow_parses_every_command_as_the_console_script_does(argv: list[str]) -> None:
    ours = vars(cli.build_parser().parse_args(argv))
    theirs = vars(_airflow_parser().parse_args(["redis-xcom", *argv]))
    assert {name: theirs.get(name) for name in ours if name != "command"} == {
        name: value for name, value in ours.items() if name != "command"
    }


@needs_cli_field
def test_the_airflow_group_has_every_command_and_option() -> None:
    (group,) = airflow_cli.get_cli_commands()
    assert group.name == "redis-xcom"
    got = {
        command.name: {flag for arg in command.args for flag in arg.flags} for command in group.subcommands
    }
    console = {
        name: {flag for action in sub._actions for flag in action.option_strings} - {"-h", "--help"}
        for name, _, sub in cli.subcommands(cli.build_parser())
    }
    assert got == console
    assert set(got) == {"demo", "clear", "gc", "stats", "doctor"}
    assert got["clear"] >= {"--dag-id", "--run-id", "--dry-run", "--yes", "--json"}


def _airflow(home: Path, *args: str, url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env |= {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__XCOM_BACKEND": "redis_xcom.ExclusiveRedisXCom",
        "AIRFLOW__REDIS_XCOM__URL": url,
        "AIRFLOW__REDIS_XCOM__KEY_PREFIX": "airflow-cli-test",
    }
    return subprocess.run(
        [sys.executable, "-m", "airflow", *args], env=env, capture_output=True, text=True, timeout=300
    )


@needs_cli_field
@pytest.mark.integration
@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server binary not found; CI installs it")
def test_airflow_redis_xcom_doctor_checks_the_configured_redis(tmp_path: Path) -> None:
    with RedisServer(extra_args=["--maxmemory-policy", "noeviction"]) as server:
        done = _airflow(tmp_path, "redis-xcom", "doctor", "--json", url=server.url)
        assert done.returncode == 0, done.stderr[-3000:]
        # Airflow may log before the command's output: the document starts at its first line "{".
        document = done.stdout[done.stdout.index("{\n") :]
        checks = {c["name"]: c for c in json.loads(document)["checks"]}
        assert checks["connect"]["status"] == "ok"
        assert str(server.port) in checks["connect"]["detail"]
        assert checks["xcom_backend"]["status"] == "ok"


@needs_cli_field
@pytest.mark.integration
def test_airflow_redis_xcom_passes_on_the_exit_code_of_a_failure(tmp_path: Path) -> None:
    done = _airflow(tmp_path, "redis-xcom", "doctor", url="redis://127.0.0.1:1/0")
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "127.0.0.1:1" in done.stdout + done.stderr
