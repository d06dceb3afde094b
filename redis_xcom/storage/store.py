"""Redis operations of the backend, each translating redis-py failures into RedisXComError.

Storage layout of one value under ``<key>``:

* up to the chunk size (``[redis_xcom] chunk_bytes``, lowered to the server's ``proto-max-bulk-len``
  when that is smaller): a string, written with one ``SET <key> <bytes> EX <ttl>``;
* above it: a list at the same ``<key>``: a small manifest (``MANIFEST_MAGIC``, format version,
  chunk count, total length) followed by the chunks in order, written in one MULTI/EXEC
  (UNLINK, RPUSH per chunk, EXPIRE) so a reader never sees half a value.

One key per XCom whatever its size: a plain SET replaces a chunked value (SET overwrites any type),
so pushing the same XCom again never orphans chunks, eviction takes a whole value or nothing, and
the key has the run's hash tag like any other. A GET on a list answers WRONGTYPE; the reader then
reads the whole list with one LRANGE and checks it against its manifest before returning any bytes.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import redis
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

from redis_xcom.errors import CorruptPayloadError, ReplicationError
from redis_xcom.storage import errors
from redis_xcom.storage.client import endpoint
from redis_xcom.storage.packer import Buffer, BufferList, sends_buffer_lists
from redis_xcom.storage.topology import SCAN_BATCH, Client, Connection, connection_of

log = logging.getLogger(__name__)

DEFAULT_CHUNK_BYTES = 256 * 1024 * 1024
# Values up to this size are written by the SET-and-index script; Lua copies its arguments, so
# larger ones take a MULTI with a plain SET (the extra commands cost nothing at that size).
SCRIPT_VALUE_MAX = 8 * 1024
# Redis refuses a proto-max-bulk-len below 1 MiB, so values up to this size never need the server's limit.
MIN_BULK_LIMIT = 1024 * 1024
# The first element of a chunked value; a list that does not start with it was not written by us.
MANIFEST_MAGIC = b"\x00RXCHNK"
MANIFEST_VERSION = 1
_MANIFEST = struct.Struct("<7sBIQ")  # magic, version, chunk count, total length


def pack_manifest(chunks: int, total: int) -> bytes:
    return _MANIFEST.pack(MANIFEST_MAGIC, MANIFEST_VERSION, chunks, total)


def is_manifest(data: bytes) -> bool:
    return len(data) == _MANIFEST.size and data.startswith(MANIFEST_MAGIC)


def manifest_total(data: object) -> int:
    """The value length a chunked value's manifest records (0 for anything that is no manifest)."""
    return _MANIFEST.unpack(data)[3] if isinstance(data, bytes) and is_manifest(data) else 0


class _Script:
    """A Lua script and its SHA1, for EVALSHA."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.sha = hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


# Add a key to its run's index. The index outlives every value it names: its TTL is only ever
# raised (a TTL of -1, no expiry yet, is below any ttl).
_INDEX_UPDATE = """
redis.call('SADD', {index}, {member})
if redis.call('TTL', {index}) < tonumber({ttl}) then redis.call('EXPIRE', {index}, {ttl}) end
"""
# KEYS[1] index, ARGV[1] value key, ARGV[2] ttl.
_INDEX = _Script(_INDEX_UPDATE.format(index="KEYS[1]", member="ARGV[1]", ttl="ARGV[2]"))
# KEYS[1] value key, KEYS[2] index, ARGV[1] value, ARGV[2] ttl: the value's one SET with EX, then its index.
_SET_AND_INDEX = _Script(
    "redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])"
    + _INDEX_UPDATE.format(index="KEYS[2]", member="KEYS[1]", ttl="ARGV[2]")
)


def _slices(parts: Sequence[Buffer], size: int) -> Iterator[BufferList]:
    """Consecutive `size`-byte pieces of the concatenation of parts (the last may be shorter),
    as views: nothing is copied."""
    current: list[Buffer] = []
    room = size
    for part in parts:
        view = memoryview(part)
        while view:
            taken = view[:room]
            current.append(taken)
            room -= len(taken)
            view = view[len(taken) :]
            if room == 0:
                yield BufferList(current)
                current, room = [], size
    if current:
        yield BufferList(current)


Command = tuple[Any, ...]


def _index_update(index: str, key: str, ttl: int, scripting: bool = True) -> list[Command]:
    """The index update as commands of a MULTI: EVAL, not EVALSHA (a NOSCRIPT inside MULTI would
    fail that one command only); where the ACL grants no scripting, SADD and two EXPIREs doing the
    same (NX sets a new index's TTL, GT only ever raises it; Redis 7.0+, Valkey)."""
    if scripting:
        return [("EVAL", _INDEX.text, 1, index, key, ttl)]
    return [("SADD", index, key), ("EXPIRE", index, ttl, "NX"), ("EXPIRE", index, ttl, "GT")]


def _pipelined(
    conn: redis.Redis, commands: Sequence[Command], atomic: bool, wait_replicas: int = 0, wait_ms: int = 0
) -> list[Any]:
    """Every reply of commands sent in one round trip on one connection: wrapped in MULTI/EXEC when
    atomic, followed by WAIT when wait_replicas (WAIT counts the replicas that have every write made
    on that connection so far). A non-transactional pipeline with MULTI/EXEC of our own, because
    redis-py's transactional one cannot be followed by WAIT."""
    pipe = conn.pipeline(transaction=False)
    if atomic:
        pipe.execute_command("MULTI")
    for command in commands:
        pipe.execute_command(*command)
    if atomic:
        pipe.execute_command("EXEC")
    if wait_replicas:
        pipe.execute_command("WAIT", wait_replicas, wait_ms)
    return list(pipe.execute(raise_on_error=False))


class RedisStore:
    """Byte values under string keys, in the Redis (node, cluster or Sentinel's master) of client.

    ``where`` names it in errors: None describes the client; a URL is reduced to its host(s),
    never keeping credentials.

    With ``wait_replicas`` > 0 every write is followed, on its own connection, by ``WAIT
    wait_replicas wait_timeout_ms``, and fails with ReplicationError when fewer replicas confirm it.
    """

    def __init__(
        self,
        client: Client | Connection,
        where: str | None = None,
        chunk_bytes: int = DEFAULT_CHUNK_BYTES,
        wait_replicas: int = 0,
        wait_timeout_ms: int = 1000,
        scripting: bool = True,
    ) -> None:
        if chunk_bytes <= 0:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        named = None if where is None else endpoint(where) if "://" in where else where
        self.connection = connection_of(client, where=named)
        self.client = self.connection.client
        self.endpoint = self.connection.where
        # The connection's GET, looked up once: every pull goes through it.
        self._get = self.connection.get
        self.chunk_bytes = chunk_bytes
        # Values up to this size are written by the SET-and-index script (never chunked: Redis
        # accepts any bulk string up to 1 MiB whatever its proto-max-bulk-len).
        self._script_max = min(SCRIPT_VALUE_MAX, chunk_bytes)
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        # The small-value write can go straight to the client: one node, and no WAIT to follow it.
        self._direct_script = self.connection.one_node and not wait_replicas
        # Lua (EVALSHA/EVAL) unless configured off or until the server's ACL refuses it; then plain
        # commands in a MULTI.
        self.scripting = scripting
        # A client of build_client sends a value's buffers as they are; any other gets them joined.
        self._gathers = sends_buffer_lists(self.client)
        # proto-max-bulk-len of the server, read once when a value first needs it; 0 = not readable.
        self._server_bulk_limit: int | None = None

    def __repr__(self) -> str:
        return f"RedisStore({self.endpoint}, chunk_bytes={self.chunk_bytes})"

    def translated(self, action: str, subject: object = "") -> errors.Translated:
        """Translates redis-py errors raised inside ``with`` into RedisXComError; the message is
        built only on failure (``action`` then ``repr(subject)``), so the hot path formats nothing."""
        return errors.Translated(self.endpoint, action, subject)

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
            reply = errors.refused_as_none(
                self.endpoint,
                f"{action} (reading proto-max-bulk-len first)",
                lambda: self.client.config_get("proto-max-bulk-len"),
            )
            # CONFIG denied or renamed away (managed services, ACLs): trust [redis_xcom] chunk_bytes.
            self._server_bulk_limit = int((reply or {}).get("proto-max-bulk-len") or 0)
        return self._server_bulk_limit

    def put(self, key: str, data: Buffer | Sequence[Buffer], ttl: int, index: str | None = None) -> None:
        """Write a value with its TTL and, given an index (a set), add the key to it, atomically.

        ``data`` is one buffer or several whose concatenation is the value (sent without joining
        them). Small values: one ``SET key value EX ttl``, or with an index one EVALSHA of a script
        doing that SET and the index update (one round trip, about the cost of a bare SET).
        Larger ones: SET and the index update in one MULTI/EXEC; chunked values likewise. All in
        the key's slot (the index shares the run's hash tag), so on a cluster too.
        """
        if type(data) is list and len(data) == 1 and isinstance(data[0], bytes | bytearray | memoryview):
            data = data[0]  # the codec's one buffer of a small value: no part list to walk
        if isinstance(data, bytes | bytearray | memoryview):
            parts: list[Buffer] = [data]
            size = len(data)
        else:
            parts = list(data) if self._gathers or len(data) == 1 else [b"".join(data)]
            size = sum(len(part) for part in parts)
        if index is not None and size <= self._script_max and self.scripting:
            # Nearly every XCom: one EVALSHA, with no pipeline, context manager or chunk planning.
            small = parts[0] if len(parts) == 1 else b"".join(parts)
            try:
                self._run_script(_SET_AND_INDEX, key, index, small, ttl)
                return
            except errors.FAILURES as exc:
                if not self._scripting_refused(exc):
                    errors.translate(exc, self.endpoint, "write", key)
        with self.translated("write", key):
            try:
                self._put_plain(key, parts, size, ttl, index)
            except NoPermissionError as exc:
                # EXECABORT: nothing was written; again without the EVAL the ACL refused.
                if not self._scripting_refused(exc):
                    raise
                self._put_plain(key, parts, size, ttl, index)

    def _scripting_refused(self, exc: BaseException) -> bool:
        """Whether exc is the ACL refusing Lua; if so, this store writes without it from now on."""
        if not errors.denies_scripting(exc):
            return False
        if self.scripting:
            self.scripting = False
            log.info(
                "Redis at %s refuses EVALSHA/EVAL to this user (%s): writing values and their run "
                "index with plain commands in MULTI/EXEC instead (one round trip too).",
                self.endpoint,
                exc,
            )
        return True

    def _put_plain(self, key: str, parts: list[Buffer], size: int, ttl: int, index: str | None) -> None:
        """put's path for large values (and for every value where the ACL grants no scripting)."""
        value: object = parts[0] if len(parts) == 1 else BufferList(parts)
        piece = self.chunk_size(size)
        if size <= piece:
            if index is None:
                self.write_commands(key, [("SET", key, value, "EX", ttl)], atomic=False)
            else:
                # Lua copies its arguments: a large value goes through a plain SET in a MULTI.
                commands = [("SET", key, value, "EX", ttl), *_index_update(index, key, ttl, self.scripting)]
                self.write_commands(key, commands)
            return
        commands = [
            ("UNLINK", key),
            ("RPUSH", key, pack_manifest(-(-size // piece), size)),
        ]
        for chunk in _slices(parts, piece):
            commands.append(("RPUSH", key, chunk[0] if len(chunk) == 1 else chunk))
        commands.append(("EXPIRE", key, ttl))
        if index is not None:
            commands.extend(_index_update(index, key, ttl, self.scripting))
        self.write_commands(key, commands)

    def _run_script(self, script: _Script, key: str, index: str, value: object, ttl: int) -> None:
        try:
            self._script_command("EVALSHA", script.sha, key, index, value, ttl)
        except NoScriptError:
            # A restarted or failed-over server forgot the script: EVAL sends it and caches it again.
            self._script_command("EVAL", script.text, key, index, value, ttl)

    def _script_command(self, verb: str, script: str, key: str, index: str, value: object, ttl: int) -> None:
        if self._direct_script:  # one node, no WAIT: the client's own command path, nothing around it
            self.client.execute_command(verb, script, 2, key, index, value, ttl)
        else:
            self.write_commands(key, [(verb, script, 2, key, index, value, ttl)], atomic=False)

    def write_commands(self, key: str, commands: list[Command], atomic: bool = True) -> None:
        """commands (all in key's slot) in one round trip, in a MULTI/EXEC when atomic, then WAIT
        on the same connection when wait_replicas asks for it."""
        wait = self.wait_replicas
        if not wait and not atomic:
            self.connection.execute(*commands[0])
            return
        replies = self.connection.on_owner(
            key, lambda conn: _pipelined(conn, commands, atomic, wait, self.wait_timeout_ms)
        )
        error = errors.first_error(replies)
        if error is not None:
            raise error
        if wait:
            self._check_replicas(key, replies[-1])

    def _check_replicas(self, key: str, acknowledged: object) -> None:
        if isinstance(acknowledged, int) and acknowledged >= self.wait_replicas:
            return
        node = self.connection.owner_name(key)
        raise ReplicationError(
            f"the write of {key!r} to Redis at {node} was confirmed by {acknowledged} replica(s) within "
            f"{self.wait_timeout_ms} ms, fewer than [redis_xcom] wait_replicas = {self.wait_replicas}: "
            "a failover now could lose it. Check the replicas (INFO replication); the task can be "
            "retried, or lower wait_replicas / raise wait_timeout_ms."
        )

    # -- reading ------------------------------------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The bytes stored under key, or None when they are gone (expired, evicted, deleted)."""
        try:
            try:
                data: bytes | None = self._get(key)
            except ResponseError as exc:
                if not errors.is_wrong_type(exc):
                    raise
                return self._get_chunked(key)
            return data
        except errors.FAILURES as exc:
            errors.translate(exc, self.endpoint, "read", key)

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values of many keys in one round trip per node (a pipeline of GETs); chunked ones take
        one more each."""
        if not keys:
            return []
        with self.translated(f"read {len(keys)} keys"):
            found: list[bytes | Exception | None] = self.connection.retrying(
                lambda: self._get_pipelined(keys)
            )
            values: list[bytes | None] = []
            for key, data in zip(keys, found, strict=True):
                if isinstance(data, Exception):
                    if not errors.is_wrong_type(data):
                        raise data
                    data = self._get_chunked(key)
                values.append(data)
            return values

    def _get_pipelined(self, keys: Sequence[str]) -> list[Any]:
        # On a cluster redis-py groups the GETs per node: one round trip per node, never per key.
        pipe = self.client.pipeline(transaction=False)
        for key in keys:
            pipe.get(key)
        found: list[Any] = pipe.execute(raise_on_error=False)
        # A resharding or failover answered for some keys: read them all again.
        self.connection.raise_redirected(found)
        return found

    def _get_chunked(self, key: str) -> bytes | None:
        """A chunked value, read whole and checked against its manifest.

        GET and LRANGE in one MULTI/EXEC: exactly one succeeds, so a value rewritten since the first
        GET (plain or chunked) is read consistently either way.
        """
        replies = self.connection.on_owner(
            key, lambda conn: _pipelined(conn, [("GET", key), ("LRANGE", key, 0, -1)], atomic=True)
        )
        executed = replies[-1]
        if isinstance(executed, Exception):
            raise errors.first_error(replies) or executed
        plain, parts = executed
        if not isinstance(plain, Exception):
            return plain
        if isinstance(parts, Exception):
            raise parts
        if not parts:
            return None
        manifest, chunks = parts[0], parts[1:]
        where = self.connection.owner_name(key)
        if len(manifest) != _MANIFEST.size or not manifest.startswith(MANIFEST_MAGIC):
            raise CorruptPayloadError(
                f"Redis key {key!r} at {where} holds a list that redis-xcom did not write"
            )
        _magic, version, count, total = _MANIFEST.unpack(manifest)
        if version != MANIFEST_VERSION:
            raise CorruptPayloadError(
                f"Redis key {key!r} at {where} holds a chunk manifest of unknown version {version}"
            )
        got = sum(len(chunk) for chunk in chunks)
        if len(chunks) != count or got != total:
            raise CorruptPayloadError(
                f"Redis key {key!r} at {where} is truncated or altered: its manifest announces "
                f"{count} chunks and {total} bytes, the list holds {len(chunks)} chunks and {got} bytes"
            )
        return b"".join(chunks)

    # -- deleting and listing -----------------------------------------------------------------

    def unlink(self, keys: Sequence[str]) -> int:
        """Delete values, chunked or not, without blocking Redis; returns how many existed.

        On a cluster: one UNLINK per hash slot (never cross-slot), pipelined per node."""
        if not keys:
            return 0
        with self.translated(f"delete {len(keys)} keys"):
            return self.connection.unlink(keys)

    def index_members(self, index: str) -> Iterator[list[str]]:
        """Batches of the keys a run's index names, walking the set with SSCAN."""
        with self.translated("read the index", index):
            cursor = 0
            while True:
                step = functools.partial(self.client.sscan, index, cursor=cursor, count=SCAN_BATCH)
                cursor, found = self.connection.retrying(step)
                if found:
                    yield [k.decode() if isinstance(k, bytes) else k for k in found]
                if cursor == 0:
                    return

    def unlink_indexed(self, index: str, keys: Sequence[str]) -> int:
        """Delete values and drop them from their run's index in one round trip; returns how many existed."""
        if not keys:
            return 0

        def unlink_and_drop() -> int:
            # The index and its keys share the run's hash tag: one slot, one node.
            pipe = self.client.pipeline(transaction=False)
            pipe.execute_command("UNLINK", *keys)  # ClusterPipeline.unlink takes one key only
            pipe.srem(index, *keys)  # an emptied set disappears by itself
            deleted, _ = pipe.execute()
            return int(deleted)

        with self.translated("delete keys of", index):
            return int(self.connection.retrying(unlink_and_drop))

    def unlink_indexed_groups(self, groups: Mapping[str, Sequence[str]]) -> int:
        """unlink_indexed for the keys of several indexes (each group one run, so one hash slot) in
        one round trip; returns how many existed."""
        groups = {index: members for index, members in groups.items() if members}
        if not groups:
            return 0
        with self.translated(f"delete keys of {len(groups)} runs"):

            def unlink_and_drop() -> int:
                # Each run's keys and index share its hash tag: on a cluster, one slot per UNLINK.
                pipe = self.client.pipeline(transaction=False)
                for index, members in groups.items():
                    pipe.execute_command("UNLINK", *members)  # ClusterPipeline.unlink takes one key only
                    pipe.srem(index, *members)
                replies = pipe.execute()
                return sum(int(deleted) for deleted in replies[::2])

            return int(self.connection.retrying(unlink_and_drop))

    def scan(self, pattern: str) -> Iterator[list[str]]:
        """Batches of keys matching a glob pattern, walking the keyspace with SCAN (on a cluster,
        every primary's)."""
        with self.translated("scan for", pattern):
            yield from self.connection.scan(pattern)
