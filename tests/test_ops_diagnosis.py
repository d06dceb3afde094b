"""diagnosis.diagnose on the errors redis-py raises (both the 5.x and the 8.x wordings), without a
server: what the ops commands say for each."""

from __future__ import annotations

import socket
import ssl

import pytest
from redis.exceptions import AuthenticationError, NoPermissionError, ResponseError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_xcom.config import Settings
from redis_xcom.errors import ConfigError, RedisUnavailableError
from redis_xcom.ops import diagnosis

SETTINGS = Settings(url="redis://app:hunter2@cache.internal:6380/0")


def raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - as redis-py wraps socket errors: the context, not the cause
    except BaseException as exc:
        return exc


@pytest.mark.parametrize(
    ("exc", "problem"),
    [
        (AuthenticationError("invalid username-password pair or user is disabled."), "wrong-credentials"),
        (AuthenticationError("WRONGPASS invalid username-password pair"), "wrong-credentials"),
        (AuthenticationError("Authentication required."), "missing-credentials"),  # redis-py 5
        (ResponseError("NOAUTH Authentication required."), "missing-credentials"),
        (
            AuthenticationError("HELLO must be called with the client already authenticated, otherwise"),
            "missing-credentials",
        ),
        (
            ResponseError("AUTH <password> called without any password configured for the default user"),
            "unexpected-credentials",
        ),
        (
            raised_from(
                RedisConnectionError("Error 111 connecting to cache.internal:6380. Connection refused."),
                ConnectionRefusedError(111, "Connection refused"),
            ),
            "connection-refused",
        ),
        (
            raised_from(
                RedisConnectionError("Error -2 connecting to cache.internal:6380. Name or service not known"),
                socket.gaierror(-2, "Name or service not known"),
            ),
            "unknown-host",
        ),
        (RedisTimeoutError("Timeout connecting to server"), "timeout"),
        (
            raised_from(
                RedisConnectionError("Error 1 connecting to cache.internal:6380. [SSL] certificate verify"),
                ssl.SSLCertVerificationError(1, "certificate verify failed"),
            ),
            "tls",
        ),
        (NoPermissionError("this user has no permissions to run the 'unlink' command"), "permission"),
        (ConfigError("[redis_xcom] url 'x': the port 'p' of 'h:p' is not a number"), "config"),
    ],
)
def test_each_failure_has_its_diagnosis(exc: BaseException, problem: str) -> None:
    found = diagnosis.diagnose(exc, SETTINGS)
    assert found.problem == problem, found
    assert found.message and found.advice
    shown = found.message + found.advice + found.cause
    assert "hunter2" not in shown and "task" not in shown and ".." not in shown.replace("...", "")
    if problem != "config":
        assert found.message.startswith("Redis at cache.internal:6380")


def test_the_store_error_is_read_through_to_redis_py() -> None:
    # The store raises its own error "from None" on a refused password: the context still tells.
    store_error = raised_from(
        RedisUnavailableError("Redis at cache.internal:6380 refused the credentials ... the task ..."),
        AuthenticationError("invalid username-password pair or user is disabled."),
    )
    found = diagnosis.diagnose(store_error, SETTINGS)
    assert found.problem == "wrong-credentials"
    assert "task" not in found.message + found.advice
    assert found.cause == "invalid username-password pair or user is disabled"
