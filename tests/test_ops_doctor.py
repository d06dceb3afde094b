"""`redis-xcom doctor` against real redis-servers: a good one, an unreachable one, an evicting one,
and an ACL user that may not run a command the backend sends."""

from __future__ import annotations

import json
from typing import Any

import pytest

from redis_xcom.ops import cli
from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer, engine_shown, free_port

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING_REASON),
]
BACKEND = "redis_xcom.ExclusiveRedisXCom"


def doctor(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    code = cli.main(["doctor", "--json", *args])
    report = json.loads(capsys.readouterr().out)
    checks = report["checks"]
    # The summary counts the checks and names the one to act on first.
    summary = report["summary"]
    assert [summary[k] for k in ("ok", "warnings", "failed")] == [
        sum(c["status"] == status for c in checks) for status in ("ok", "warning", "fail")
    ]
    assert summary["exit_code"] == code
    return code, {c["name"]: c for c in checks}


@pytest.fixture
def configured(xcom_settings: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    xcom_settings.setenv("AIRFLOW__CORE__XCOM_BACKEND", BACKEND)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", "doctor-test")
    return xcom_settings


def test_a_well_set_up_server_passes_even_strict(
    configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--appendonly", "yes", "--maxmemory", "100mb", "--maxmemory-policy", "noeviction"]
    with RedisServer(extra_args=args) as server:
        configured.setenv("AIRFLOW__REDIS_XCOM__URL", server.url)
        code, checks = doctor(capsys, "--strict")
        assert code == 0, checks
        assert {c["status"] for c in checks.values()} == {"ok"}
        for name in ("config", "xcom_backend", "connect", "write", "commands", "eviction", "maxmemory"):
            assert name in checks
        assert "round trip" in checks["connect"]["detail"]
        assert checks["server"]["detail"] == engine_shown(), "the engine and its own version"
        assert not server.client().keys("doctor-test:*"), "the probe value is deleted"
        assert cli.main(["doctor"]) == 0
        last = capsys.readouterr().out.splitlines()[-1]
        assert last == f"doctor: {len(checks)} ok, 0 warnings, 0 failed; nothing to do"


def test_an_unreachable_server_fails_naming_it(
    configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    configured.setenv("AIRFLOW__REDIS_XCOM__URL", f"redis://app:hunter2@127.0.0.1:{port}/0")
    configured.setenv("AIRFLOW__REDIS_XCOM__RETRY_ATTEMPTS", "0")
    configured.setenv("AIRFLOW__REDIS_XCOM__SOCKET_CONNECT_TIMEOUT", "0.5")
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert code == 1
    assert f"fail    connect: Redis at 127.0.0.1:{port} refused the connection: nothing listens there" in out
    summary = "doctor: 2 ok, 0 warnings, 1 failed; first fix connect: start Redis"
    assert out.splitlines()[-1].startswith(summary)
    assert "hunter2" not in out


def test_an_evicting_server_warns_and_strict_fails(
    configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["--appendonly", "yes", "--maxmemory", "100mb", "--maxmemory-policy", "allkeys-lru"]
    with RedisServer(extra_args=args) as server:
        configured.setenv("AIRFLOW__REDIS_XCOM__URL", server.url)
        code, checks = doctor(capsys)
        assert code == 0
        assert checks["eviction"]["status"] == "warning"
        assert "allkeys-lru" in checks["eviction"]["detail"]
        engine = engine_shown().split()[0]  # the server's own name, and its config file in the advice
        assert f"{engine} may evict" in checks["eviction"]["detail"]
        assert f"{engine.lower()}.conf" in checks["eviction"]["advice"]
        assert "noeviction" in checks["eviction"]["advice"]
        assert doctor(capsys, "--strict")[0] == 1


def test_an_acl_user_missing_a_command_fails_naming_it(
    configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with RedisServer(extra_args=["--appendonly", "yes", "--maxmemory", "100mb"]) as server:
        server.client().execute_command(
            "ACL", "SETUSER", "app", "on", ">s3cret", "~*", "&*", "+@all", "-unlink"
        )
        configured.setenv("AIRFLOW__REDIS_XCOM__URL", f"redis://app:s3cret@127.0.0.1:{server.port}/0")
        code, checks = doctor(capsys)
        assert code == 1
        assert checks["commands"]["status"] == "fail"
        assert "UNLINK" in checks["commands"]["detail"]
        assert checks["commands"]["advice"] == "ACL SETUSER app +unlink"
        assert "s3cret" not in json.dumps(checks)


def test_a_server_refusing_config_is_read_through_info(
    configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with RedisServer(extra_args=["--appendonly", "yes", "--maxmemory", "100mb"]) as server:
        server.client().execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-config")
        configured.setenv("AIRFLOW__REDIS_XCOM__URL", f"redis://app:pw@127.0.0.1:{server.port}/0")
        code, checks = doctor(capsys)
        assert code == 0
        assert "INFO (CONFIG is refused)" in checks["eviction"]["detail"]
        assert checks["commands"]["status"] == "warning" and "CONFIG GET" in checks["commands"]["detail"]
