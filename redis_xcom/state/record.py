"""One state value as stored in its hash field: a small header, then the JSON text (maybe compressed).

Header (26 bytes, big-endian): format version (1), compression id (``redis_xcom.codec.compression``'s,
0 = none), the expiry as Unix milliseconds (0 = never expires), when it was written (Unix ms: gc's
grace), the text's length in bytes. Redis
expires whole keys, and a scope's hash lives as long as its longest-lived field: the expiry recorded
here is what makes a field past its own ``expires_at`` read as missing, exactly when it is due.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from redis_xcom.codec import compression
from redis_xcom.errors import CorruptPayloadError, DecodeLimitError, UnsupportedFormatError

VERSION = 1
NEVER = 0
_HEADER = struct.Struct(">BBQQQ")


@dataclass(frozen=True)
class Record:
    text: str
    expires_ms: int  # NEVER, or Unix milliseconds
    written_ms: int = 0

    def expired(self, now_ms: int) -> bool:
        return self.expires_ms != NEVER and self.expires_ms <= now_ms


def encode(text: str, expires_ms: int, written_ms: int, compression_id: int, threshold: int) -> bytes:
    """The field's bytes: compressed with ``compression_id`` when the text reaches ``threshold`` bytes
    (the XCom values' rule: ``[redis_xcom] compression`` and ``compression_threshold``)."""
    raw = text.encode()
    cid = compression.NONE
    body = raw
    if compression_id != compression.NONE and len(raw) >= threshold:
        packed = compression.compress(compression_id, [raw])
        if len(packed) < len(raw):  # incompressible text is kept as it is
            cid, body = compression_id, packed
    return _HEADER.pack(VERSION, cid, expires_ms, written_ms, len(raw)) + body


def decode(data: bytes, max_bytes: int, where: str) -> Record:
    """The record in a field's bytes; ``where`` (key and field) names it in errors."""
    if len(data) < _HEADER.size:
        raise CorruptPayloadError(f"{where}: {len(data)} bytes, shorter than a state record's header")
    version, cid, expires_ms, written_ms, raw_len = _HEADER.unpack_from(data)
    if version != VERSION:
        raise UnsupportedFormatError(f"{where}: state record format {version} is unknown; upgrade redis-xcom")
    if raw_len > max_bytes:
        raise DecodeLimitError(
            f"{where}: records {raw_len} bytes, above [redis_xcom] max_value_bytes = {max_bytes}"
        )
    body = memoryview(data)[_HEADER.size :]
    if cid == compression.NONE:
        if len(body) != raw_len:
            raise CorruptPayloadError(f"{where}: holds {len(body)} bytes, its header records {raw_len}")
        raw = bytes(body)
    else:
        try:
            raw = compression.decompress(cid, body, raw_len)
        except CorruptPayloadError as exc:
            raise CorruptPayloadError(f"{where}: {exc}") from None
    try:
        return Record(raw.decode(), expires_ms, written_ms)
    except UnicodeDecodeError:
        raise CorruptPayloadError(f"{where}: the stored text is not UTF-8") from None


def times_of(data: bytes) -> tuple[int, int] | None:
    """(expiry, written) a field's bytes record (cheap: the header only), None when they are no record."""
    if len(data) < _HEADER.size or data[0] != VERSION:
        return None
    _version, _cid, expires_ms, written_ms, _len = _HEADER.unpack_from(data)
    return int(expires_ms), int(written_ms)
