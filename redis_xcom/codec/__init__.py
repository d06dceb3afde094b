"""Value <-> bytes for redis-xcom: msgpack with extension types, inside a small checksummed envelope.

The package knows nothing of Redis or of Airflow's backend:

    envelope     the 30-byte header (magic, version, flags, compression, lengths, xxh3 checksum)
    extensions   the one table of extension codes, and what a type's encoder may ask of the hook
    hooks        msgpack's default / ext_hook objects, and out-of-band buffers
    stdtypes     the standard library's types and the classes Airflow's serde handles
    science      numpy, pandas, pyarrow, polars (imported only when such a value appears)
    arrowcost    what an Arrow table materializes, from its buffers, offsets and sizes
    budget       what one decode may build, relative to the value's recorded length
    compression  zlib, lz4, zstd, with decompression bounded by the recorded length
    explain      the TypeError naming what cannot be serialized and where it sits
    text         a large ASCII string as a view of its own characters (no UTF-8 copy)

The raw payload is one msgpack object; with flag 0x02 it is ``Q body_length, body, buffers``,
where large byte buffers (bytes, numpy data, Arrow IPC) sit after the body and are referenced
from it, so they are copied once and never re-packed. Plain data (None, bool, int, float, str,
bytes, list, dict with str keys) is packed by ormsgpack's Rust code; a value holding anything else
is packed by msgpack, whose C code calls the extension hooks only for the other types. Bodies are
read by ormsgpack, or by msgpack where ormsgpack gives up (tuple dict keys, an error in a hook).
Small values are written with one concatenation and read with one slice; large values are handed
to the writer as the header plus the payload's buffers (``encode_parts``), never joined; a large
ASCII string's buffer is its own characters, not a copy (``text``). Nothing
here uses pickle or imports classes on read outside Airflow's ``[core] allowed_deserialization_classes``.
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Callable
from typing import Any

import msgpack
import ormsgpack

from redis_xcom.codec import compression as compression_module
from redis_xcom.codec.budget import DecodeBudget, NeedsBudget
from redis_xcom.codec.envelope import (
    FAST_PREFIX,
    FAST_PREFIX_NO_CHECKSUM,
    FAST_SEED,
    FLAG_CHECKSUM,
    FLAG_OUT_OF_BAND,
    HEADER,
    HEADER_SIZE,
    MAGIC,
    VERSION,
    Buffer,
    open_envelope,
    recorded_length,
    seal,
    xxh3,
)
from redis_xcom.codec.explain import explain_unserializable
from redis_xcom.codec.extensions import OUT_OF_BAND_MIN
from redis_xcom.codec.hooks import (
    LOCAL,
    PACK_OPTIONS,
    TOP_DECODER,
    Decoder,
    Encoder,
    NeedsOutOfBand,
    OutOfBand,
    unpack_msgpack,
)
from redis_xcom.codec.stdtypes import REBUILD_CLASSES, SerializedForm
from redis_xcom.errors import CodecError, ConfigError, CorruptPayloadError, DecodeLimitError

__all__ = [
    "HEADER_SIZE",
    "MAGIC",
    "OVERHEAD",
    "VERSION",
    "Buffer",
    "Codec",
    "SerializedForm",
    "recorded_length",
]

OVERHEAD = HEADER_SIZE
# Values below this take the fast paths (concatenation and slicing are cheap at this size).
_FAST_MAX = 1 << 16
_BODY_LEN = struct.Struct("<Q")
# A top-level ASCII string from this size is written from its own characters (codec/text.py).
_TEXT_VIEW_MIN = 1 << 20
# Bodies from this size are unpacked with the garbage collector paused (see _unpack_paused_gc).
_GC_PAUSE_MIN = 1 << 20
# Plain data (None, bool, int up to 64 bits, float, str, bytes, list, dict with str keys) is packed by
# ormsgpack (Rust, about 2x msgpack here); anything else makes it raise TypeError, and the value goes
# through msgpack and the extension hooks instead. Both write standard msgpack; either reads it.
_PLAIN_ONLY = (
    ormsgpack.OPT_PASSTHROUGH_BIG_INT
    | ormsgpack.OPT_PASSTHROUGH_DATACLASS
    | ormsgpack.OPT_PASSTHROUGH_DATETIME
    | ormsgpack.OPT_PASSTHROUGH_ENUM
    | ormsgpack.OPT_PASSTHROUGH_SUBCLASS
    | ormsgpack.OPT_PASSTHROUGH_TUPLE
    | ormsgpack.OPT_PASSTHROUGH_UUID
)
_pack_plain = ormsgpack.packb
_unpack_fast = ormsgpack.unpackb


class Codec:
    """Encodes XCom values to self-describing bytes and back; safe to share between threads."""

    def __init__(
        self,
        compression: str = "none",
        compression_threshold: int = 65536,
        *,
        checksum: bool = True,
        max_decoded_bytes: int | None = None,
        rebuild_classes: bool = True,
    ) -> None:
        if type(compression_threshold) is not int or compression_threshold < 0:
            raise ConfigError(f"compression_threshold must be an int >= 0, got {compression_threshold!r}")
        # A value recording a larger decompressed size is refused before anything is decompressed.
        self.max_decoded_bytes = max_decoded_bytes
        # False: objects Airflow's serde wrote come back as their SerializedForm, no class imported.
        self.rebuild_classes = rebuild_classes
        if not rebuild_classes:
            # Bound here, so that the workers' decode (the pull hot path) carries no extra check.
            self.decode = self._decode_as_data  # type: ignore[method-assign]
        self.compression = compression
        self.compression_threshold = compression_threshold
        self._cid = compression_module.compression_id(compression)
        # An infinite threshold keeps the "should we compress" test to one comparison.
        self._threshold: float = compression_threshold if self._cid else float("inf")
        self._flags = FLAG_CHECKSUM if checksum else 0
        # Small values skip the general path; large ones must be joined exactly once.
        self._fast_below = min(self._threshold, _FAST_MAX)
        self._fast_prefix = FAST_PREFIX if checksum else FAST_PREFIX_NO_CHECKSUM

    def __repr__(self) -> str:
        return f"Codec(compression={self.compression!r}, compression_threshold={self.compression_threshold})"

    def encode(self, value: object) -> bytes:
        """Serialize value to one bytes object; TypeError (naming the type and where it sits) if it
        cannot be represented."""
        parts = self.encode_parts(value)
        return parts[0] if len(parts) == 1 else b"".join(parts)  # type: ignore[return-value]

    def encode_parts(self, value: object) -> list[Buffer]:
        """Serialize value to buffers whose concatenation is what ``encode`` returns.

        Small values come back as one bytes object; large ones as the header followed by the
        payload's own buffers, so a writer that can send several buffers as one value (the store
        does) never copies a large payload into a single bytes object.
        """
        cls = type(value)
        try:
            if cls in _TOP_LEVEL_BUFFERS and (cls is not bytes or len(value) >= OUT_OF_BAND_MIN):  # type: ignore[arg-type]
                return self._encode_out_of_band(value)
            if cls is str and len(value) >= _TEXT_VIEW_MIN:  # type: ignore[arg-type]
                from redis_xcom.codec.text import msgpack_str_parts  # ctypes: only for large text

                text = msgpack_str_parts(value)  # type: ignore[arg-type]
                if text is not None:
                    return self._seal(text, 0)
            try:
                body = _pack_plain(value, option=_PLAIN_ONLY)
            except TypeError:  # a rich value: msgpack with the extension hooks
                body = LOCAL.packer.pack(value)
        except NeedsOutOfBand:
            return self._encode_out_of_band(value)
        except Exception as exc:
            raise explain_unserializable(value, exc) from exc
        n = len(body)
        if n >= self._fast_below:
            return self._seal([body], 0)
        if self._flags:
            return [HEADER.pack(FAST_PREFIX, n, n, xxh3(body, FAST_SEED)) + body]
        return [HEADER.pack(FAST_PREFIX_NO_CHECKSUM, n, n, 0) + body]

    def decode(self, data: bytes | bytearray | memoryview) -> object:
        """Rebuild a value; any malformed input raises a CodecError subclass and nothing else."""
        try:
            prefix, raw_len, stored_len, digest = HEADER.unpack_from(data)
            if raw_len == stored_len == len(data) - HEADER_SIZE and stored_len < _FAST_MAX:
                body = data[HEADER_SIZE:]  # a small copy costs less than a memoryview
                if (prefix == FAST_PREFIX and xxh3(body, FAST_SEED) == digest) or (
                    prefix == FAST_PREFIX_NO_CHECKSUM and not self._flags
                ):
                    try:
                        return _unpack(body, TOP_DECODER)
                    except NeedsBudget:
                        pass  # an array or table needs the decode's free allowance: the general path has it
            return self._decode(data)
        except CodecError:
            raise
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            raise CorruptPayloadError(f"stored value cannot be decoded ({reason})") from exc

    def _decode_as_data(self, data: bytes | bytearray | memoryview) -> object:
        """decode, with objects Airflow's serde wrote left as their SerializedForm."""
        token = REBUILD_CLASSES.set(False)
        try:
            return Codec.decode(self, data)
        finally:
            REBUILD_CLASSES.reset(token)

    def _encode_out_of_band(self, value: object) -> list[Buffer]:
        oob = OutOfBand()
        encoder = Encoder(oob)
        top = encoder(value) if type(value) in _TOP_LEVEL_BUFFERS else value
        body = msgpack.packb(top, default=encoder, **PACK_OPTIONS)
        if not oob.parts:
            return self._seal([body], 0)
        return self._seal([_BODY_LEN.pack(len(body)), body, *oob.parts], FLAG_OUT_OF_BAND)

    def _seal(self, parts: list[Any], flags: int) -> list[Buffer]:
        """Compress when worthwhile, then put the header in front; the parts are not joined."""
        raw_len = sum(len(p) for p in parts)
        cid = 0
        if raw_len >= self._threshold:
            packed = compression_module.compress(self._cid, parts)
            if len(packed) < raw_len:
                parts, cid = [packed], self._cid
        return seal(parts, flags | self._flags, cid, raw_len)

    def _decode(self, data: bytes | bytearray | memoryview) -> object:
        """The general path: any flags, any compression, with precise errors."""
        flags, cid, raw_len, body = open_envelope(data, require_checksum=bool(self._flags))
        if self.max_decoded_bytes is not None and raw_len > self.max_decoded_bytes:
            raise DecodeLimitError(
                f"the value records {raw_len} bytes once decompressed, above [redis_xcom] max_value_bytes "
                f"= {self.max_decoded_bytes}: not decoded (no redis-xcom writer stores such a value). "
                "Raise max_value_bytes if a trusted writer stored it."
            )
        payload: Any = compression_module.decompress(cid, body, raw_len) if cid else body
        if flags & FLAG_OUT_OF_BAND:
            return _decode_out_of_band(memoryview(payload), raw_len)
        budget = DecodeBudget(raw_len)
        unpack: Callable[[Any, Decoder], object] = _unpack_budgeted
        if budget.must_count(payload):
            # Possibly more containers than allowed: msgpack counts them and stops at the limit.
            budget.counting = True
            unpack = unpack_msgpack
        decoder = Decoder(budget=budget)
        if raw_len >= _GC_PAUSE_MIN:
            return _unpack_paused_gc(unpack, payload, decoder)
        return unpack(payload, decoder)


def _unpack_paused_gc(unpack: Callable[[Any, Decoder], object], body: Any, decoder: Decoder) -> object:
    """unpack with the cyclic garbage collector paused, for large bodies.

    Every container the decoder builds counts towards the collector's thresholds, so unpacking
    millions of dicts sets off many collections that find nothing (msgpack's README advises
    ``gc.disable()`` for large messages): 50 MB of records decode about 1.7x faster without them.
    Left alone when the collector is already off (by the caller, or by another thread decoding).
    """
    if not gc.isenabled():
        return unpack(body, decoder)
    gc.disable()
    try:
        return unpack(body, decoder)
    finally:
        gc.enable()


def _unpack(body: Any, decoder: Decoder) -> object:
    """One msgpack body: ormsgpack's Rust decoder first, msgpack's when it gives up.

    ormsgpack cannot key a map by an extension value (a tuple key) and hides the errors of the
    extension hooks (a refused class); msgpack decodes those and says what is wrong.
    """
    try:
        return _unpack_fast(body, ext_hook=decoder, option=ormsgpack.OPT_NON_STR_KEYS)
    except ValueError:
        return unpack_msgpack(body, decoder)


def _unpack_budgeted(body: Any, decoder: Decoder) -> object:
    """_unpack on the general path: what ormsgpack's attempt spent is not charged again to msgpack's."""
    state = decoder.budget.snapshot()  # type: ignore[union-attr]
    try:
        return _unpack_fast(body, ext_hook=decoder, option=ormsgpack.OPT_NON_STR_KEYS)
    except ValueError:
        decoder.budget.restore(state)  # type: ignore[union-attr]
        return unpack_msgpack(body, decoder)


def _decode_out_of_band(payload: memoryview, raw_len: int) -> object:
    (body_len,) = _BODY_LEN.unpack_from(payload)
    end = _BODY_LEN.size + body_len
    if end > len(payload):
        raise CorruptPayloadError("msgpack body length points past the end of the value")
    budget = DecodeBudget(raw_len, region=len(payload) - end)
    body = payload[_BODY_LEN.size : end]
    budget.counting = budget.must_count(body)
    return unpack_msgpack(body, Decoder(payload[end:], budget=budget))


# Top-level values that need the out-of-band path: their type (bytearray, memoryview) or size matters.
_TOP_LEVEL_BUFFERS = frozenset({bytes, bytearray, memoryview})
