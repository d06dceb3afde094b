"""What the UI shows of one XCom row: the value its reference points to in Redis, or why not.

Reads through the same settings and client factory as the backend. The stored bytes are decoded
and rendered only in the sandbox's worker processes (sandbox.py), never in the API server: a value
that breaches one of their limits shows as too costly to display. A value stored in (or recording,
once decompressed) more than [redis_xcom] ui_max_decode_bytes is not fetched unless the caller
forces it, and one above the workers' memory cap never.

Rows are user input (the REST API, the UI and DAG code write them): a row's reference is followed
only when it names one of our values under key_prefix AND that value is the row's own (its dag, run,
task, map index, key and, on Airflow 3.4, task instance). Any other row is shown as stored, with the
state UNTRUSTED, and its key is never read, probed or deleted.
"""

from __future__ import annotations

import atexit
import json
import os
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from redis_xcom.codec import HEADER_SIZE, recorded_length
from redis_xcom.config import Settings
from redis_xcom.errors import (
    CodecError,
    CorruptPayloadError,
    DecodeLimitError,
    DisallowedClassError,
    RedisXComError,
    UnsupportedFormatError,
    UntrustedReferenceError,
)
from redis_xcom.rows import XComRow
from redis_xcom.runtime import Runtime, get_runtime
from redis_xcom.storage.server_info import ServerInfo
from redis_xcom.storage.store import RedisStore
from redis_xcom.ui import protocol
from redis_xcom.ui.export import NotRepresentable, OutputTooLarge, to_json
from redis_xcom.ui.preview import Preview, preview
from redis_xcom.ui.sandbox import Busy, Failed, Limits, Rendered, Sandbox, TooCostly

# What a row shows: its value, or why it does not.
VALUE, INLINE, EXPIRED, NOT_DECODED, ERROR = "value", "inline", "expired", "not_decoded", "error"
UNTRUSTED = "untrusted"
# Decoding or rendering it breached a limit of the UI's sandbox (memory, CPU, time, output).
TOO_COSTLY = "too_costly"
_OUTPUT = "above [redis_xcom] ui_sandbox_max_output_bytes"


@dataclass
class XComView:
    """One XCom of a task instance as the page and the JSON API show it."""

    key: str
    state: str
    reference: str | None = None
    redis_key: str | None = None
    size_bytes: int | None = None
    # What the value's header records once decompressed (what decoding it costs); None: no header.
    recorded_bytes: int | None = None
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
            "recorded_bytes": self.recorded_bytes,
            "ttl_seconds": self.ttl_seconds,
            "type": self.type,
            "preview": self.preview.as_json() if self.preview else None,
            "message": self.message,
        }


class ValueRefused(RedisXComError):
    """A value not shown for what it would cost; state says why (the JSON API's state of its row)."""

    state = ""

    def __init__(self, message: str, size_bytes: int | None, recorded_bytes: int | None) -> None:
        super().__init__(message)
        self.size_bytes = size_bytes  # in Redis
        self.recorded_bytes = recorded_bytes  # once decompressed, as its header records it


class ValueTooLargeToDecode(ValueRefused):
    """A value above ui_max_decode_bytes was asked for without forcing."""

    state = NOT_DECODED


class ValueTooCostly(ValueRefused):
    """Decoding or rendering the value breached a limit of the UI's sandbox (or the codec's own)."""

    state = TOO_COSTLY


class ValueGone(RedisXComError):
    """The reference names a key Redis no longer holds."""


class SandboxBusy(RedisXComError):
    """Every sandbox worker stayed busy with other values: nothing was tried, ask again."""


# What a sandbox worker names as a decode error, raised here as the codec's own class.
_CODEC_ERRORS: dict[str, type[CodecError]] = {
    cls.__name__: cls
    for cls in (
        CodecError,
        CorruptPayloadError,
        UnsupportedFormatError,
        DisallowedClassError,
        DecodeLimitError,
    )
}


class ValueReader:
    """Redis values behind references; one per process (its client is one connection pool, its
    sandbox one pool of worker processes)."""

    def __init__(
        self, settings: Settings, store: RedisStore, info: ServerInfo, sandbox: Sandbox | None = None
    ) -> None:
        self.settings = settings
        self.store = store
        self.info = info
        # Values are decoded and rendered only in the sandbox's workers, never in this process.
        self.sandbox = sandbox if sandbox is not None else Sandbox(Limits.of(settings))

    def views(self, rows: Sequence[XComRow], force: bool = False) -> list[XComView]:
        """Each row's value (or Airflow's own value for a row that is not a reference, or the row as
        stored for one whose reference is not its own), previewed.

        One round trip reads every trusted key's size and TTL, one more the values small enough to decode.
        """
        views = [self._view_of(row) for row in rows]
        wanted = [view for view in views if view.redis_key is not None]
        shown: set[int] = set()
        try:
            for view, data in self._fetch(wanted, force):
                self._preview(view, data)
                shown.add(id(view))
        except RedisXComError as exc:
            for view in wanted:
                if view.state == VALUE and id(view) not in shown:
                    view.state, view.message = ERROR, str(exc)
        return views

    def value_json(self, row: XComRow, force: bool = False) -> bytes:
        """The whole value behind a row's reference (or the row's own value) as UTF-8 JSON text.

        Raises UntrustedReferenceError for a row whose reference is not its own (nothing is read),
        ValueGone, ValueTooLargeToDecode, ValueTooCostly, SandboxBusy, NotRepresentable, or the
        RedisXComError that stopped it.
        """
        view = self._view_of(row)
        if view.state == UNTRUSTED:
            raise UntrustedReferenceError(view.message)
        limit = self.settings.ui_sandbox_max_output_bytes
        if view.redis_key is None:
            # Airflow's own value, which Airflow's API decoded already: written here, bounded too.
            try:
                return to_json(row.value, limit)
            except OutputTooLarge as exc:
                raise ValueTooCostly(_too_costly(f"{exc} ({_OUTPUT})", None, None), None, None) from None
        fetched = list(self._fetch([view], force))
        if view.state == EXPIRED:
            raise ValueGone(view.message)
        if view.state == NOT_DECODED:
            raise ValueTooLargeToDecode(view.message, view.size_bytes, view.recorded_bytes)
        if view.state == TOO_COSTLY:
            raise ValueTooCostly(view.message, view.size_bytes, view.recorded_bytes)
        ((_, data),) = fetched
        if data is None:
            raise ValueGone(self._gone())
        if isinstance(data, CodecError):
            raise type(data)(f"{view.described} could not be decoded: {data}")
        outcome = self.sandbox.render(
            protocol.JSON, data, max_decoded_bytes=self.settings.max_value_bytes, preview_bytes=0
        )
        del data
        if isinstance(outcome, Rendered):
            return outcome.body
        if isinstance(outcome, TooCostly):
            message = _too_costly(outcome.reason, view.size_bytes, view.recorded_bytes)
            raise ValueTooCostly(message, view.size_bytes, view.recorded_bytes)
        if isinstance(outcome, Busy):
            raise SandboxBusy(outcome.message)
        if outcome.stage == protocol.DECODE:
            error = _CODEC_ERRORS.get(outcome.error, CodecError)
            raise error(f"{view.described} could not be decoded: {outcome.message}")
        if outcome.stage == protocol.RENDER:
            shown = outcome.message if outcome.error == "NotRepresentable" else _failure(outcome)
            raise NotRepresentable(shown)
        raise RedisXComError(f"{view.described} could not be shown: {outcome.message}")

    def _fetch(
        self, views: list[XComView], force: bool
    ) -> Iterator[tuple[XComView, bytes | CodecError | None]]:
        """Fill each view's sizes and TTL (or its state: expired, not decoded, too costly), then
        yield the stored bytes of each view still to show (None: it expired meanwhile)."""
        if not views:
            return
        facts = self.info.describe([str(view.redis_key) for view in views], head_bytes=HEADER_SIZE)
        limit = self.settings.ui_max_decode_bytes
        memory = self.settings.ui_sandbox_memory_mb << 20
        readable = []
        for view, fact in zip(views, facts, strict=True):
            if not fact.exists:
                view.state, view.message = EXPIRED, self._gone()
                continue
            view.size_bytes, view.ttl_seconds = fact.bytes, fact.ttl
            view.recorded_bytes = recorded_length(fact.head)
            # What decoding costs is the header's recorded (decompressed) length, not the stored size.
            cost = max(fact.bytes, view.recorded_bytes or 0)
            if cost > limit and not force:
                view.state, view.message = NOT_DECODED, self._too_large(fact.bytes, cost, limit)
                continue
            if cost > memory:
                # No worker could hold it: refused without reading it into this process at all.
                reason = f"decoding it needs at least {cost} bytes, above [redis_xcom] ui_sandbox_memory_mb"
                view.state = TOO_COSTLY
                view.message = _too_costly(f"{reason} = {memory >> 20}", fact.bytes, view.recorded_bytes)
                continue
            readable.append(view)
        for view, data in self._read(readable, limit):
            if data is None:  # expired between the two round trips
                view.state, view.message = EXPIRED, self._gone()
                view.size_bytes = view.ttl_seconds = view.recorded_bytes = None
            yield view, data

    def _preview(self, view: XComView, data: bytes | CodecError | None) -> None:
        """The view's preview, rendered by a sandbox worker from the stored bytes (or why not)."""
        if data is None:
            return
        if isinstance(data, CodecError):
            view.state, view.message = ERROR, f"{view.described} could not be decoded: {data}"
            return
        outcome = self.sandbox.render(
            protocol.PREVIEW,
            data,
            max_decoded_bytes=self.settings.max_value_bytes,
            preview_bytes=self.settings.ui_preview_bytes,
        )
        if isinstance(outcome, Rendered):
            try:
                view.preview = Preview.from_json(json.loads(outcome.body))
            except (ValueError, RecursionError) as exc:  # a reply that is no preview: never shown
                view.state, view.message = ERROR, f"{view.described} could not be shown: {exc}"
        elif isinstance(outcome, TooCostly):
            view.state = TOO_COSTLY
            view.message = _too_costly(outcome.reason, view.size_bytes, view.recorded_bytes)
        elif isinstance(outcome, Busy):
            view.state, view.message = ERROR, f"{view.described} could not be shown: {outcome.message}"
        elif outcome.stage == protocol.DECODE:
            view.state, view.message = ERROR, f"{view.described} could not be decoded: {outcome.message}"
        elif outcome.stage == protocol.RENDER:
            # One value that cannot be shown (an int of 5000 digits, deep nesting) fails alone.
            view.state = ERROR
            view.message = f"{view.described} was decoded but cannot be previewed: {_failure(outcome)}"
        else:
            view.state, view.message = ERROR, f"{view.described} could not be shown: {outcome.message}"

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
            redis_key = row.owned_key(self.settings.key_prefix)
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


def _too_costly(reason: str, stored: int | None, recorded: int | None) -> str:
    """A too-costly value's message: which limit, and its stored and recorded sizes."""
    sizes = ""
    if stored is not None:
        sizes = f" It takes {stored} bytes in Redis" + (
            f" and records {recorded} bytes once decompressed." if recorded is not None else "."
        )
    return (
        f"Too costly to display: {reason}.{sizes} The UI decodes and renders values in worker processes "
        "with limits ([redis_xcom] ui_sandbox_*), so that no value can exhaust the API server; raise "
        "them to see a value you trust."
    )


def _failure(outcome: Failed) -> str:
    return f"{outcome.error}: {outcome.message}"


_lock = threading.Lock()
# The reader of this process's runtime: a new runtime (after a fork, or reset_runtime) gets a new one.
_reader: ValueReader | None = None
_reader_runtime: Runtime | None = None


def reader() -> ValueReader:
    """This process's reader, on the runtime's settings and store; a new runtime (reset_runtime)
    gets a new reader."""
    global _reader, _reader_runtime
    current = get_runtime()
    if _reader is not None and _reader_runtime is current:
        return _reader
    with _lock:
        stale = _reader if _reader_runtime is not current else None
        if _reader is None or stale is not None:
            _reader, _reader_runtime = ValueReader(current.settings, current.store, current.info), current
        built = _reader
    if stale is not None:
        stale.sandbox.close()
    return built


def reset_reader() -> None:
    """Forget the reader and stop its sandbox's workers (tests, or after a configuration change)."""
    global _reader, _reader_runtime
    with _lock:
        mine, _reader, _reader_runtime = _reader, None, None
    if mine is not None:
        mine.sandbox.close()


def _forget_in_child() -> None:
    """A forked child builds its own reader and leaves its parent's sandbox workers alone."""
    global _reader, _reader_runtime, _lock
    _reader = _reader_runtime = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_in_child)

# The workers exit on their own when this process's pipes close; this only makes it immediate.
atexit.register(reset_reader)
