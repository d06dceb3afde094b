"""Every redis-py error sorted once, and translated into the RedisXComError a user reads.

Like kombu's ``get_redis_error_classes()``: the rest of the package asks these tuples, never
redis-py's exception classes one by one.

* ``RETRIED``: a reset or timed-out connection, LOADING after a restart (a ConnectionError subclass
  in redis-py), or a replica that became read-only during a failover. redis-py's own Retry repeats
  them (build_client gives it this list).
* ``TRANSIENT``: what a resharding or a failover looks like to a cluster client; every command we
  send is idempotent, so cluster.retrying sends it again.
* ``FAILURES``: everything redis-py (and the socket under it) raises; ``translate`` turns each
  into a RedisXComError. A ``ResponseError`` outside the two above is the server refusing a
  command (an ACL, a renamed command, a wrong type): ``is_refusal``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from typing import Any, NoReturn

from redis.exceptions import (
    AskError,
    AuthenticationError,
    ClusterDownError,
    ClusterError,
    ExecAbortError,
    NoPermissionError,
    ReadOnlyError,
    RedisClusterException,
    RedisError,
    ResponseError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.sentinel import MasterNotFoundError

from redis_xcom.errors import RedisUnavailableError, RedisXComError

RETRIED: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    socket.timeout,
    ReadOnlyError,
)
# ClusterError: redirections beyond redis-py's own limit.
TRANSIENT: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    socket.timeout,
    ClusterDownError,
    ClusterError,
    TryAgainError,
    AskError,  # MovedError too
    SlotNotCoveredError,  # the slot map names no master yet
)
FAILURES: tuple[type[BaseException], ...] = (RedisError, RedisClusterException, socket.timeout)

# redis-py prefixes errors inside a pipeline with the command and its arguments: payload bytes.
_PIPELINE_ANNOTATION = re.compile(r"^Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)


def is_refusal(exc: BaseException | None) -> bool:
    """The server answered, refusing the command (NOPERM, unknown or renamed command)."""
    return isinstance(exc, ResponseError)


def is_wrong_type(exc: BaseException) -> bool:
    """GET on a list: the value is chunked."""
    return isinstance(exc, ResponseError) and "WRONGTYPE" in str(exc)


def denies_scripting(exc: BaseException) -> bool:
    """NOPERM for EVALSHA or EVAL: a least-privilege ACL that grants no Lua (the documented rule)."""
    return isinstance(exc, NoPermissionError) and "eval" in str(exc).lower()


def first_error(replies: Sequence[Any]) -> Exception | None:
    """The error to raise from a MULTI/EXEC's replies: a refused command's own error rather than the
    EXECABORT it caused, else an error inside EXEC's reply."""
    errors = [r for r in replies if isinstance(r, Exception) and not isinstance(r, ExecAbortError)]
    if errors:
        return errors[0]
    for reply in replies:
        if isinstance(reply, ExecAbortError):
            return reply
        if isinstance(reply, list):
            inner = next((r for r in reply if isinstance(r, Exception)), None)
            if inner is not None:
                return inner
    return None


def _reason(exc: BaseException) -> str:
    """What went wrong, without the command arguments (XCom payloads) that redis-py may quote.

    The redis-py exception is cleaned in place too: it stays chained as __cause__ for tracebacks.
    """
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (_PIPELINE_ANNOTATION.sub("", exc.args[0]), *exc.args[1:])
    return str(exc)


def _sentinel_reason(exc: BaseException) -> str:
    """MasterNotFoundError without the reprs of every Sentinel client: what each Sentinel answered."""
    head, _, rest = str(exc).partition(" : ")
    answers = re.findall(r" - ([A-Za-z_:]+)", rest)
    return f"{head} (the Sentinels answered: {', '.join(answers)})" if answers else head


def translate(exc: BaseException, endpoint: str, action: str, subject: object) -> NoReturn:
    """Raise the RedisXComError for exc (one of FAILURES) while trying to ``action subject``:
    what failed, where, and what to check. The message is built only here, on failure."""
    action = f"{action} {subject!r}" if subject != "" else action
    where = f"Redis at {endpoint}"
    reason = _reason(exc).rstrip(".")  # redis-py's messages may end with a full stop; ours follows
    if isinstance(exc, AuthenticationError):
        raise RedisUnavailableError(
            f"{where} refused the credentials while trying to {action}: {reason}. "
            "Check the user and password in [redis_xcom] url (or its redis_conn_id connection)."
        ) from None
    if isinstance(exc, ReadOnlyError):
        raise RedisUnavailableError(
            f"{where} is a read-only replica while trying to {action}: {reason}. "
            "A failover may be in progress, or [redis_xcom] url points at a replica; "
            "the task can be retried once a primary answers."
        ) from exc
    if isinstance(exc, MasterNotFoundError):
        raise RedisUnavailableError(
            f"{where}: no Sentinel named a master while trying to {action}: {_sentinel_reason(exc)}. "
            "Check that the Sentinels and the master are running, the service name in [redis_xcom] "
            "url, and sentinel_username / sentinel_password (the Sentinels' own credentials); the "
            "task can be retried once a master is elected."
        ) from exc
    if isinstance(exc, RedisConnectionError) and "SSL" in str(exc):
        raise RedisUnavailableError(
            f"{where} failed the TLS handshake while trying to {action}: {reason}. "
            "Check [redis_xcom] ssl_ca_certs (the CA that signed the server's certificate), "
            "ssl_check_hostname (the host must be in the certificate's names), and ssl_certfile / "
            "ssl_keyfile if the server requires a client certificate."
        ) from exc
    if isinstance(exc, TRANSIENT) and not isinstance(exc, RETRIED):
        raise RedisUnavailableError(
            f"{where} kept redirecting or refusing while trying to {action}: {reason}. "
            "A resharding or failover did not settle within [redis_xcom] retry_attempts and "
            "retry_backoff_cap; check CLUSTER INFO / redis-cli --cluster check, and retry the task."
        ) from exc
    if isinstance(exc, RETRIED):
        raise RedisUnavailableError(
            f"{where} is unreachable while trying to {action}: {reason}. "
            "Check that it is running and that [redis_xcom] url points at it; "
            "the task can be retried once it is back."
        ) from exc
    raise RedisXComError(f"{where} failed to {action}: {reason}") from exc


class Translated:
    """A context manager translating the errors of one call (``translate``); the hot paths
    (put and get of small values) use try/except directly, which costs nothing when nothing fails."""

    __slots__ = ("action", "endpoint", "subject")

    def __init__(self, endpoint: str, action: str, subject: object = "") -> None:
        self.endpoint = endpoint
        self.action = action
        self.subject = subject

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, FAILURES):
            translate(exc, self.endpoint, self.action, self.subject)


def refused_as_none(endpoint: str, action: str, call: Any) -> Any:
    """call()'s reply, or None when the server refuses the command (NOPERM, unknown command);
    an unreachable server still raises its RedisXComError."""
    try:
        with Translated(endpoint, action):
            return call()
    except RedisXComError as exc:
        if is_refusal(exc.__cause__):
            return None
        raise
