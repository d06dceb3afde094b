"""The client's command packer: the bytes on the wire are redis-py's, whichever packer made them."""

from __future__ import annotations

import random

import pytest
from redis.connection import Encoder, PythonRespSerializer
from redis.exceptions import DataError

from redis_xcom import client
from redis_xcom.client import _COMMAND_PACKER, BufferList
from redis_xcom.config import Settings

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
    assert wire(_COMMAND_PACKER.pack(*args)) == wire(REFERENCE.pack(*same_bytes))


def test_large_arguments_go_to_the_socket_uncopied() -> None:
    chunks = _COMMAND_PACKER.pack("SET", "k", BIG, "EX", 60)
    assert any(chunk is BIG for chunk in chunks)
    parts = BufferList([b"header", BIG, memoryview(BIG)])
    chunks = _COMMAND_PACKER.pack("SET", "k", parts)
    assert wire(chunks) == wire(REFERENCE.pack("SET", "k", b"header" + BIG + BIG))
    assert sum(chunk is BIG for chunk in chunks) == 1


def test_unsendable_argument_is_redis_pys_data_error() -> None:
    with pytest.raises(DataError):
        _COMMAND_PACKER.pack("SET", "k", object())


def test_retries_back_off_exponentially_with_jitter_up_to_the_configured_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = client.build_client(Settings(retry_attempts=4, retry_backoff_base=0.1, retry_backoff_cap=2.0))
    retry = built.connection_pool.connection_kwargs["retry"]
    # The fallback for redis-py < 5.3 must draw the same delays as redis-py's own class.
    backoffs = [retry._backoff, client._ExponentialWithJitterBackoff(cap=2.0, base=0.1)]
    monkeypatch.setattr(random, "random", lambda: 0.5)
    for backoff in backoffs:
        assert [backoff.compute(n) for n in range(7)] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0])
    monkeypatch.setattr(random, "random", lambda: 0.0)
    assert [backoff.compute(5) for backoff in backoffs] == [0.0, 0.0]
