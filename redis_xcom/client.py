"""The one place that builds Redis clients: URL, timeouts, retry with backoff, reply parsing."""

from __future__ import annotations

import random
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

import hiredis
import redis
import redis.backoff
from redis.backoff import AbstractBackoff
from redis.connection import Encoder, PythonRespSerializer
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, ReadOnlyError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

from redis_xcom.config import Settings

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


# A byte buffer as the store takes it: len() is its size in bytes.
Buffer = bytes | bytearray | memoryview


class BufferList(tuple[Buffer, ...]):
    """One command argument made of several byte buffers, sent as a single bulk string.

    A large XCom is a 30-byte header plus the payload's own buffers; joining them would copy the
    whole payload once more just to send it. The repr never shows the bytes (payloads stay out of
    logs and error messages).
    """

    __slots__ = ()

    @property
    def nbytes(self) -> int:
        return sum(len(part) for part in self)

    def __repr__(self) -> str:
        return f"<{len(self)} buffers, {self.nbytes} bytes>"


# Arguments that redis-py's Python packer sends without copying them (whatever their size).
_SENT_AS_THEY_ARE = frozenset({BufferList, memoryview, bytearray})


class _CommandPacker(PythonRespSerializer):
    """Packs commands by the size of their arguments.

    Small commands (nearly all) go through hiredis's C packer, about 4 µs faster per command than
    redis-py's Python one. A command with a large argument goes through redis-py's Python packer,
    which sends the argument as it is where hiredis would copy it; BufferList arguments are written
    part by part.
    """

    def pack(self, *args: object) -> list[bytes | memoryview]:
        first = args[0]
        if isinstance(first, str):  # "CONFIG GET"-style names are split, as redis-py does
            args = (*first.encode().split(), *args[1:])
        elif isinstance(first, bytes) and b" " in first:
            args = (*first.split(), *args[1:])
        cutoff = self._buffer_cutoff
        for arg in args:
            kind = type(arg)
            if kind in _SENT_AS_THEY_ARE or (kind is bytes and len(arg) > cutoff):  # type: ignore[arg-type]
                return self._pack_large(args)
        try:
            return [hiredis.pack_command(args)]  # type: ignore[arg-type]
        except TypeError as exc:  # what redis-py raises for an argument it cannot send
            raise DataError(str(exc)) from exc

    def _pack_large(self, args: tuple[object, ...]) -> list[bytes | memoryview]:
        if BufferList not in map(type, args):
            # redis-py 5 and 6.0 refuse a bytearray; a view of it is sent as it is by every version.
            return super().pack(*(memoryview(a) if type(a) is bytearray else a for a in args))
        output: list[bytes | memoryview] = []
        pieces: list[Buffer] = [b"*%d\r\n" % len(args)]
        for arg in args:
            if type(arg) is not BufferList:
                encoded = self.encode(arg)
                pieces += (b"$%d\r\n" % len(encoded), encoded, b"\r\n")
                continue
            pieces.append(b"$%d\r\n" % arg.nbytes)
            for part in arg:
                if len(part) <= self._buffer_cutoff:
                    pieces.append(part)
                    continue
                output.append(b"".join(pieces))  # large parts go to the socket as they are
                output.append(part if isinstance(part, bytes | memoryview) else memoryview(part))
                pieces = []
            pieces.append(b"\r\n")
        output.append(b"".join(pieces))
        return output


# Replies are parsed by hiredis (about 2x faster on large values); commands are packed by size.
_COMMAND_PACKER = _CommandPacker(6000, Encoder("utf-8", "strict", False).encode)
# Larger socket reads: fewer system calls and buffer copies for large values.
SOCKET_READ_SIZE = 256 * 1024


def sends_buffer_lists(client: redis.Redis) -> bool:
    """Whether client packs BufferList arguments: those from build_client do, any other joins them."""
    return client.connection_pool.connection_kwargs.get("command_packer") is _COMMAND_PACKER


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
        command_packer=_COMMAND_PACKER,
    )
