"""What a new user sees when `redis-xcom doctor` and `redis-xcom stats` cannot use Redis: the same
diagnosis (message and advice) from both, in text and in --json, exit code 1, in seconds, against a
real redis-server that requires a password."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from redis_xcom import airflow_compat
from redis_xcom.ops import cli
from redis_xcom.runtime import reset_runtime
from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer, free_port
from tests.topologies.tls import OPENSSL, OPENSSL_MISSING, TLSRedisServer, make_certificates

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING_REASON),
]
PASSWORD = "s3cret-Pw"
WRONG = "wr0ng-Pw"
# What the user waits at most for a diagnosis once the command runs (Airflow's import aside).
SECONDS = 5.0


@pytest.fixture(scope="module")
def locked_server() -> Iterator[RedisServer]:
    """A redis-server with requirepass, as a new user's production Redis has."""
    with RedisServer() as server:
        server.client().config_set("requirepass", PASSWORD)
        airflow_compat.load_xcom_machinery()  # imported once, so that the timings are the commands'
        yield server


@pytest.fixture
def configured(xcom_settings: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    xcom_settings.setenv("AIRFLOW__CORE__XCOM_BACKEND", "redis_xcom.ExclusiveRedisXCom")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", "messages-test")
    return xcom_settings


@dataclass
class Seen:
    """What one command printed, and how long it took."""

    code: int
    out: str
    err: str
    seconds: float


def run(capsys: pytest.CaptureFixture[str], *args: str) -> Seen:
    started = time.monotonic()
    code = cli.main(list(args))
    took = time.monotonic() - started
    captured = capsys.readouterr()
    return Seen(code, captured.out, captured.err, took)


@dataclass(frozen=True)
class Failure:
    url: Callable[[int], str]
    problem: str
    check: str  # doctor's failing check
    message: tuple[str, ...]  # in the message
    advice: tuple[str, ...]  # in the advice


FAILURES = {
    "wrong password": Failure(
        lambda port: f"redis://:{WRONG}@127.0.0.1:{port}/0",
        "wrong-credentials",
        "connect",
        ("refused the user and password", "127.0.0.1:"),
        ("check the user and password in [redis_xcom] url",),
    ),
    "missing password": Failure(
        lambda port: f"redis://127.0.0.1:{port}/0",
        "missing-credentials",
        "connect",
        ("requires a password", "gives none"),
        ("redis://:PASSWORD@host:6379/0",),
    ),
    "bad url": Failure(
        lambda port: "redis://127.0.0.1:notaport/0",
        "config",
        "config",
        ("the port 'notaport'", "not a number from 1 to 65535", "write host:port"),
        ("fix [redis_xcom] url", "redis://[[user]:password@]host[:port][/db]"),
    ),
    "tls at a plain-text port": Failure(
        lambda port: f"rediss://:{PASSWORD}@127.0.0.1:{port}/0",
        "tls-mismatch",
        "connect",
        ("does not speak TLS on that port",),
        ("use redis:// (not rediss://)",),
    ),
    "server down": Failure(
        lambda port: f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0",
        "connection-refused",
        "connect",
        ("refused the connection", "nothing listens there"),
        ("start Redis there, or fix the host and port",),
    ),
}


def assert_reads_well(seen: Seen) -> None:
    text = seen.out + seen.err
    assert seen.code == 1, text
    assert seen.seconds < SECONDS, f"took {seen.seconds:.1f} s: {text}"
    assert "task" not in text.lower(), text  # no task is involved in an ops command
    assert ".." not in text.replace("...", ""), text
    assert PASSWORD not in text and WRONG not in text
    assert "Traceback" not in text


@pytest.mark.parametrize("case", list(FAILURES), ids=list(FAILURES))
def test_doctor_and_stats_give_the_same_diagnosis(
    case: str, locked_server: RedisServer, configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    failure = FAILURES[case]
    configured.setenv("AIRFLOW__REDIS_XCOM__URL", failure.url(locked_server.port))

    stats_json = run(capsys, "stats", "--json")
    assert_reads_well(stats_json)
    error: dict[str, Any] = json.loads(stats_json.out)  # JSON on stdout, the exit code kept
    assert error["problem"] == failure.problem, error
    assert error["command"] == "stats"
    for words in failure.message:
        assert words in error["error"], error
    for words in failure.advice:
        assert words in error["advice"], error

    stats_text = run(capsys, "stats")
    assert_reads_well(stats_text)
    assert stats_text.out == ""
    assert f"redis-xcom stats: {error['error']}\n  -> {error['advice']}\n" == stats_text.err

    doctor_json = run(capsys, "doctor", "--json")
    assert_reads_well(doctor_json)
    report = json.loads(doctor_json.out)
    checks = {c["name"]: c for c in report["checks"]}
    failed = checks[failure.check]
    assert failed["status"] == "fail"
    # The same words as stats, for the same failure.
    assert (failed["detail"], failed["advice"]) == (error["error"], error["advice"])
    summary = report["summary"]
    assert summary["failed"] == 1 and summary["first"]["name"] == failure.check
    assert summary["exit_code"] == 1 and summary["skipped_server_checks"] is True

    doctor_text = run(capsys, "doctor")
    assert_reads_well(doctor_text)
    lines = doctor_text.out.splitlines()
    assert f"fail    {failure.check}: {error['error']} -> {error['advice']}" in lines
    assert lines[-1] == summary["text"]
    head = f"doctor: {summary['ok']} ok, 0 warnings, 1 failed; first fix {failure.check}: "
    assert lines[-1].startswith(head)
    assert error["advice"] in lines[-1]


def test_a_good_password_passes_and_doctor_sums_up(
    locked_server: RedisServer, configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configured.setenv("AIRFLOW__REDIS_XCOM__URL", f"redis://:{PASSWORD}@127.0.0.1:{locked_server.port}/0")
    stats = run(capsys, "stats", "--json")
    assert stats.code == 0, stats.err
    assert json.loads(stats.out)["values"] == 0
    doctor = run(capsys, "doctor", "--json")
    report = json.loads(doctor.out)
    summary = report["summary"]
    statuses = [c["status"] for c in report["checks"]]
    assert summary["ok"] == statuses.count("ok") and summary["failed"] == 0
    assert summary["warnings"] == statuses.count("warning") > 0  # no maxmemory, no persistence
    first_warning = next(c for c in report["checks"] if c["status"] == "warning")
    assert summary["first"] == first_warning
    assert doctor.code == summary["exit_code"] == 0
    text = run(capsys, "doctor", "--strict").out.splitlines()
    assert text[-1] == summary["text"]
    assert text[-1].startswith(f"doctor: {summary['ok']} ok, {summary['warnings']} warning")
    assert f"; first look at {first_warning['name']}: {first_warning['advice']}" in text[-1]


@pytest.mark.parametrize(
    "command",
    [["clear", "--dag-id", "etl", "--yes", "--json"], ["gc", "--yes", "--json"]],
    ids=["clear", "gc"],
)
def test_clear_and_gc_say_it_as_stats_does(
    command: list[str], configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    configured.setenv("AIRFLOW__REDIS_XCOM__URL", f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0")
    stats = run(capsys, "stats", "--json")
    seen = run(capsys, *command)
    assert_reads_well(seen)
    error = json.loads(seen.out)
    assert error == {**json.loads(stats.out), "command": command[0]}
    assert error["problem"] == "connection-refused"


@pytest.mark.skipif(OPENSSL is None, reason=OPENSSL_MISSING)
def test_a_tls_server_named_without_tls_or_with_the_wrong_ca(
    configured: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    certs = make_certificates(tmp_path / "certs")
    with TLSRedisServer(certs) as server:
        cases = {
            f"redis://127.0.0.1:{server.port}/0": (
                "tls-required",
                "speaks TLS on that port",
                "use rediss://",
            ),
            f"{server.url}?ssl_ca_certs={certs.other_ca}": ("tls", "TLS handshake", "ssl_ca_certs"),
        }
        for url, (problem, message, advice) in cases.items():
            configured.setenv("AIRFLOW__REDIS_XCOM__URL", url)
            reset_runtime()  # the settings are read once per process
            stats = run(capsys, "stats", "--json")
            assert_reads_well(stats)
            error = json.loads(stats.out)
            assert error["problem"] == problem and message in error["error"] and advice in error["advice"]
            doctor = run(capsys, "doctor", "--json")
            assert_reads_well(doctor)
            connect = next(c for c in json.loads(doctor.out)["checks"] if c["name"] == "connect")
            seen = (connect["status"], connect["detail"], connect["advice"])
            assert seen == ("fail", error["error"], error["advice"])
