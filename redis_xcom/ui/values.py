"""What the UI shows of one XCom row: the value its reference points to in Redis, or why not.

Reads through the same settings and client factory as the backend, and decodes with the project's
codec, which rebuilds only the classes [core] allowed_deserialization_classes admits. A value stored
in more than [redis_xcom] ui_max_decode_bytes is not fetched unless the caller forces it.

Rows are user input (the REST API, the UI and DAG code write them): a row's reference is followed
only when it names one of our values under key_prefix AND that value is the row's own (its dag, run,
task, map index, key and, on Airflow 3.4, task instance). Any other row is shown as stored, with the
state UNTRUSTED, and its key is never read, probed or deleted.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis_xcom import keys
from redis_xcom.codec import HEADER_SIZE, Codec, recorded_length
from redis_xcom.config import Settings, get_settings
from redis_xcom.errors import CodecError, RedisXComError, UntrustedReferenceError
from redis_xcom.storage import client
from redis_xcom.storage.store import RedisStore
from redis_xcom.ui.preview import Preview, preview

# What a row shows: its value, or why it does not.
VALUE, INLINE, EXPIRED, NOT_DECODED, ERROR = "value", "inline", "expired", "not_decoded", "error"
UNTRUSTED = "untrusted"


@dataclass(frozen=True)
class XComRow:
    """One xcom row as the metadata DB holds it: whose it is, and its value (a reference, or
    Airflow's own value for a row that did not come through the backend)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str
    value: Any
    # Airflow 3.4: the attempt (task instance) the row belongs to; None before 3.4.
    task_instance_id: uuid.UUID | None = None
    try_number: int | None = None

    def coordinates(self) -> keys.RowCoordinates:
        """Everything the reference check compares: the row as the metadata DB records it."""
        return keys.RowCoordinates(
            self.dag_id,
            self.run_id,
            self.task_id,
            self.key,
            map_index=self.map_index,
            task_instance_id=keys.as_uuid(self.task_instance_id),
            try_number=self.try_number,
        )

    def describe(self) -> str:
        return self.coordinates().describe()


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
    # The row it shows, named in messages (not part of the JSON: its fields are already there).
    described: str = ""

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
        # Decoding needs no compression setting (every value records its own), only the size bound.
        # No user class is imported or run in the API server: serde objects show as serialized.
        self.codec = Codec(max_decoded_bytes=settings.max_value_bytes, rebuild_classes=False)

    def views(self, rows: Sequence[XComRow], force: bool = False) -> list[XComView]:
        """Each row's value (or Airflow's own value for a row that is not a reference, or the row as
        stored for one whose reference is not its own), previewed.

        One round trip reads every trusted key's size and TTL, one more the values small enough to decode.
        """
        views = [self._view_of(row) for row in rows]
        wanted = [view for view in views if view.redis_key is not None]
        try:
            self._fetch(wanted, force)
        except RedisXComError as exc:
            for view in wanted:
                view.state, view.message = ERROR, str(exc)
        return views

    def value(self, row: XComRow, force: bool = False) -> Any:
        """The whole value behind a row's reference (or the row's own value); raises RedisXComError,
        UntrustedReferenceError for a row whose reference is not its own (nothing is read)."""
        view = self._view_of(row)
        if view.state == UNTRUSTED:
            raise UntrustedReferenceError(view.message)
        if view.redis_key is None:
            return row.value
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
        facts = self.store.describe([str(view.redis_key) for view in views], head_bytes=HEADER_SIZE)
        limit = self.settings.ui_max_decode_bytes
        readable = []
        for view, fact in zip(views, facts, strict=True):
            if not fact.exists:
                view.state, view.message = EXPIRED, self._gone()
                continue
            view.size_bytes, view.ttl_seconds = fact.bytes, fact.ttl
            # What decoding costs is the header's recorded (decompressed) length, not the stored size.
            cost = max(fact.bytes, recorded_length(fact.head) or 0)
            if cost > limit and not force:
                view.state, view.message = NOT_DECODED, self._too_large(fact.bytes, cost, limit)
                continue
            readable.append(view)
        decoded: dict[int, tuple[Any, RedisXComError | None]] = {}
        for view, data in self._read(readable, limit):
            if data is None:  # expired between the two round trips
                view.state, view.message = EXPIRED, self._gone()
                view.size_bytes = view.ttl_seconds = None
                continue
            try:
                if isinstance(data, CodecError):
                    raise data
                value = self.codec.decode(data)
            except RedisXComError as exc:
                failure = type(exc)(f"{view.described} could not be decoded: {exc}")
                view.state, view.message = ERROR, str(failure)
                decoded[id(view)] = (None, failure)
                continue
            if keep_values:
                decoded[id(view)] = (value, None)
                continue
            try:
                view.preview = preview(value, self.settings.ui_preview_bytes)
            except (ValueError, TypeError, RecursionError, MemoryError) as exc:
                # One value that cannot be shown (an int of 5000 digits, deep nesting) fails alone.
                view.state = ERROR
                reason = f"{type(exc).__name__}: {exc}"
                view.message = f"{view.described} was decoded but cannot be previewed: {reason}"
        return [decoded.get(id(view), (None, None)) for view in views]

    def _read(
        self, views: list[XComView], limit: int
    ) -> Iterator[tuple[XComView, bytes | CodecError | None]]:
        """Raw values in batches of at most about limit bytes (one round trip each): a page of many
        large XComs never holds more than one batch of raw bytes at once. A value that cannot be read
        (a chunked one whose manifest was altered) comes back as its own error, not the batch's."""
        batch: list[XComView] = []
        total = 0
        for view in [*views, None]:
            size = 0 if view is None else view.size_bytes or 0
            if batch and (view is None or total + size > limit):
                yield from self._read_batch(batch)
                batch, total = [], 0
            if view is not None:
                batch.append(view)
                total += size

    def _read_batch(self, batch: list[XComView]) -> Iterator[tuple[XComView, bytes | CodecError | None]]:
        try:
            yield from zip(batch, self.store.get_many([str(v.redis_key) for v in batch]), strict=True)
            return
        except CodecError:
            pass  # one bad value: read them one by one, so that only it fails
        for view in batch:
            try:
                yield view, self.store.get(str(view.redis_key))
            except CodecError as exc:
                yield view, exc

    @staticmethod
    def _too_large(stored: int, decoded: int, limit: int) -> str:
        size = f"{stored} bytes in Redis" + (f", {decoded} once decompressed" if decoded > stored else "")
        return (
            f"{size}, above [redis_xcom] ui_max_decode_bytes = {limit}: not decoded, so that the API "
            "server's memory is spared. Ask for it with ?decode=force."
        )

    def _gone(self) -> str:
        return (
            f"The value is gone from Redis at {self.store.endpoint}: it expired ([redis_xcom] ttl = "
            f"{self.settings.ttl}s), was evicted or was deleted. Clear and re-run the task that "
            "produced it to recreate it."
        )

    def _view_of(self, row: XComRow) -> XComView:
        """A row's view before Redis is asked: a reference of its own to read, Airflow's own value
        shown as is, or an untrusted reference shown as stored (and never read)."""
        budget, described = self.settings.ui_preview_bytes, row.describe()
        try:
            redis_key = own_key(row, self.settings.key_prefix)
        except UntrustedReferenceError as exc:
            shown = preview(row.value, budget)
            return XComView(row.key, UNTRUSTED, preview=shown, message=str(exc), described=described)
        if redis_key is None:
            return XComView(
                row.key,
                INLINE,
                preview=preview(row.value, budget),
                message="stored in Airflow's database",
                described=described,
            )
        return XComView(row.key, VALUE, reference=row.value, redis_key=redis_key, described=described)


def own_key(row: XComRow, prefix: str) -> str | None:
    """The Redis key of the row's own value, or None when the row holds no reference.

    UntrustedReferenceError, naming the row, when its reference names anything but a value under
    ``prefix`` written for this very row (another DAG's value, another attempt's, a key that is no
    XCom): the backend's one check (keys.owned_key), with every coordinate the row has.
    """
    return keys.owned_key(row.value, row.coordinates(), prefix)


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
