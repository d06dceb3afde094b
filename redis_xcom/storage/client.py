"""The one place that builds Redis clients: URL, timeouts, retry with backoff, reply parsing, packing."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import redis
from redis.backoff import ExponentialWithJitterBackoff
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
        ExponentialWithJitterBackoff(cap=settings.retry_backoff_cap, base=settings.retry_backoff_base),
        retries=settings.retry_attempts,
        supported_errors=RETRIED_ERRORS,
    )
    return redis.Redis.from_url(
        settings.url,
        socket_connect_timeout=settings.socket_connect_timeout,
        socket_timeout=settings.socket_timeout,
        retry=retry,
        health_check_interval=30,
        client_name="redis-xcom",
        socket_read_size=SOCKET_READ_SIZE,
        command_packer=COMMAND_PACKER,
    )
