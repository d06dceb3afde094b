"""A password in [redis_xcom] url never shows in a log line, an exception message, a traceback or a repr."""

from __future__ import annotations

import logging
import os
import signal
import traceback
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest

from redis_xcom import ExclusiveRedisXCom, RedisUnavailableError, RedisXComError
from redis_xcom.config import Settings
from redis_xcom.errors import ConfigError
from redis_xcom.runtime import get_runtime, reset_runtime
from tests.airflow_limits import NOAUTH_RECURSION_REASON, OLD_REDIS_PY
from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer, free_port

pytestmark = pytest.mark.integration

PASSWORD = "Sup3r-S3cret@pw:/%#"  # with characters that need percent-encoding in a URL
ENCODED = quote(PASSWORD, safe="")


def url(port: int, password: str = ENCODED, user: str = "default") -> str:
    return f"redis://{user}:{password}@127.0.0.1:{port}/0"


def leaks(text: str) -> bool:
    return any(form in text for form in (PASSWORD, ENCODED, "Sup3r-S3cret"))


def everything_said(error: BaseException | None, records: list[logging.LogRecord]) -> str:
    """Messages, reprs and the full traceback chain of the error, and every log line with its traceback."""
    parts = []
    if error is not None:
        parts += [str(error), repr(error), "".join(traceback.format_exception(error))]
    for record in records:
        parts.append(record.getMessage())
        if record.exc_info:
            parts.append("".join(traceback.format_exception(*record.exc_info)))
    return "\n".join(parts)


def push(value: Any, task_id: str = "t") -> str:
    return ExclusiveRedisXCom.serialize_value(
        value, key="return_value", task_id=task_id, dag_id="d", run_id="r", map_index=-1
    )


def pull(reference: str) -> Any:
    return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=reference))


@pytest.fixture
def protected() -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    with RedisServer() as server:
        # Set after start: the helper's readiness check pings without a password.
        server.client().config_set("requirepass", PASSWORD)
        yield server


def configure(mp: pytest.MonkeyPatch, redis_url: str) -> None:
    mp.setenv("AIRFLOW__REDIS_XCOM__URL", redis_url)
    mp.setenv("AIRFLOW__REDIS_XCOM__SOCKET_TIMEOUT", "0.5")
    mp.setenv("AIRFLOW__REDIS_XCOM__SOCKET_CONNECT_TIMEOUT", "0.5")
    mp.setenv("AIRFLOW__REDIS_XCOM__RETRY_ATTEMPTS", "1")
    mp.setenv("AIRFLOW__REDIS_XCOM__RETRY_BACKOFF_CAP", "0.1")
    reset_runtime()


def test_password_url_works_and_nothing_printable_shows_it(
    protected: RedisServer, xcom_settings: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    configure(xcom_settings, url(protected.port))
    with caplog.at_level(logging.DEBUG):
        assert pull(push({"ok": True})) == {"ok": True}
        runtime = get_runtime()
    shown = [repr(runtime), repr(runtime.settings), str(runtime.settings), repr(runtime.store)]
    shown += [repr(runtime.store.client), repr(runtime.store.client.connection_pool)]
    assert not leaks("\n".join(shown)), shown
    assert f"127.0.0.1:{protected.port}" in repr(runtime.store)
    assert not leaks(everything_said(None, caplog.records))


def test_wrong_password_error_names_the_server_not_the_password(
    protected: RedisServer, xcom_settings: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = quote("Sup3r-S3cret-but-wrong", safe="")
    configure(xcom_settings, url(protected.port, password=wrong))
    with caplog.at_level(logging.DEBUG), pytest.raises(RedisXComError) as info:
        push("x")
    assert f"127.0.0.1:{protected.port}" in str(info.value)
    assert "password" in str(info.value)  # it says what to fix
    said = everything_said(info.value, caplog.records)
    assert "Sup3r-S3cret" not in said, said


@pytest.mark.skipif(OLD_REDIS_PY, reason=NOAUTH_RECURSION_REASON)
def test_missing_password_error_is_clear(protected: RedisServer, xcom_settings: pytest.MonkeyPatch) -> None:
    configure(xcom_settings, protected.url)
    with pytest.raises(RedisXComError, match=f"127.0.0.1:{protected.port}"):
        push("x")


@pytest.mark.parametrize("form", ["user", "no-user"])
def test_unreachable_server_error_and_logs_hide_the_password(
    xcom_settings: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, form: str
) -> None:
    port = free_port()  # nothing listens there
    configure(xcom_settings, url(port, user="app" if form == "user" else ""))
    with caplog.at_level(logging.DEBUG), pytest.raises(RedisUnavailableError) as info:
        push("x")
    assert f"127.0.0.1:{port}" in str(info.value)
    assert not leaks(everything_said(info.value, caplog.records))


def test_server_dying_mid_session_hides_the_password(
    protected: RedisServer, xcom_settings: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    configure(xcom_settings, url(protected.port))
    reference = push("before")
    assert protected.proc is not None
    os.kill(protected.proc.pid, signal.SIGKILL)
    protected.proc.wait()
    protected.proc = None
    with caplog.at_level(logging.DEBUG), pytest.raises(RedisUnavailableError) as info:
        pull(reference)
    assert not leaks(everything_said(info.value, caplog.records))


def test_config_errors_and_settings_repr_hide_the_password() -> None:
    with pytest.raises(ConfigError) as info:
        Settings(url=f"http://user:{ENCODED}@example.com:6379/0")
    assert not leaks(str(info.value)) and not leaks(repr(info.value))
    settings = Settings(url=url(6390))
    assert not leaks(repr(settings)) and not leaks(str(settings))
    assert "***" in repr(settings)
