"""A password table: every URL form a user may write, through every path a user reads.

Forms: user and password, password only, ``/ # ? @ % :`` in the password (encoded and not),
credentials in the query string, cluster seeds, Sentinels, the valkey:// aliases, an Airflow
connection. Paths: the redaction itself, Settings' repr, a ConfigError, a push's error as a task log
shows it, the parsed target's repr, and `redis-xcom doctor` / `stats` output.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from redis_xcom import ExclusiveRedisXCom, RedisXComError
from redis_xcom.config import Settings
from redis_xcom.connection import connection_url
from redis_xcom.ops import cli
from redis_xcom.redaction import redact_url
from redis_xcom.runtime import reset_runtime
from redis_xcom.storage.client import parse_url
from tests.redis_process import MISSING_REASON, REDIS_SERVER, UNUSED_PORT, RedisServer

SECRET = "Hx7-p4ss"  # the part of every password below that must never show
RAW_PASSWORDS = [f"{SECRET}/tail", f"{SECRET}#frag", f"{SECRET}?q=1", f"{SECRET}@at", f"{SECRET}%zz:colon"]


def _forms(port: int) -> list[str]:
    forms = []
    for raw in RAW_PASSWORDS:
        encoded = quote(raw, safe="")
        forms += [
            f"redis://app:{encoded}@127.0.0.1:{port}/0",
            f"redis://:{encoded}@127.0.0.1:{port}/0",
            f"redis://app:{raw}@127.0.0.1:{port}/0",  # unencoded, as people paste them
            f"redis://:{raw}@127.0.0.1:{port}/0",
            f"rediss+cluster://app:{raw}@127.0.0.1:{port},127.0.0.1:{port + 1}",
            f"redis+sentinel://:{encoded}@127.0.0.1:{port},127.0.0.1:{port + 1}/mymaster/0",
            f"redis+sentinel://:{raw}@127.0.0.1:{port}/mymaster/0",
            # As Valkey's consoles and clients write them (config.SCHEME_ALIASES).
            f"valkey://app:{encoded}@127.0.0.1:{port}/0",
            f"valkeys://:{raw}@127.0.0.1:{port}/0",
            f"valkeys+cluster://app:{raw}@127.0.0.1:{port},127.0.0.1:{port + 1}",
            f"valkey+sentinel://:{encoded}@127.0.0.1:{port},127.0.0.1:{port + 1}/mymaster/0",
        ]
    forms += [
        f"redis://127.0.0.1:{port}/0?password={SECRET}",
        f"redis://127.0.0.1:{port}/0?username=app&password={SECRET}",
        f"redis+cluster://127.0.0.1:{port}?password={SECRET}",
        f"valkey://127.0.0.1:{port}/0?username=app&password={SECRET}",
        f"unix:///tmp/redis.sock?db=0&password={SECRET}",
        f"{SECRET}@127.0.0.1:{port}",  # no scheme at all
    ]
    return forms + _encoded_names(port)


def _encoded_names(port: int) -> list[str]:
    """Credential parameters whose names are percent-encoded or in capitals: redis-py decodes the
    names, so ``%70assword`` authenticates as ``password`` does."""
    names = ["%70assword", "pa%73sword", "%50ASSWORD", "PASSWORD", "Password", "%2570assword"]
    return [f"redis://127.0.0.1:{port}/0?{name}={SECRET}" for name in names] + [
        f"redis://127.0.0.1:{port}/0?username=app&%70assword={SECRET}",
        f"valkey://127.0.0.1:{port}/0?pa%73sword={SECRET}",
    ]


FORMS = _forms(UNUSED_PORT)
ENCODED_NAMES = _encoded_names(UNUSED_PORT)


def _said(error: BaseException) -> str:
    return "\n".join([str(error), repr(error), "".join(traceback.format_exception(error))])


@pytest.mark.parametrize("url", FORMS)
def test_the_redaction_hides_every_form(url: str) -> None:
    shown = redact_url(url)
    assert SECRET not in shown, shown
    assert "***" in shown


@pytest.mark.parametrize("url", FORMS)
def test_settings_and_config_errors_hide_every_form(url: str) -> None:
    try:
        settings = Settings(url=url)
    except RedisXComError as error:
        assert SECRET not in _said(error)
        return
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    try:
        target = parse_url(url, settings)
    except RedisXComError as error:
        assert SECRET not in _said(error), _said(error)
        return
    assert SECRET not in repr(target)


def test_an_unencoded_password_is_refused_with_what_to_do() -> None:
    with pytest.raises(RedisXComError) as info:
        parse_url(f"redis://app:{SECRET}#frag@127.0.0.1:6390/0")
    message = str(info.value)
    assert "percent-encode" in message and "%23" in message and SECRET not in message


def test_query_string_credentials_are_the_password() -> None:
    target = parse_url(f"redis://127.0.0.1:6390/0?username=app&password={SECRET}&socket_timeout=2")
    assert (target.username, target.password) == ("app", SECRET)
    assert dict(target.query) == {"socket_timeout": "2"}, "the credentials are not passed on as options"
    cluster = parse_url(f"redis+cluster://127.0.0.1:6390?password={SECRET}")
    assert cluster.password == SECRET


def test_a_connection_with_any_password_is_hidden() -> None:
    from airflow.models.connection import Connection

    for raw, conn_type in zip(RAW_PASSWORDS, ["redis", "valkeys"] * len(RAW_PASSWORDS), strict=False):
        conn = Connection(
            conn_id="r", conn_type=conn_type, host="127.0.0.1", port=6390, login="app", password=raw
        )
        url, _, _ = connection_url(conn)
        assert parse_url(url).password == raw, "the connection's password reaches the client exactly"
        assert SECRET not in redact_url(url) and SECRET not in repr(Settings(url=url))


@pytest.fixture
def unreachable(xcom_settings: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SOCKET_CONNECT_TIMEOUT", "0.3")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SOCKET_TIMEOUT", "0.3")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__RETRY_ATTEMPTS", "0")
    yield xcom_settings
    reset_runtime()


@pytest.mark.parametrize("url", [u for u in FORMS if u.startswith(("redis://", "valkey://", "valkeys://"))])
def test_a_push_error_in_a_task_log_hides_every_form(
    url: str, unreachable: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    unreachable.setenv("AIRFLOW__REDIS_XCOM__URL", url)
    reset_runtime()
    with caplog.at_level(logging.DEBUG), pytest.raises(RedisXComError) as info:
        ExclusiveRedisXCom.serialize_value("x", key="k", task_id="t", dag_id="d", run_id="r", map_index=-1)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in _said(info.value) and SECRET not in logged


@pytest.mark.parametrize("command", [["doctor"], ["doctor", "--json"], ["stats", "--dag-id", "d"]])
@pytest.mark.parametrize(
    "url",
    [u for u in FORMS if u.startswith("redis")][:12]
    + [u for u in FORMS if u.startswith("valkey")][:4]
    + ENCODED_NAMES,
)
def test_ops_commands_hide_every_form(
    url: str, command: list[str], unreachable: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    unreachable.setenv("AIRFLOW__REDIS_XCOM__URL", url)
    reset_runtime()
    try:
        cli.main(command)
    except (RedisXComError, SystemExit) as error:
        assert SECRET not in _said(error)
    out = capsys.readouterr()
    assert SECRET not in out.out + out.err, out


@pytest.mark.integration
@pytest.mark.parametrize("name", ["password", "%70assword", "pa%73sword"])
def test_query_string_password_authenticates_and_doctor_says_so(
    name: str, xcom_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    with RedisServer() as server:
        server.client().config_set("requirepass", SECRET)
        xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", f"redis://127.0.0.1:{server.port}/0?{name}={SECRET}")
        reset_runtime()
        try:
            reference = ExclusiveRedisXCom.serialize_value(
                {"ok": 1}, key="k", task_id="t", dag_id="d", run_id="r", map_index=-1
            )
            assert ExclusiveRedisXCom.deserialize_value(_Row(reference)) == {"ok": 1}
            cli.main(["doctor", "--json"])
            out = capsys.readouterr().out
            checks: dict[str, Any] = {c["name"]: c for c in json.loads(out)["checks"]}
            assert "no password" not in checks["tls/auth"]["detail"], checks["tls/auth"]
            assert SECRET not in out
        finally:
            reset_runtime()


class _Row:
    def __init__(self, value: str) -> None:
        self.value = value
