"""Coverage-guided fuzzing of the decoder (atheris): every input decodes or raises a CodecError.

Bytes in Redis can be written by anyone with access to it, and such a writer can compute checksums:
so most inputs are sealed in a valid envelope (right lengths and xxh3 checksum, fuzzed flags and
compression) and reach msgpack, the extension hooks, numpy, Arrow and the decompressors; the rest
are raw bytes that exercise the envelope's own checks. Any other exception, a crash, a timeout or
an allocation above the limit is a bug. Seeds are real values encoded by the codec, and the
shapes that cost more than their bytes (issue 29): Arrow views, runs of empty containers, map keys
sharing one hash, zero-width numpy dtypes. A third kind of input builds those shapes from the
fuzzer's bytes (``shaped``), so that their counts and nesting are mutated, not only their bytes.

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
import struct
import sys
import uuid
from pathlib import Path

import atheris
import msgpack

with atheris.instrument_imports(include=["redis_xcom"]):
    from redis_xcom.codec import Codec, budget
    from redis_xcom.codec import compression as compression_module
    from redis_xcom.codec.envelope import FLAG_CHECKSUM, seal
    from redis_xcom.codec.extensions import Ext
    from redis_xcom.errors import CodecError

# The readers' bound ([redis_xcom] max_value_bytes), small so that libFuzzer's -rss_limit_mb holds.
LIMIT = 4 << 20
CODEC = Codec(max_decoded_bytes=LIMIT)
# Small free allowances: inputs reach the decode bounds in a few thousand objects, in milliseconds.
budget.FREE_OBJECTS = 1 << 12
budget.FREE_ELEMENTS = 1 << 14


def sealed(data: bytes) -> bytes:
    """Flags, compression id and the recorded length (4 bytes) from the input; the rest is the payload."""
    flags, cid, payload = data[0] & 0x07, data[1] & 0x07, data[6:]
    raw_len = int.from_bytes(data[2:6], "little") if cid else len(payload)
    parts = seal([payload], flags | FLAG_CHECKSUM, cid, raw_len)
    return b"".join(bytes(part) for part in parts)


# Extensions that shaped inputs wrap an Arrow IPC stream in.
_ARROW_CODES = (Ext.ARROW_TABLE, Ext.PANDAS_DATAFRAME, Ext.POLARS_DATAFRAME)
# CPython hashes ints modulo this prime: its multiples all hash to 0.
_MODULUS = (1 << 61) - 1
# Shaped bodies stay below the readers' bound, so that they reach the decoder.
_SHAPED_MAX = LIMIT - 4096


def _packed(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True, strict_types=True)


def _ext(code: int, inner: object) -> msgpack.ExtType:
    return msgpack.ExtType(code, _packed(inner))


def _empty_run(fdp: atheris.FuzzedDataProvider) -> bytes:
    """An array of n items, each an empty map, array or set, nested a few levels."""
    count = fdp.ConsumeIntInRange(0, 1 << 13)
    item = fdp.PickValueInList([b"\x80", b"\x90", b"\xd4\x02\x90", b"\xd4\x01\x90"])
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        item = b"\x91" + item  # [item]
    return b"\xdd" + struct.pack(">I", count) + item * count


def _colliding_keys(fdp: atheris.FuzzedDataProvider) -> bytes:
    """A map whose keys are big ints, tuples or UUIDs that share one hash value."""
    count = fdp.ConsumeIntInRange(0, 1200)
    kind = fdp.ConsumeIntInRange(0, 2)
    keys = []
    for k in range(1, count + 1):
        big = (k * _MODULUS).to_bytes(16, "little", signed=True)
        keys.append(
            msgpack.ExtType(Ext.BIGINT, big)
            if kind == 0
            else _ext(Ext.TUPLE, [msgpack.ExtType(Ext.BIGINT, big)])
            if kind == 1
            else msgpack.ExtType(Ext.UUID, (k * _MODULUS).to_bytes(16, "big"))
        )
    return b"\xdf" + struct.pack(">I", len(keys)) + b"".join(_packed(key) + b"\x00" for key in keys)


def _zero_width_arrays(fdp: atheris.FuzzedDataProvider) -> bytes:
    descr = fdp.PickValueInList(["<U0", "|V0", "|S0", "<f8"])
    shape = [fdp.ConsumeIntInRange(0, 1 << 22) for _ in range(fdp.ConsumeIntInRange(1, 3))]
    array = _ext(Ext.NUMPY_ARRAY, [descr, shape, "C", b""])
    return _packed([array] * fdp.ConsumeIntInRange(1, 64))


def _views(fdp: atheris.FuzzedDataProvider) -> bytes:
    """An Arrow stream of views (string, binary or list views) reusing one buffer many times."""
    import pyarrow as pa

    count = fdp.ConsumeIntInRange(0, 2000)
    size = fdp.ConsumeIntInRange(0, 1 << 12)
    kind = fdp.ConsumeIntInRange(0, 2)
    if kind == 2:
        child = pa.Array.from_buffers(pa.int8(), size, [None, pa.py_buffer(bytes(size))])
        offsets = pa.py_buffer(struct.pack("<i", fdp.ConsumeIntInRange(0, 4)) * count)
        sizes = pa.py_buffer(struct.pack("<i", size) * count)
        array = pa.Array.from_buffers(
            pa.list_view(pa.int8()), count, [None, offsets, sizes], children=[child]
        )
    else:
        view = struct.pack("<i4sii", size, b"xxxx", 0, fdp.ConsumeIntInRange(0, 4))
        kind_type = pa.string_view() if kind else pa.binary_view()
        buffers = [None, pa.py_buffer(view * count), pa.py_buffer(b"x" * size)]
        array = pa.Array.from_buffers(kind_type, count, buffers)
    if fdp.ConsumeBool():
        array = pa.StructArray.from_arrays([array], names=["s"])
    sink = pa.BufferOutputStream()
    table = pa.table({"c": array})
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return _packed(_ext(fdp.PickValueInList(list(_ARROW_CODES)), sink.getvalue().to_pybytes()))


def shaped(data: bytes) -> bytes | None:
    """A body of one of the shapes that cost more than their bytes, built from the input, sealed."""
    fdp = atheris.FuzzedDataProvider(data)
    builders = [_empty_run, _colliding_keys, _zero_width_arrays]
    try:
        import pyarrow  # noqa: F401

        builders.append(_views)
    except ImportError:
        pass
    try:
        body = builders[fdp.ConsumeIntInRange(0, len(builders) - 1)](fdp)
    except Exception:  # the input asked for something the builder cannot make (an invalid array)
        return None
    if len(body) > _SHAPED_MAX:
        return None
    cid = compression_module.ZLIB if fdp.ConsumeBool() else 0
    stored = compression_module.compress(cid, [body]) if cid else body
    return b"".join(bytes(part) for part in seal([stored], FLAG_CHECKSUM, cid, len(body)))


def test_one_input(data: bytes) -> None:
    if len(data) < 7:
        return
    if data[0] & 7 == 3:  # one input in eight: building shapes costs more than raw bytes
        value = shaped(data[1:])
        if value is None:
            return
    else:
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
        views = pa.array(["a view longer than twelve bytes", "short"] * 50, pa.string_view())
        values.append(pa.table({"s": views, "l": pa.array([[1, 2]] * 100, pa.list_view(pa.int8()))}))
    except ImportError:
        pass
    # Runs of empty containers, and keys sharing one hash value (a few: seeds must decode quickly).
    values += [[{}] * 3000, [[]] * 3000, [set()] * 500, {k * _MODULUS: k for k in range(1, 200)}]
    writers = [Codec(), Codec("zlib", 0)]
    for i, value in enumerate(values):
        for j, writer in enumerate(writers):
            encoded = writer.encode(value)
            # Raw (first byte even) and, for the envelope's payload, sealed (odd) forms.
            (directory / f"seed-{i}-{j}-raw").write_bytes(b"\x00" + encoded)
            fields = encoded[3:5] + encoded[6:10]  # flags, compression id, recorded length
            (directory / f"seed-{i}-{j}-sealed").write_bytes(b"\x01" + fields + encoded[30:])
    # Shaped inputs (first byte 3 modulo 8): one of each builder, with small counts for mutation to grow.
    for k in range(4):
        (directory / f"seed-shaped-{k}").write_bytes(b"\x03" + bytes([k]) * 64)


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
