"""What the UI shows of one XCom row: the value its reference points to in Redis, or why not.

Reads through the same settings and client factory as the backend, and decodes with the project's
codec, which rebuilds only the classes [core] allowed_deserialization_classes admits. A value stored
in more than [redis_xcom] ui_max_decode_bytes is not fetched unless the caller forces it.
"""

from __future__ import annotations

import os
import threading
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

    def view(self, key: str, db_value: Any, force: bool = False) -> XComView:
        """The row's value (or Airflow's own value for a row that is not a reference), previewed."""
        redis_key = keys.key_of_reference(db_value)
        budget = self.settings.ui_preview_bytes
        if redis_key is None:
            return XComView(
                key, INLINE, preview=preview(db_value, budget), message="stored in Airflow's database"
            )
        view = XComView(key, VALUE, reference=db_value, redis_key=redis_key)
        try:
            value = self._fetch(redis_key, view, force)
            view.preview = preview(value, budget)
        except ValueGone as exc:
            view.state, view.message = EXPIRED, str(exc)
        except ValueTooLargeToDecode as exc:
            view.state, view.message = NOT_DECODED, str(exc)
        except RedisXComError as exc:
            view.state, view.message = ERROR, str(exc)
        return view

    def value(self, db_value: Any, force: bool = False) -> Any:
        """The whole value behind a reference (or the row's own value); raises RedisXComError."""
        redis_key = keys.key_of_reference(db_value)
        if redis_key is None:
            return db_value
        return self._fetch(redis_key, XComView("", VALUE), force)

    def _fetch(self, redis_key: str, view: XComView, force: bool) -> Any:
        described = self.store.size_and_ttl(redis_key)
        if described is None:
            raise ValueGone(self._gone(redis_key))
        view.size_bytes, view.ttl_seconds = described
        limit = self.settings.ui_max_decode_bytes
        if view.size_bytes > limit and not force:
            raise ValueTooLargeToDecode(
                f"{view.size_bytes} bytes in Redis, above [redis_xcom] ui_max_decode_bytes = {limit}: "
                "not decoded, so that the API server's memory is spared. Ask for it with ?decode=force."
            )
        data = self.store.get(redis_key)
        if data is None:
            raise ValueGone(self._gone(redis_key))
        try:
            return self.codec.decode(data)
        except RedisXComError as exc:
            raise type(exc)(f"{_describe(redis_key)} could not be decoded: {exc}") from exc

    def _gone(self, redis_key: str) -> str:
        return (
            f"The value is gone from Redis at {self.store.endpoint}: it expired ([redis_xcom] ttl = "
            f"{self.settings.ttl}s), was evicted or was deleted. Clear and re-run the task that "
            "produced it to recreate it."
        )


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
            store = RedisStore(client.build_client(settings), settings.url, settings.chunk_bytes)
            _readers.clear()
            _readers[pid] = ValueReader(settings, store)
        return _readers[pid]


def reset_reader() -> None:
    """Forget the reader (tests, or after a configuration change)."""
    with _lock:
        _readers.clear()
