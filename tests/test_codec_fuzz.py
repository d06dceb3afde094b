"""The decoder on hostile input: every outcome is a value or a CodecError, never another exception."""

from __future__ import annotations

import contextlib
import struct

import msgpack
import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_xcom.codec import MAGIC, Codec
from redis_xcom.codec.extensions import MAX_DEPTH, Ext
from redis_xcom.errors import CodecError, CorruptPayloadError

pytestmark = pytest.mark.version_independent

_PREFIX = struct.Struct("<2sBBBB")
_LENGTHS = struct.Struct("<QQ")
CODEC = Codec()
FUZZ = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def seal(payload: bytes, *, flags: int = 1, cid: int = 0, raw_len: int | None = None) -> bytes:
    """A well-formed envelope (valid checksum) around arbitrary payload bytes."""
    raw = len(payload) if raw_len is None else raw_len
    prefix = _PREFIX.pack(MAGIC, 1, flags, cid, 0)
    digest = xxhash.xxh3_64_intdigest(payload, seed=int.from_bytes(prefix, "little"))
    return prefix + _LENGTHS.pack(raw, len(payload)) + struct.pack("<Q", digest) + payload


def decode_or_codec_error(data: bytes) -> None:
    """Decoding may succeed or raise a CodecError; any other exception fails the test."""
    with contextlib.suppress(CodecError):
        CODEC.decode(data)


VALID = [
    CODEC.encode({"a": [1, 2.5, "x", None, True], "b": {"c": b"bytes"}}),
    CODEC.encode(
        {"t": (1, (2,)), "s": {1, 2}, "big": 2**80, "when": __import__("datetime").date(2024, 1, 1)}
    ),
    CODEC.encode([b"x" * 70_000, bytearray(b"y" * 70_000)]),
    Codec("zlib", 16).encode({"k": "v" * 100}),
    Codec("lz4", 16).encode({"k": "v" * 100}),
    Codec("zstd", 16).encode({"k": "v" * 100}),
]


@given(st.binary(max_size=300))
@FUZZ
def test_random_bytes(data: bytes) -> None:
    decode_or_codec_error(data)


@given(st.binary(max_size=300))
@FUZZ
def test_random_payload_in_valid_envelope(payload: bytes) -> None:
    decode_or_codec_error(seal(payload))


@given(st.sampled_from(VALID), st.data())
@FUZZ
def test_mutated_valid_envelopes_with_recomputed_checksum(valid: bytes, data: st.DataObject) -> None:
    # Recomputing the checksum reaches the parsers behind it, as a deliberate forger would.
    body = bytearray(valid[30:])
    for _ in range(data.draw(st.integers(1, 8))):
        if body:
            body[data.draw(st.integers(0, len(body) - 1))] = data.draw(st.integers(0, 255))
    flags, cid = valid[3], valid[4]
    raw_len = struct.unpack_from("<Q", valid, 6)[0]
    decode_or_codec_error(seal(bytes(body), flags=flags, cid=cid, raw_len=raw_len))


@given(st.sampled_from(VALID), st.integers(0, 10_000), st.binary(max_size=20))
@FUZZ
def test_truncated_or_extended_envelopes(valid: bytes, cut: int, tail: bytes) -> None:
    with pytest.raises(CorruptPayloadError):
        CODEC.decode(valid[: min(cut, len(valid) - 1)])
    if tail:
        with pytest.raises(CorruptPayloadError):
            CODEC.decode(valid + tail)


@given(st.sampled_from(list(Ext)), st.binary(max_size=200))
@FUZZ
def test_hostile_extension_payloads(code: int, payload: bytes) -> None:
    body = msgpack.packb([1, msgpack.ExtType(code, payload)])
    decode_or_codec_error(seal(body))
    decode_or_codec_error(seal(struct.pack("<Q", len(body)) + body + payload, flags=3))


@given(
    st.sampled_from(list(Ext)),
    st.recursive(
        st.none()
        | st.integers(-(2**63), 2**64 - 1)
        | st.text(max_size=5)
        | st.binary(max_size=40)
        | st.floats(),
        lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=3), c, max_size=3),
        max_leaves=12,
    ),
)
@FUZZ
def test_extension_payloads_with_plausible_structure(code: int, inner: object) -> None:
    body = msgpack.packb(msgpack.ExtType(code, msgpack.packb(inner, use_bin_type=True)))
    decode_or_codec_error(seal(body))


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 20_000])
def test_deeply_nested_extensions_are_refused_not_crashing(depth: int) -> None:
    payload = msgpack.packb([])
    for _ in range(depth):
        payload = msgpack.packb(msgpack.ExtType(Ext.TUPLE, payload))
    with pytest.raises(CorruptPayloadError):
        CODEC.decode(seal(payload))


def test_deeply_nested_plain_arrays_are_refused() -> None:
    payload = b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(CorruptPayloadError):
        CODEC.decode(seal(payload))


@pytest.mark.parametrize(
    "payload",
    [
        b"\xdd\xff\xff\xff\xff",  # array of 4 billion items
        b"\xdf\xff\xff\xff\xff",  # map of 4 billion pairs
        b"\xc6\xff\xff\xff\xff",  # bin of 4 GiB
        b"\xdb\xff\xff\xff\xff",  # str of 4 GiB
        b"\xc9\xff\xff\xff\xff\x01",  # ext of 4 GiB
    ],
)
def test_hostile_lengths_raise_corrupt_without_allocating(payload: bytes) -> None:
    with pytest.raises(CorruptPayloadError):
        CODEC.decode(seal(payload))


def test_buffer_reference_outside_the_value_is_corrupt() -> None:
    ref = msgpack.ExtType(Ext.BUFFER_REF, struct.pack("<BQQ", 0, 0, 2**40))
    body = msgpack.packb(ref)
    with pytest.raises(CorruptPayloadError, match="outside"):
        CODEC.decode(seal(struct.pack("<Q", len(body)) + body + b"abc", flags=3))


def test_numpy_object_dtype_in_a_stored_value_is_refused() -> None:
    pytest.importorskip("numpy", reason="numpy extra not installed")
    body = msgpack.packb(msgpack.ExtType(Ext.NUMPY_ARRAY, msgpack.packb(["|O", [1], "C", b"\x00" * 8])))
    with pytest.raises(CorruptPayloadError, match="object"):
        CODEC.decode(seal(body))


@pytest.mark.parametrize("cid", [1, 2, 3])
@pytest.mark.parametrize("claimed", [10, 2**40, 2**63])
def test_decompression_bombs_are_bounded_by_the_recorded_length(cid: int, claimed: int) -> None:
    from redis_xcom.codec import compression

    bomb = compression.compress(cid, [bytes(200 << 20)])  # 200 MiB of zeros
    assert len(bomb) < 2 << 20
    with pytest.raises(CorruptPayloadError):
        CODEC.decode(seal(bomb, cid=cid, raw_len=claimed))


@pytest.mark.parametrize("cid", [1, 2, 3])
def test_garbage_claiming_compression_is_corrupt(cid: int) -> None:
    with pytest.raises(CorruptPayloadError):
        CODEC.decode(seal(b"not compressed at all" * 3, cid=cid, raw_len=1000))
