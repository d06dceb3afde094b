"""The envelope around every stored value: a 30-byte header with lengths and a checksum.

Layout (little-endian): a 30-byte header, then the stored payload::

    0   2s  magic b"RX"
    2   B   format version (1)
    3   B   flags: 0x01 checksum present, 0x02 out-of-band buffers follow the msgpack body
    4   B   compression id: 0 none, 1 zlib, 2 lz4, 3 zstd
    5   B   reserved, 0
    6   Q   raw length: payload size before compression (bounds decompression)
    14  Q   stored length: payload bytes after the header (detects truncation)
    22  Q   checksum: xxh3_64 of the stored payload, seeded with bytes 0-5 (0 when the flag is off)
    30  ... payload (stored length bytes)

xxh3 runs at memory speed (about 4x zlib.crc32 here), which matters for large values. Seeding it
with the first six header bytes covers the flags and compression id; both lengths are checked
against the value's real size (and the decompressed size), so every header byte is covered too.
A reader that checks checksums refuses a value whose checksum flag was cleared. Writing costs one
concatenation and reading one slice for small values, the common case; large values are handed
to the writer as the header plus the payload's buffers (``encode_parts``), never joined.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import xxhash

from redis_xcom.errors import CorruptPayloadError, UnsupportedFormatError

# A byte buffer as the envelope takes it: len() is its size in bytes.
Buffer = bytes | bytearray | memoryview

MAGIC = b"RX"
VERSION = 1
FLAG_CHECKSUM = 0x01
FLAG_OUT_OF_BAND = 0x02
_KNOWN_FLAGS = FLAG_CHECKSUM | FLAG_OUT_OF_BAND
PREFIX = struct.Struct("<2sBBBB")  # magic, version, flags, compression id, reserved
HEADER = struct.Struct("<6sQQQ")  # prefix, raw length, stored length, checksum
HEADER_SIZE = HEADER.size
# The common case (plain, checksummed, uncompressed): a fixed prefix whose checksum seed is a constant.
FAST_PREFIX = PREFIX.pack(MAGIC, VERSION, FLAG_CHECKSUM, 0, 0)
FAST_PREFIX_NO_CHECKSUM = PREFIX.pack(MAGIC, VERSION, 0, 0, 0)
xxh3 = xxhash.xxh3_64_intdigest


def seed(prefix: bytes) -> int:
    """The checksum seed: the six prefix bytes, so flags and compression id are covered too."""
    return int.from_bytes(prefix, "little")


FAST_SEED = seed(FAST_PREFIX)


def seal(parts: Sequence[Buffer], flags: int, cid: int, raw_len: int) -> list[Buffer]:
    """The header for these stored parts, followed by the parts themselves (never joined)."""
    prefix = PREFIX.pack(MAGIC, VERSION, flags, cid, 0)
    digest = 0
    if flags & FLAG_CHECKSUM:
        hasher = xxhash.xxh3_64(seed=seed(prefix))
        for part in parts:
            hasher.update(part)
        digest = hasher.intdigest()
    stored_len = sum(len(p) for p in parts)
    return [HEADER.pack(prefix, raw_len, stored_len, digest), *parts]


def recorded_length(head: Buffer) -> int | None:
    """The decompressed length a value's header records, from its first HEADER_SIZE bytes (None
    when they are no redis-xcom header): what decoding it will cost, read before fetching it."""
    if len(head) < HEADER_SIZE or bytes(head[:2]) != MAGIC:
        return None
    return int(HEADER.unpack_from(head)[1])


def open_envelope(data: Buffer, require_checksum: bool) -> tuple[int, int, int, memoryview]:
    """Check the header against the value: (flags, compression id, raw length, stored payload)."""
    if len(data) < HEADER_SIZE or bytes(data[:2]) != MAGIC:
        raise CorruptPayloadError("stored value is not a redis-xcom value (too short or wrong magic)")
    prefix, raw_len, stored_len, digest = HEADER.unpack_from(data)
    _magic, version, flags, cid, reserved = PREFIX.unpack(prefix)
    if version != VERSION:
        raise UnsupportedFormatError(
            f"stored value has format version {version}; this redis-xcom reads version {VERSION}. "
            "Upgrade redis-xcom on this worker (or the value is corrupt)."
        )
    if flags & ~_KNOWN_FLAGS or reserved:
        raise UnsupportedFormatError(f"value uses unknown header flags {flags:#x}; upgrade redis-xcom")
    if len(data) - HEADER_SIZE != stored_len:
        raise CorruptPayloadError(
            f"stored value has {len(data) - HEADER_SIZE} payload bytes, the header says {stored_len} "
            "(truncated?)"
        )
    body: Any = memoryview(data)[HEADER_SIZE:]
    if flags & FLAG_CHECKSUM:
        if xxh3(body, seed(prefix)) != digest:
            raise CorruptPayloadError("stored value fails its checksum (altered or corrupted)")
    elif require_checksum:
        # Only benchmarks write values without a checksum; a cleared flag is damage or forgery.
        raise CorruptPayloadError("stored value carries no checksum (altered or corrupted)")
    if not cid and raw_len != stored_len:
        raise CorruptPayloadError("uncompressed value records two different lengths")
    if cid and not raw_len:
        # zlib reads a limit of 0 as "no limit": a compressed value is never empty.
        raise CorruptPayloadError("compressed value records a decompressed length of 0")
    return flags, cid, raw_len, body
