"""What ops and the UI ask of a server, beside values: what keys cost and how long they live,
their age, the nodes holding keys, the key count, the eviction policy.

Read-only inspection on the same connection as the value store (storage.store), with the same
error translation; a server that refuses an inspection command (an ACL, a managed service) gets
the fallback each method documents, or None.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis_xcom.storage import errors
from redis_xcom.storage.store import RedisStore, manifest_total
from redis_xcom.storage.topology import Connection

_Bytes = bytes  # KeyFacts has a field named bytes


@dataclass(frozen=True)
class KeyFacts:
    """What one key costs and how long it lives (ServerInfo.describe)."""

    key: str
    bytes: int
    ttl: int  # seconds left; -1 no expiry, -2 gone
    chunked: bool
    exists: bool
    measured_by: str  # "MEMORY USAGE", or "value length" where MEMORY is refused
    # The value's first bytes when asked for (describe's head_bytes); empty for a chunked value.
    head: _Bytes = b""


class ServerInfo:
    """Inspection queries on a store's connection (named in errors as the store is)."""

    def __init__(self, store: RedisStore) -> None:
        self.connection: Connection = store.connection
        self.client = store.connection.client
        self.endpoint = store.endpoint

    def __repr__(self) -> str:
        return f"ServerInfo({self.endpoint})"

    def _errors(self, action: str, subject: object = "") -> errors.Translated:
        return errors.Translated(self.endpoint, action, subject)

    def describe(self, keys: Sequence[str], head_bytes: int = 0) -> list[KeyFacts]:
        """Size, TTL and layout of many keys in one round trip (two where MEMORY is refused).

        Size is MEMORY USAGE (what the key costs Redis, SAMPLES 0: every chunk counted); where the
        server refuses MEMORY (an ACL, a managed service) it is the value's length (STRLEN, or the
        length a chunked value's manifest records) and ``KeyFacts.measured_by`` says so. With
        head_bytes, each plain value's first bytes too (GETRANGE), read in the same round trip.
        """
        if not keys:
            return []
        with self._errors(f"describe {len(keys)} keys"):
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.execute_command("MEMORY", "USAGE", key, "SAMPLES", "0")
                pipe.ttl(key)
                pipe.type(key)
                if head_bytes:
                    pipe.getrange(key, 0, head_bytes - 1)
            replies = pipe.execute(raise_on_error=False)
            step = 4 if head_bytes else 3
            sizes, ttls, types = replies[::step], replies[1::step], replies[2::step]
            heads: list[Any] = replies[3::4] if head_bytes else [b""] * len(keys)
            for reply in (*ttls, *types):
                if isinstance(reply, Exception):
                    raise reply
            kinds = [t.decode() if isinstance(t, bytes) else str(t) for t in types]
            measured_by = "MEMORY USAGE"
            if any(isinstance(size, Exception) for size in sizes):
                measured_by = "value length"
                sizes = self._value_lengths(keys, kinds)
            # A chunked value (a list) answers GETRANGE with WRONGTYPE: it has no head to show.
            heads = [h if isinstance(h, bytes) else b"" for h in heads]
            return [
                KeyFacts(key, int(size or 0), int(ttl), kind == "list", kind != "none", measured_by, head)
                for key, size, ttl, kind, head in zip(keys, sizes, ttls, kinds, heads, strict=True)
            ]

    def _value_lengths(self, keys: Sequence[str], kinds: Sequence[str]) -> list[int]:
        """STRLEN of plain values, the recorded length of chunked ones (their manifest)."""
        pipe = self.client.pipeline(transaction=False)
        for key, kind in zip(keys, kinds, strict=True):
            if kind == "list":
                pipe.lindex(key, 0)
            else:
                pipe.strlen(key)
        lengths = []
        for kind, reply in zip(kinds, pipe.execute(raise_on_error=False), strict=True):
            if isinstance(reply, Exception) or reply is None:
                lengths.append(0)
            elif kind == "list":
                lengths.append(manifest_total(reply))
            else:
                lengths.append(int(reply))
        return lengths

    def ages(self, keys: Sequence[str]) -> list[tuple[int | None, int]]:
        """(OBJECT IDLETIME or None where refused, TTL) of many keys in one round trip.

        IDLETIME is None under an LFU maxmemory-policy (the server keeps no access time) or an ACL
        refusing OBJECT; TTL is -2 for a key that is gone.
        """
        if not keys:
            return []
        with self._errors(f"read the age of {len(keys)} keys"):
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.object("idletime", key)
                pipe.ttl(key)
            replies = pipe.execute(raise_on_error=False)
        ages: list[tuple[int | None, int]] = []
        for idle, ttl in zip(replies[::2], replies[1::2], strict=True):
            if isinstance(ttl, Exception):
                raise ttl
            ages.append((None if isinstance(idle, Exception) or idle is None else int(idle), int(ttl)))
        return ages

    def exist(self, keys: Sequence[str]) -> list[bool]:
        """Whether each key exists, in one round trip."""
        if not keys:
            return []
        with self._errors(f"look up {len(keys)} keys"):
            pipe = self.client.pipeline(transaction=False)
            for key in keys:
                pipe.exists(key)
            return [bool(found) for found in pipe.execute()]

    def nodes(self) -> dict[str, Any]:
        """A client per server holding keys: the one server, or every primary of a cluster."""
        return self.connection.nodes()

    def key_count(self) -> int:
        """Keys in the database (every primary's on a cluster): the total of a keyspace walk."""
        with self._errors("count keys (DBSIZE)"):
            return sum(int(node.dbsize()) for node in self.nodes().values())

    def ttl(self, key: str) -> int:
        with self._errors("read the TTL of", key):
            return int(self.connection.retrying(lambda: self.client.ttl(key)))

    def eviction_policy(self) -> str | None:
        """maxmemory-policy: from CONFIG GET, else from INFO memory where CONFIG is denied (an ACL,
        a managed service) or renamed away; None when neither answers."""
        policy = self._denied_as_none(
            "read maxmemory-policy", lambda: self.client.config_get("maxmemory-policy")
        )
        if policy is not None and policy.get("maxmemory-policy") is not None:
            return str(policy["maxmemory-policy"])
        info = self._denied_as_none("read INFO memory", lambda: self.client.info("memory"))
        if info is None or info.get("maxmemory_policy") is None:
            return None
        return str(info["maxmemory_policy"])

    def _denied_as_none(self, action: str, call: Callable[[], Any]) -> Any:
        return errors.refused_as_none(self.endpoint, action, call)
