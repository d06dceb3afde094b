"""What the UI shows of one XCom row: the value its reference points to in Redis, or why not.

Reads through the same settings and client factory as the backend, and decodes with the project's
codec, which rebuilds only the classes [core] allowed_deserialization_classes admits. A value stored
in more than [redis_xcom] ui_max_decode_bytes is not fetched unless the caller forces it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis_xcom import keys
from redis_xcom.codec import Codec
from redis_xcom.config import Settings, get_settings
from redis_xcom.errors import RedisXComError
from redis_xcom.storage import client
from redis_xcom.storage.store import RedisStore
from redis_xcom.ui.preview import Preview, preview

# What a row shows: its value, or why it does not.
VALUE, INLINE, EXPIRED, NOT_DECODED, ERROR = "value", "inline", "expired", "not_decoded", "error"


@dataclass
class XComView:
    """One XCom of a task instance as the page and the JSON API show it."""

    key: str
    state: str
    reference: str | None = None
    redis_key: str | None = None
    size_bytes: int | None = None
    ttl_seconds: int | None = None
    preview: Preview | None = None
    message: str = ""

    @property
    def type(self) -> str | None:
        return self.preview.type if self.preview else None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "state": self.state,
            "reference": self.reference,
            "redis_key": self.redis_key,
            "size_bytes": self.size_bytes,
            "ttl_seconds": self.ttl_seconds,
            "type": self.type,
            "preview": self.preview.as_json() if self.preview else None,
            "message": self.message,
        }


class ValueTooLargeToDecode(RedisXComError):
    """A value above ui_max_decode_bytes was asked for without forcing."""


class ValueGone(RedisXComError):
    """The reference names a key Redis no longer holds."""


class ValueReader:
    """Redis values behind references; one per process (its client is one connection pool)."""

    def __init__(self, settings: Settings, store: RedisStore) -> None:
        self.settings = settings
        self.store = store
        # Decoding needs no compression setting: every value records its own.
        self.codec = Codec()

    def views(self, rows: Sequence[tuple[str, Any]], force: bool = False) -> list[XComView]:
        """Each row's value (or Airflow's own value for a row that is not a reference), previewed.

        One round trip reads every key's size and TTL, one more the values small enough to decode.
        """
        budget = self.settings.ui_preview_bytes
        views = [_view_of(key, db_value, budget) for key, db_value in rows]
        wanted = [view for view in views if view.redis_key is not None]
        try:
            self._fetch(wanted, force)
        except RedisXComError as exc:
            for view in wanted:
                view.state, view.message = ERROR, str(exc)
        return views

    def value(self, db_value: Any, force: bool = False) -> Any:
        """The whole value behind a reference (or the row's own value); raises RedisXComError."""
        view = _view_of("", db_value, self.settings.ui_preview_bytes)
        if view.redis_key is None:
            return db_value
        ((value, failure),) = self._fetch([view], force, keep_values=True)
        if view.state == EXPIRED:
            raise ValueGone(view.message)
        if view.state == NOT_DECODED:
            raise ValueTooLargeToDecode(view.message)
        if failure is not None:
            raise failure
        return value

    def _fetch(
        self, views: list[XComView], force: bool, keep_values: bool = False
    ) -> list[tuple[Any, RedisXComError | None]]:
        """Fill each view's size, TTL and preview (or state); with keep_values, each decoded value
        or the error that stopped it."""
        if not views:
            return []
        facts = self.store.describe([str(view.redis_key) for view in views])
        limit = self.settings.ui_max_decode_bytes
        readable = []
        for view, fact in zip(views, facts, strict=True):
            if not fact.exists:
                view.state, view.message = EXPIRED, self._gone()
                continue
            view.size_bytes, view.ttl_seconds = fact.bytes, fact.ttl
            if fact.bytes > limit and not force:
                view.state, view.message = (
                    NOT_DECODED,
                    (
                        f"{fact.bytes} bytes in Redis, above [redis_xcom] ui_max_decode_bytes = {limit}: not "
                        "decoded, so that the API server's memory is spared. Ask for it with ?decode=force."
                    ),
                )
                continue
            readable.append(view)
        decoded: dict[int, tuple[Any, RedisXComError | None]] = {}
        for view, data in self._read(readable, limit):
            if data is None:  # expired between the two round trips
                view.state, view.message = EXPIRED, self._gone()
                view.size_bytes = view.ttl_seconds = None
                continue
            try:
                value = self.codec.decode(data)
            except RedisXComError as exc:
                failure = type(exc)(f"{_describe(str(view.redis_key))} could not be decoded: {exc}")
                view.state, view.message = ERROR, str(failure)
                decoded[id(view)] = (None, failure)
                continue
            if keep_values:
                decoded[id(view)] = (value, None)
            else:
                view.preview = preview(value, self.settings.ui_preview_bytes)
        return [decoded.get(id(view), (None, None)) for view in views]

    def _read(self, views: list[XComView], limit: int) -> Iterator[tuple[XComView, bytes | None]]:
        """Raw values in batches of at most about limit bytes (one round trip each): a page of many
        large XComs never holds more than one batch of raw bytes at once."""
        batch: list[XComView] = []
        total = 0
        for view in [*views, None]:
            size = 0 if view is None else view.size_bytes or 0
            if batch and (view is None or total + size > limit):
                yield from zip(batch, self.store.get_many([str(v.redis_key) for v in batch]), strict=True)
                batch, total = [], 0
            if view is not None:
                batch.append(view)
                total += size

    def _gone(self) -> str:
        return (
            f"The value is gone from Redis at {self.store.endpoint}: it expired ([redis_xcom] ttl = "
            f"{self.settings.ttl}s), was evicted or was deleted. Clear and re-run the task that "
            "produced it to recreate it."
        )


def _view_of(key: str, db_value: Any, budget: int) -> XComView:
    """A row's view before Redis is asked: a reference to read, or Airflow's own value shown as is."""
    redis_key = keys.key_of_reference(db_value)
    if redis_key is None:
        return XComView(
            key, INLINE, preview=preview(db_value, budget), message="stored in Airflow's database"
        )
    return XComView(key, VALUE, reference=db_value, redis_key=redis_key)


def _describe(redis_key: str) -> str:
    coords = keys.parse_key(redis_key)
    return coords.describe() if coords else f"Redis key {redis_key!r}"


_lock = threading.Lock()
_readers: dict[int, ValueReader] = {}


def reader() -> ValueReader:
    """This process's reader, built on first use and again after a fork (like the backend's client)."""
    pid = os.getpid()
    with _lock:
        if pid not in _readers:
            settings = get_settings()
            store = RedisStore(client.build_client(settings), chunk_bytes=settings.chunk_bytes)
            _readers.clear()
            _readers[pid] = ValueReader(settings, store)
        return _readers[pid]


def reset_reader() -> None:
    """Forget the reader (tests, or after a configuration change)."""
    with _lock:
        _readers.clear()
