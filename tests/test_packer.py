"""The client's command packer: the bytes on the wire are redis-py's, whichever packer made them."""

from __future__ import annotations

import pytest
from redis.connection import Encoder, PythonRespSerializer
from redis.exceptions import DataError

from redis_xcom.storage.packer import COMMAND_PACKER, BufferList

REFERENCE = PythonRespSerializer(6000, Encoder("utf-8", "strict", False).encode)
BIG = bytes(range(256)) * 40  # above the 6000-byte cutoff: sent as it is, never copied


def wire(chunks: list[bytes | memoryview]) -> bytes:
    return b"".join(bytes(chunk) for chunk in chunks)


@pytest.mark.parametrize(
    "args",
    [
        ("SET", "k", b"v", "EX", 3600),
        ("EVALSHA", "ab" * 20, 2, "xcom:{d/r}:t:-1:k", "xcom:{d/r}#index", b"\x00\xff value", 604800),
        ("CONFIG GET", "proto-max-bulk-len"),
        (b"CONFIG GET", b"maxmemory-policy"),
        ("SET", "k\u00e9y \u2603", 2.5, -1, 10**18),
        ("SET", "k", memoryview(b"view")),
        ("SET", "k", bytearray(b"array")),
        ("SET", "k", BIG, "EX", 60),
        ("SET", "k", memoryview(BIG)),
    ],
)
def test_packer_writes_exactly_what_redis_py_writes(args: tuple[object, ...]) -> None:
    # A bytearray goes out as its bytes (redis-py 5 and 6.0 refuse one, so compare with bytes).
    same_bytes = [bytes(arg) if isinstance(arg, bytearray) else arg for arg in args]
    assert wire(COMMAND_PACKER.pack(*args)) == wire(REFERENCE.pack(*same_bytes))


def test_large_arguments_go_to_the_socket_uncopied() -> None:
    chunks = COMMAND_PACKER.pack("SET", "k", BIG, "EX", 60)
    assert any(chunk is BIG for chunk in chunks)
    parts = BufferList([b"header", BIG, memoryview(BIG)])
    chunks = COMMAND_PACKER.pack("SET", "k", parts)
    assert wire(chunks) == wire(REFERENCE.pack("SET", "k", b"header" + BIG + BIG))
    assert sum(chunk is BIG for chunk in chunks) == 1


def test_unsendable_argument_is_redis_pys_data_error() -> None:
    with pytest.raises(DataError):
        COMMAND_PACKER.pack("SET", "k", object())
