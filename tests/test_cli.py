"""`redis-xcom demo`: its choice of Redis, its checks, and two full runs (embedded and real Redis)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import fakeredis
import pytest
import redis

from redis_xcom import keys
from redis_xcom.ops import cli, demo
from redis_xcom.ops.airflow_run import (
    AirflowCommandError,
    AirflowHome,
    CommandResult,
    TaskInstanceRow,
    XComRow,
)
from tests.key_helpers import build_key
from tests.redis_process import RedisServer, free_port
from tests.xcom_calls import value_keys

RUN_ID = "manual__2024-01-01T00:00:00+00:00"


def demo_command() -> list[str]:
    script = Path(sys.executable).parent / "redis-xcom"
    return [str(script)] if script.exists() else [sys.executable, "-m", "redis_xcom"]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(extra)
    return env


# --- command line ------------------------------------------------------------------------------


def test_help_lists_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "demo" in capsys.readouterr().out


def test_demo_help_names_its_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["demo", "--help"])
    out = capsys.readouterr().out
    for option in ("--redis-url", "--embedded", "--no-fallback", "--keep-keys", "--keep-home"):
        assert option in out


def test_a_command_is_required(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main([])
    assert exit_info.value.code == 2


# --- which Redis the demo writes to --------------------------------------------------------------


def test_without_a_configured_url_the_demo_uses_the_embedded_server_and_probes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_probe(url: str, timeout: float = 2.0) -> str | None:
        raise AssertionError(f"the demo probed {url} although no Redis was configured")

    monkeypatch.setattr(demo, "unreachable_reason", no_probe)
    target = demo.choose_redis(None, env={})
    try:
        assert target.embedded is not None
        assert "embedded fakeredis" in target.description
        assert target.url.startswith("redis://127.0.0.1:") and not target.url.endswith(":6379/0")
        # The embedded server answers real clients over TCP, TTLs included.
        remote = redis.Redis.from_url(target.url)
        assert remote.set("k", b"v", ex=60) and remote.get("k") == b"v" and 0 < remote.ttl("k") <= 60
        remote.close()
    finally:
        target.close()


def test_an_unreachable_configured_redis_falls_back_to_the_embedded_server_and_says_so() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    notices: list[str] = []

    class Out:
        def write(self, text: str) -> int:
            notices.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    target = demo.choose_redis(None, env={demo.URL_VARIABLE: url}, out=Out())  # type: ignore[arg-type]
    try:
        assert target.embedded is not None
        assert "unreachable" in "".join(notices) and url in "".join(notices)
    finally:
        target.close()


def test_an_unreachable_redis_is_an_error_with_no_fallback() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    with pytest.raises(demo.DemoError, match="unreachable"):
        demo.choose_redis(url, env={}, fallback=False)


@pytest.mark.integration
def test_a_reachable_configured_redis_is_used(redis_server: RedisServer) -> None:
    target = demo.choose_redis(None, env={demo.URL_VARIABLE: redis_server.url})
    assert target.embedded is None and target.url == redis_server.url
    assert demo.URL_VARIABLE in target.description


def test_the_password_of_the_url_is_never_shown() -> None:
    url = f"redis://user:s3cret@127.0.0.1:{free_port()}/0"
    with pytest.raises(demo.DemoError) as exc_info:
        demo.choose_redis(url, env={}, fallback=False)
    assert "s3cret" not in str(exc_info.value)


# --- the checks after the run ------------------------------------------------------------------


class FakeHome:
    def __init__(self, states: dict[str, str], rows: list[XComRow]) -> None:
        self.states = states
        self.rows = rows

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str]:
        return self.states

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstanceRow]:
        return []

    def xcoms(self, dag_id: str, run_id: str) -> list[XComRow]:
        return self.rows


def ref_row(task_id: str, key: str = "return_value", map_index: int = -1) -> tuple[XComRow, str]:
    redis_key = build_key("p", keys.XComCoordinates(demo.DAG_ID, RUN_ID, task_id, map_index, key))
    reference = keys.to_reference(redis_key)
    return XComRow(demo.DAG_ID, RUN_ID, task_id, map_index, key, reference, f'"{reference}"'), redis_key


def inspect(states: dict[str, str], rows: list[XComRow], client: Any) -> demo.Report:
    return demo.inspect_run(FakeHome(states, rows), client, RUN_ID, "p", ttl=100)  # type: ignore[arg-type]


def test_checks_pass_when_db_and_redis_agree() -> None:
    client = fakeredis.FakeRedis()
    row, redis_key = ref_row("extract")
    client.set(redis_key, b"x" * 10, ex=100)
    client.sadd(keys.run_index_key("p", demo.DAG_ID, RUN_ID), redis_key)
    branch = XComRow(demo.DAG_ID, RUN_ID, "route", -1, "skipmixin_key", {"followed": ["a"]}, "{}")
    report = inspect({"extract": "success", "quiet_day": "skipped"}, [row, branch], client)
    assert report.ok, report.checks
    task, map_index, key, size, ttl, shown = report.rows[0]
    assert (task, map_index, key, size, shown) == ("extract", "", "return_value", "10", row.value)
    assert 0 < int(ttl) <= 100
    assert report.rows[1][-1].startswith("(inline, read by the scheduler)")


def test_checks_fail_on_inline_values_missing_keys_bad_ttl_stray_keys_and_wrong_states() -> None:
    client = fakeredis.FakeRedis()
    missing, _ = ref_row("gone")
    no_ttl, no_ttl_key = ref_row("forever")
    client.set(no_ttl_key, b"x")
    _, stray_key = ref_row("stray")
    client.set(stray_key, b"x", ex=50)
    inline = XComRow(demo.DAG_ID, RUN_ID, "leaky", -1, "return_value", {"a": 1}, '{"a": 1}')
    report = inspect({"gone": "failed", "quiet_day": "success"}, [missing, no_ttl, inline], client)
    assert not report.ok
    failed = " | ".join(c.text for c in report.checks if not c.ok)
    for expected in ("gone is failed", "quiet_day is success", "leaky/return_value", "missing from Redis"):
        assert expected in failed
    assert "wrong TTL" in failed and "(TTL -1)" in failed
    assert stray_key in failed


def test_a_failing_airflow_command_exits_1_and_keeps_the_home_with_its_log(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "migrate.log"
    log.write_text("sqlalchemy says no\n")

    def failing_migrate(self: AirflowHome, **kwargs: Any) -> CommandResult:
        raise AirflowCommandError(CommandResult(("db", "migrate"), 1, 0.5, log))

    monkeypatch.setattr(AirflowHome, "migrate", failing_migrate)
    out = io.StringIO()
    assert demo.run_demo(force_embedded=True, env={}, out=out) == 1
    text = out.getvalue()
    assert str(log) in text and "sqlalchemy says no" in text
    kept = re.search(r"Airflow home kept: (\S+)", text)
    assert kept is not None and Path(kept.group(1)).is_dir()
    shutil.rmtree(kept.group(1))


# --- full runs ---------------------------------------------------------------------------------


def references_in(table: str) -> list[str]:
    return re.findall(r"redis-xcom://(\S+)", table)


@pytest.mark.e2e
def test_demo_runs_green_on_the_embedded_server() -> None:
    proc = subprocess.run(
        [*demo_command(), "demo"], env=clean_env(), capture_output=True, text=True, timeout=240
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "embedded fakeredis server" in out
    assert "Demo passed" in out and "FAIL" not in out
    assert len(references_in(out)) >= 10
    assert "skipmixin_key" in out and "(inline, read by the scheduler)" in out
    # Tidy: Airflow's own logging went to the log file, not to the terminal.
    assert "[info" not in out and "Traceback" not in out + proc.stderr


@pytest.mark.e2e
@pytest.mark.integration
def test_demo_against_a_real_redis_from_the_environment(redis_server: RedisServer) -> None:
    prefix = f"cli-{uuid.uuid4().hex[:8]}"
    env = clean_env(AIRFLOW__REDIS_XCOM__URL=redis_server.url, AIRFLOW__REDIS_XCOM__TTL="1200")
    proc = subprocess.run(
        [sys.executable, "-m", "redis_xcom", "demo", "--key-prefix", prefix, "--keep-keys"],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert redis_server.url in out and "embedded" not in out
    assert "0 < TTL <= 1200 s" in out
    shown = references_in(out)
    assert shown and all(k.startswith(f"{prefix}:{{{demo.DAG_ID}/") for k in shown)
    client = redis_server.client()
    stored = value_keys(client, f"{prefix}:*")
    assert stored == set(shown)
    assert all(0 < client.ttl(k) <= 1200 for k in stored)
    assert "index" in out and "names exactly its" in out
    client.delete(*client.keys(f"{prefix}:*"))
