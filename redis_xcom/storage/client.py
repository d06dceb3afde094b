"""The one place that builds Redis clients: URL, timeouts, retry with backoff, reply parsing, packing."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import redis
import redis.backoff
from redis.backoff import AbstractBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from redis_xcom.config import Settings
from redis_xcom.storage.packer import COMMAND_PACKER

# Transient: a reset or timed-out connection, LOADING after a restart (a ConnectionError
# subclass in redis-py), or a replica that became read-only during a failover.
RETRIED_ERRORS: tuple[type[Exception], ...] = (
    RedisConnectionError,
    RedisTimeoutError,
    socket.timeout,
    ReadOnlyError,
)


class _ExponentialWithJitterBackoff(AbstractBackoff):
    """redis-py's ExponentialWithJitterBackoff, for redis-py before 5.3, which lacks it (kombu caps
    redis-py at 5.2.1 in the celery extra of Airflow 3.0 to 3.2)."""

    def __init__(self, cap: float, base: float) -> None:
        self._cap = cap
        self._base = base

    def compute(self, failures: int) -> float:
        return min(self._cap, random.random() * self._base * 2**failures)


# redis-py's own where it has one (5.3+), so its equality and hashing come along.
_JITTER_BACKOFF: Callable[..., AbstractBackoff] = getattr(
    redis.backoff, "ExponentialWithJitterBackoff", _ExponentialWithJitterBackoff
)


def endpoint(url: str) -> str:
    """host:port (or the socket path) of a Redis URL, without user or password."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return parts.path or "?"
    return f"{parts.hostname or 'localhost'}:{parts.port or 6379}"


# Larger socket reads: fewer system calls and buffer copies for large values.
SOCKET_READ_SIZE = 256 * 1024


def build_client(settings: Settings) -> redis.Redis:
    """A client for settings.url; redis-py's pool reconnects by itself and resets after fork."""
    retry = Retry(
        _JITTER_BACKOFF(cap=settings.retry_backoff_cap, base=settings.retry_backoff_base),
        retries=settings.retry_attempts,
        supported_errors=RETRIED_ERRORS,
    )
    return redis.Redis.from_url(
        settings.url,
        socket_connect_timeout=settings.socket_connect_timeout,
        socket_timeout=settings.socket_timeout,
        retry=retry,
        # redis-py before 6 retries only the errors named here too (Retry's list alone is ignored).
        retry_on_error=list(RETRIED_ERRORS),
        health_check_interval=30,
        client_name="redis-xcom",
        socket_read_size=SOCKET_READ_SIZE,
        command_packer=COMMAND_PACKER,
    )
