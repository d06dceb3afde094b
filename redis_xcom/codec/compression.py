"""Compression for the codec envelope: ids stored in the header, bomb-proof decompression."""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

from redis_xcom.errors import ConfigError, CorruptPayloadError, UnsupportedFormatError

# Header ids; never renumber (stored values name them).
NONE, ZLIB, LZ4, ZSTD = 0, 1, 2, 3
IDS = {"none": NONE, "zlib": ZLIB, "lz4": LZ4, "zstd": ZSTD}
NAMES = {v: k for k, v in IDS.items()}
_EXTRA = {LZ4: ("lz4.frame", "lz4"), ZSTD: ("zstandard", "zstd")}
# Decompressed output is produced in pieces of at most this size unless the ratio is modest.
_CHUNK = 8 << 20
# LZ4 cannot expand more than ~255x (one length byte per 255 output bytes).
_LZ4_MAX_RATIO = 256

Parts = Sequence[bytes | bytearray | memoryview]


def compression_id(name: str) -> int:
    """Validate a configured compression name and check its library is importable."""
    if name not in IDS:
        raise ConfigError(f"unknown compression {name!r}; choose one of: {', '.join(IDS)}")
    cid = IDS[name]
    if cid in _EXTRA:
        _load(cid, ConfigError)
    return cid


def _load(cid: int, error: type[Exception]) -> Any:
    module, extra = _EXTRA[cid]
    try:
        return __import__(module, fromlist=["_"])
    except ImportError:
        raise error(
            f"compression {NAMES[cid]!r} needs a package that is not installed: "
            f"pip install 'redis-xcom[{extra}]'"
        ) from None


def compress(cid: int, parts: Parts) -> bytes:
    """Compress the concatenation of parts without joining them first."""
    if cid == ZLIB:
        zobj = zlib.compressobj(6)
        return b"".join([*(zobj.compress(p) for p in parts), zobj.flush()])
    if cid == LZ4:
        lz4f = _load(LZ4, ConfigError)
        lobj = lz4f.LZ4FrameCompressor(content_checksum=False)
        return b"".join([lobj.begin(), *(lobj.compress(p) for p in parts), lobj.flush()])
    zstd = _load(ZSTD, ConfigError)
    sobj = zstd.ZstdCompressor(level=3).compressobj()
    return b"".join([*(sobj.compress(p) for p in parts), sobj.flush()])


def decompress(cid: int, data: memoryview, raw_len: int) -> bytes:
    """Decompress exactly raw_len bytes; anything longer, shorter or malformed is corrupt."""
    if cid not in _DECOMPRESSORS:
        raise UnsupportedFormatError(f"value uses unknown compression id {cid}; upgrade redis-xcom")
    out = _DECOMPRESSORS[cid](data, raw_len)
    if len(out) != raw_len:
        raise CorruptPayloadError(f"decompressed size {len(out)} differs from the recorded {raw_len}")
    return out


def _zlib(data: memoryview, raw_len: int) -> bytes:
    if raw_len <= 0:
        raise CorruptPayloadError("zlib value records a decompressed length of 0")
    dobj = zlib.decompressobj()
    # CPython grows zlib output incrementally, so a hostile raw_len allocates nothing up front.
    out = dobj.decompress(data, raw_len)
    if not dobj.eof or dobj.unconsumed_tail or dobj.unused_data:
        raise CorruptPayloadError("zlib stream is longer than recorded or truncated")
    return out


def _lz4(data: memoryview, raw_len: int) -> bytes:
    if raw_len > len(data) * _LZ4_MAX_RATIO + 1024:
        raise CorruptPayloadError("recorded size is impossible for an lz4 frame of this length")
    lobj = _load(LZ4, UnsupportedFormatError).LZ4FrameDecompressor()
    out = lobj.decompress(data, max_length=raw_len + 1)
    if not lobj.eof or lobj.unused_data:
        raise CorruptPayloadError("lz4 frame is longer than recorded or truncated")
    return bytes(out)


def _zstd(data: memoryview, raw_len: int) -> bytes:
    zstd = _load(ZSTD, UnsupportedFormatError)
    # The frame's own content size is attacker-controlled: read in bounded chunks instead.
    chunk = min(raw_len + 1, max(_CHUNK, 64 * len(data)))
    pieces: list[bytes] = []
    total = 0
    with zstd.ZstdDecompressor().stream_reader(data, read_across_frames=False) as reader:
        while total <= raw_len:
            piece = reader.read(chunk)
            if not piece:
                break
            pieces.append(piece)
            total += len(piece)
    return b"".join(pieces)


_DECOMPRESSORS: dict[int, Callable[[memoryview, int], bytes]] = {ZLIB: _zlib, LZ4: _lz4, ZSTD: _zstd}
