"""Redis operations of the backend, each translating redis-py failures into RedisXComError.

Storage layout of one value under ``<key>``:

* up to the chunk size (``[redis_xcom] chunk_bytes``, lowered to the server's ``proto-max-bulk-len``
  when that is smaller): the bytes themselves, one string ``SET <key> <bytes> EX <ttl>``;
* above it: a list ``<key>#chunks`` holding the bytes in order, one element per chunk, and at
  ``<key>`` a small manifest (``MANIFEST_MAGIC``, format version, chunk count, total length).

Every write is one MULTI/EXEC: it drops whatever ``<key>#chunks`` held before, writes the new value
and gives both keys the same TTL, so a reader never sees half a value and pushing the same XCom again
leaves no orphaned chunks. ``#`` never occurs in a key that keys.build_key makes (ids are
percent-encoded), so a chunk list never collides with an XCom key. Both keys share the run's hash tag.
Reads check the manifest against the chunks (count and total length) before returning any bytes.
"""

from __future__ import annotations

import contextlib
import logging
import re
import struct
from collections.abc import Iterator, Sequence

import redis
from redis.exceptions import AuthenticationError, RedisError, ResponseError

from redis_xcom.client import RETRIED_ERRORS, endpoint
from redis_xcom.errors import CorruptPayloadError, RedisUnavailableError, RedisXComError

log = logging.getLogger(__name__)

SCAN_BATCH = 1000
CHUNK_SUFFIX = "#chunks"
DEFAULT_CHUNK_BYTES = 64 * 1024 * 1024
# Redis refuses a proto-max-bulk-len below 1 MiB, so values up to this size never need the server's limit.
MIN_BULK_LIMIT = 1024 * 1024
# A codec envelope starts with b"RX"; a manifest starts with a NUL byte, so the two cannot be confused.
MANIFEST_MAGIC = b"\x00RXCHNK"
MANIFEST_VERSION = 1
_MANIFEST = struct.Struct("<7sBIQ")  # magic, version, chunk count, total length
# redis-py prefixes errors inside a pipeline with the command and its arguments: payload bytes.
_PIPELINE_ANNOTATION = re.compile(r"^Command # \d+ \(.*\) of pipeline caused error: ", re.DOTALL)


def _reason(exc: Exception) -> str:
    """What went wrong, without the command arguments (XCom payloads) that redis-py may quote.

    The redis-py exception is cleaned in place too: it stays chained as __cause__ for tracebacks.
    """
    if exc.args and isinstance(exc.args[0], str):
        exc.args = (_PIPELINE_ANNOTATION.sub("", exc.args[0]), *exc.args[1:])
    return str(exc)


def chunk_key(key: str) -> str:
    """The list holding the chunks of a value too big for one Redis string."""
    return key + CHUNK_SUFFIX


def is_chunk_key(key: str) -> bool:
    return key.endswith(CHUNK_SUFFIX)


def pack_manifest(chunks: int, total: int) -> bytes:
    return _MANIFEST.pack(MANIFEST_MAGIC, MANIFEST_VERSION, chunks, total)


def is_manifest(data: bytes) -> bool:
    return len(data) == _MANIFEST.size and data.startswith(MANIFEST_MAGIC)


class RedisStore:
    """Byte values under string keys, in the one Redis that settings.url names."""

    def __init__(self, client: redis.Redis, url: str, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> None:
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self.client = client
        self.endpoint = endpoint(url)
        self.chunk_bytes = chunk_bytes
        # proto-max-bulk-len of the server, read once when a value first needs it; 0 = not readable.
        self._server_bulk_limit: int | None = None

    def __repr__(self) -> str:
        return f"RedisStore({self.endpoint}, chunk_bytes={self.chunk_bytes})"

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except AuthenticationError as exc:
            raise RedisUnavailableError(
                f"Redis at {self.endpoint} refused the credentials while trying to {action}: {_reason(exc)}. "
                "Check the user and password in [redis_xcom] url."
            ) from None
        except RETRIED_ERRORS as exc:
            raise RedisUnavailableError(
                f"Redis at {self.endpoint} is unreachable while trying to {action}: {_reason(exc)}. "
                "Check that it is running and that [redis_xcom] url points at it; "
                "the task can be retried once it is back."
            ) from exc
        except RedisError as exc:
            raise RedisXComError(f"Redis at {self.endpoint} failed to {action}: {_reason(exc)}") from exc

    # -- writing ------------------------------------------------------------------------------

    def chunk_size(self, size: int, action: str = "write") -> int:
        """Largest piece a value of `size` bytes is written in: chunk_bytes, or less if the server says so."""
        limit = self.chunk_bytes
        if size > min(limit, MIN_BULK_LIMIT):
            server = self._bulk_limit(action)
            if server:
                limit = min(limit, server)
        return limit

    def _bulk_limit(self, action: str) -> int:
        if self._server_bulk_limit is None:
            try:
                with self._errors(f"{action} (reading proto-max-bulk-len first)"):
                    reply = self.client.config_get("proto-max-bulk-len")
                self._server_bulk_limit = int(reply.get("proto-max-bulk-len") or 0)
            except RedisXComError as exc:
                if not isinstance(exc.__cause__, ResponseError):
                    raise
                # CONFIG is disabled (many managed services): trust [redis_xcom] chunk_bytes.
                self._server_bulk_limit = 0
        return self._server_bulk_limit

    def put(self, key: str, data: bytes, ttl: int) -> None:
        """Write a value and its TTL in one MULTI/EXEC: all of it lands, or none of it."""
        size = len(data)
        action = f"write {key!r} ({size} bytes)"
        piece = self.chunk_size(size, action)
        chunks = chunk_key(key)
        with self._errors(action):
            pipe = self.client.pipeline(transaction=True)
            if size <= piece:
                pipe.set(key, data, ex=ttl)
                pipe.unlink(chunks)
            else:
                view = memoryview(data)
                pipe.unlink(chunks)
                count = 0
                for offset in range(0, size, piece):
                    pipe.rpush(chunks, view[offset : offset + piece])
                    count += 1
                pipe.expire(chunks, ttl)
                pipe.set(key, pack_manifest(count, size), ex=ttl)
            pipe.execute()

    # -- reading ------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The bytes stored under key, or None when they are gone (expired, evicted, deleted)."""
        with self._errors(f"read {key!r}"):
            data: bytes | None = self.client.get(key)  # type: ignore[assignment]
            if data is not None and is_manifest(data):
                return self._get_chunked(key)
            return data

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values of many keys in one round trip (a pipeline of GETs); chunked ones take one more each."""
        if not keys:
            return []
        with self._errors(f"read {len(keys)} keys"):
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.get(key)
            found: list[bytes | None] = pipe.execute()
            return [
                self._get_chunked(key) if data is not None and is_manifest(data) else data
                for key, data in zip(keys, found, strict=True)
            ]

    def _get_chunked(self, key: str) -> bytes | None:
        """Manifest and chunks read together in one MULTI/EXEC, so a concurrent rewrite cannot mix them."""
        pipe = self.client.pipeline(transaction=True)
        pipe.get(key)
        pipe.lrange(chunk_key(key), 0, -1)
        manifest, parts = pipe.execute()
        if manifest is None or not is_manifest(manifest):
            return manifest
        if not parts:
            return None  # the chunks were evicted or deleted: the value is gone
        _magic, version, count, total = _MANIFEST.unpack(manifest)
        if version != MANIFEST_VERSION:
            raise CorruptPayloadError(
                f"Redis key {key!r} at {self.endpoint} holds a chunk manifest of unknown version {version}"
            )
        got = sum(len(part) for part in parts)
        if len(parts) != count or got != total:
            raise CorruptPayloadError(
                f"Redis key {key!r} at {self.endpoint} is truncated or altered: its manifest announces "
                f"{count} chunks and {total} bytes, {chunk_key(key)!r} holds {len(parts)} chunks and "
                f"{got} bytes"
            )
        return b"".join(parts)

    # -- deleting and listing -----------------------------------------------------------------

    def unlink(self, keys: Sequence[str]) -> int:
        """Delete values (and their chunks) without blocking Redis; returns how many values existed.

        Chunk lists passed directly (found by a SCAN) are deleted too but not counted.
        """
        if not keys:
            return 0
        values = [k for k in keys if not is_chunk_key(k)]
        chunk_lists = sorted({chunk_key(k) for k in values} | {k for k in keys if is_chunk_key(k)})
        with self._errors(f"delete {len(keys)} keys"):
            pipe = self.client.pipeline(transaction=True)
            if values:
                pipe.unlink(*values)
            pipe.unlink(*chunk_lists)
            replies = pipe.execute()
            return int(replies[0]) if values else 0

    def scan(self, pattern: str) -> Iterator[list[str]]:
        """Batches of keys matching a glob pattern, walking the keyspace with SCAN."""
        with self._errors(f"scan for {pattern!r}"):
            cursor = 0
            while True:
                cursor, found = self.client.scan(cursor=cursor, match=pattern, count=SCAN_BATCH)
                if found:
                    yield [k.decode() if isinstance(k, bytes) else k for k in found]
                if cursor == 0:
                    return

    def ttl(self, key: str) -> int:
        with self._errors(f"read the TTL of {key!r}"):
            return int(self.client.ttl(key))

    def eviction_policy(self) -> str | None:
        """maxmemory-policy, or None where CONFIG is disabled (many managed Redis services)."""
        try:
            with self._errors("read maxmemory-policy"):
                reply = self.client.config_get("maxmemory-policy")
        except RedisXComError as exc:
            if isinstance(exc.__cause__, ResponseError):
                return None
            raise
        policy = reply.get("maxmemory-policy")
        return None if policy is None else str(policy)
