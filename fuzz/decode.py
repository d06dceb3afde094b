"""Coverage-guided fuzzing of the decoder (atheris): every input decodes or raises a CodecError.

Bytes in Redis can be written by anyone with access to it, and such a writer can compute checksums:
so most inputs are sealed in a valid envelope (right lengths and xxh3 checksum, fuzzed flags and
compression) and reach msgpack, the extension hooks, numpy, Arrow and the decompressors; the rest
are raw bytes that exercise the envelope's own checks. Any other exception, a crash, a timeout or
an allocation above the limit is a bug. Seeds are real values encoded by the codec.

    python fuzz/decode.py -atheris_runs=200000            # a fixed number of inputs
    python fuzz/decode.py -max_total_time=600 CORPUS_DIR  # longer, keeping what it finds
    make fuzz FUZZ_SECONDS=600                            # the same through make

tests/test_fuzz_decode.py runs it briefly in CI.
"""

from __future__ import annotations

import contextlib
import datetime
import decimal
import os
import sys
import uuid
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["redis_xcom"]):
    from redis_xcom.codec import Codec
    from redis_xcom.codec.envelope import FLAG_CHECKSUM, seal
    from redis_xcom.errors import CodecError

# The readers' bound ([redis_xcom] max_value_bytes), small so that libFuzzer's -rss_limit_mb holds.
LIMIT = 4 << 20
CODEC = Codec(max_decoded_bytes=LIMIT)


def sealed(data: bytes) -> bytes:
    """Flags, compression id and the recorded length (4 bytes) from the input; the rest is the payload."""
    flags, cid, payload = data[0] & 0x07, data[1] & 0x07, data[6:]
    raw_len = int.from_bytes(data[2:6], "little") if cid else len(payload)
    parts = seal([payload], flags | FLAG_CHECKSUM, cid, raw_len)
    return b"".join(bytes(part) for part in parts)


def test_one_input(data: bytes) -> None:
    if len(data) < 7:
        return
    value = sealed(data[1:]) if data[0] & 1 else data[1:]
    with contextlib.suppress(CodecError):
        CODEC.decode(value)


def seeds(directory: Path) -> None:
    """Real values, encoded as workers write them, as the corpus's start (one file each)."""
    values: list[object] = [
        {"a": [1, 2.5, "x", None, True], "b": {"c": b"bytes"}},
        (1, "two", frozenset({3}), {4, 5}),
        {"when": datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)},
        [decimal.Decimal("1.10"), uuid.UUID(int=7), datetime.date(2024, 1, 1), datetime.timedelta(1)],
        {(1, 2): "tuple key", 10**30: "big"},
        b"x" * 5000,
    ]
    try:
        import numpy as np

        values += [np.arange(12, dtype="int32").reshape(3, 4), np.float64(1.5)]
        import pyarrow as pa

        values.append(pa.table({"id": [1, 2], "name": ["a", None]}))
    except ImportError:
        pass
    writers = [Codec(), Codec("zlib", 0)]
    for i, value in enumerate(values):
        for j, writer in enumerate(writers):
            encoded = writer.encode(value)
            # Raw (first byte even) and, for the envelope's payload, sealed (odd) forms.
            (directory / f"seed-{i}-{j}-raw").write_bytes(b"\x00" + encoded)
            fields = encoded[3:5] + encoded[6:10]  # flags, compression id, recorded length
            (directory / f"seed-{i}-{j}-sealed").write_bytes(b"\x01" + fields + encoded[30:])


def main() -> None:
    args = list(sys.argv)
    corpus = [Path(a) for a in args[1:] if not a.startswith("-")]
    if not corpus:
        corpus = [Path(os.environ.get("FUZZ_CORPUS", "/tmp/redis-xcom-fuzz-corpus"))]
        args.append(str(corpus[0]))
    corpus[0].mkdir(parents=True, exist_ok=True)
    seeds(corpus[0])
    atheris.Setup(args, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
