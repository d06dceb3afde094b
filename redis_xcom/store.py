"""Redis operations of the backend, each translating redis-py failures into RedisXComError."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import redis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from redis_xcom.client import RETRIED_ERRORS, endpoint
from redis_xcom.errors import RedisUnavailableError, RedisXComError

log = logging.getLogger(__name__)

SCAN_BATCH = 1000


class RedisStore:
    """Byte values under string keys, in the one Redis that settings.url names."""

    def __init__(self, client: redis.Redis, url: str) -> None:
        self.client = client
        self.endpoint = endpoint(url)

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except AuthenticationError as exc:
            raise RedisUnavailableError(
                f"Redis at {self.endpoint} refused the credentials while trying to {action}: {exc}. "
                "Check the user and password in [redis_xcom] url."
            ) from None
        except RETRIED_ERRORS as exc:
            raise RedisUnavailableError(
                f"Redis at {self.endpoint} is unreachable while trying to {action}: {exc}. "
                "Check that it is running and that [redis_xcom] url points at it; "
                "the task can be retried once it is back."
            ) from exc
        except RedisError as exc:
            raise RedisXComError(f"Redis at {self.endpoint} failed to {action}: {exc}") from exc

    def put(self, key: str, data: bytes, ttl: int) -> None:
        """One SET with EX: the value and its expiry land together or not at all."""
        with self._errors(f"write {key!r}"):
            self.client.set(key, data, ex=ttl)

    def get(self, key: str) -> bytes | None:
        with self._errors(f"read {key!r}"):
            return self.client.get(key)  # type: ignore[return-value]

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values of many keys in one round trip (a non-transactional pipeline of GETs)."""
        if not keys:
            return []
        with self._errors(f"read {len(keys)} keys"):
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            return pipe.execute()  # type: ignore[no-any-return]

    def unlink(self, keys: Sequence[str]) -> int:
        """Delete keys without blocking Redis on big values; returns how many existed."""
        if not keys:
            return 0
        with self._errors(f"delete {len(keys)} keys"):
            return int(self.client.unlink(*keys))  # type: ignore[arg-type]

    def scan(self, pattern: str) -> Iterator[list[str]]:
        """Batches of keys matching a glob pattern, walking the keyspace with SCAN."""
        with self._errors(f"scan for {pattern!r}"):
            cursor = 0
            while True:
                cursor, found = self.client.scan(cursor=cursor, match=pattern, count=SCAN_BATCH)  # type: ignore[misc]
                if found:
                    yield [k.decode() if isinstance(k, bytes) else k for k in found]
                if cursor == 0:
                    return

    def ttl(self, key: str) -> int:
        with self._errors(f"read the TTL of {key!r}"):
            return int(self.client.ttl(key))  # type: ignore[arg-type]

    def eviction_policy(self) -> str | None:
        """maxmemory-policy, or None where CONFIG is disabled (many managed Redis services)."""
        try:
            with self._errors("read maxmemory-policy"):
                reply = self.client.config_get("maxmemory-policy")
        except RedisXComError as exc:
            if isinstance(exc.__cause__, ResponseError):
                return None
            raise
        return reply.get("maxmemory-policy")  # type: ignore[union-attr]
