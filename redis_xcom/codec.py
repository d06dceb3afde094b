"""Value <-> bytes for redis-xcom: msgpack inside a small checksummed envelope.

Minimal first version (plain msgpack data + envelope + compression); rich types follow.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import msgpack

from redis_xcom.errors import ConfigError, CorruptPayloadError, UnsupportedFormatError

MAGIC = b"RX"
VERSION = 1
FLAG_CHECKSUM = 0x01
# magic, version, flags, compression id, pad, raw length, stored length; crc32 follows.
_PRE = struct.Struct("<2sBBBxQQ")
_CRC = struct.Struct("<I")
HEADER_SIZE = _PRE.size + _CRC.size
_COMPRESSIONS = {"none": 0, "zlib": 1}


class Codec:
    """Encodes XCom values to self-describing bytes and back."""

    def __init__(self, compression: str = "none", compression_threshold: int = 65536) -> None:
        if compression not in _COMPRESSIONS:
            raise ConfigError(f"unknown compression {compression!r}; choose one of {sorted(_COMPRESSIONS)}")
        self.compression = compression
        self.compression_threshold = compression_threshold
        self._compression_id = _COMPRESSIONS[compression]

    def encode(self, value: object) -> bytes:
        body = msgpack.packb(value, use_bin_type=True, strict_types=True)
        raw_len = len(body)
        cid = 0
        if self._compression_id and raw_len >= self.compression_threshold:
            packed = zlib.compress(body, 6)
            if len(packed) < raw_len:
                body, cid = packed, self._compression_id
        pre = _PRE.pack(MAGIC, VERSION, FLAG_CHECKSUM, cid, raw_len, len(body))
        return b"".join((pre, _CRC.pack(zlib.crc32(body, zlib.crc32(pre))), body))

    def decode(self, data: bytes | bytearray | memoryview) -> object:
        view = memoryview(data).cast("B")
        if len(view) < HEADER_SIZE or view[:2] != MAGIC:
            raise CorruptPayloadError("not a redis-xcom value (bad magic or too short)")
        _magic, version, _flags, cid, _raw_len, stored_len = _PRE.unpack_from(view)
        if version != VERSION:
            raise UnsupportedFormatError(f"unknown redis-xcom format version {version}")
        body = view[HEADER_SIZE:]
        if stored_len != len(body):
            raise CorruptPayloadError("stored length does not match (truncated value?)")
        (crc,) = _CRC.unpack_from(view, _PRE.size)
        if zlib.crc32(body, zlib.crc32(view[: _PRE.size])) != crc:
            raise CorruptPayloadError("checksum mismatch")
        payload: Any = body
        if cid == 1:
            payload = zlib.decompress(body)
        try:
            return msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:
            raise CorruptPayloadError(f"undecodable payload: {exc}") from exc
