"""RedisStore on a real redis-server: chunked values, one TTL, atomic writes, no orphans, clear checks."""

from __future__ import annotations

import os
import signal
import time
import tracemalloc
import uuid

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redis_xcom import ExclusiveRedisXCom, ValueTooLargeError, XComExpiredError
from redis_xcom.config import Settings
from redis_xcom.errors import CorruptPayloadError, RedisUnavailableError, RedisXComError
from redis_xcom.storage.client import build_client
from redis_xcom.storage.packer import BufferList
from redis_xcom.storage.store import RedisStore, is_manifest
from tests.redis_process import RedisServer
from tests.xcom_calls import own_row, pull, push, redis_key, value_keys

pytestmark = pytest.mark.integration

MiB = 1024 * 1024


@pytest.fixture
def store(redis_server: RedisServer) -> RedisStore:
    """A store with 1 KiB chunks, on a client as the backend builds it."""
    return RedisStore(build_client(Settings(url=redis_server.url)), redis_server.url, chunk_bytes=1024)


@pytest.fixture
def ns() -> str:
    return f"st-{uuid.uuid4().hex[:8]}:{{run}}:"


def keys_under(client: redis.Redis, prefix: str) -> set[str]:
    return {k.decode() for k in client.scan_iter(f"{prefix}*")}


def test_small_value_is_one_plain_string(store: RedisStore, redis_server: RedisServer, ns: str) -> None:
    store.put(ns + "a", b"hello", ttl=100)
    client = redis_server.client()
    assert client.get(ns + "a") == b"hello"
    assert keys_under(client, ns) == {ns + "a"}
    assert store.get(ns + "a") == b"hello"


def test_big_value_is_chunked_under_one_hash_tag_with_one_ttl(
    store: RedisStore, redis_server: RedisServer, ns: str
) -> None:
    data = os.urandom(10 * 1024 + 17)
    store.put(ns + "big", data, ttl=500)
    client = redis_server.client()
    # One key per value, whatever its size: a manifest then the chunks, with the one TTL.
    assert keys_under(client, ns) == {ns + "big"}
    parts = client.lrange(ns + "big", 0, -1)
    assert is_manifest(parts[0]) and len(parts) == 12
    assert all(len(c) <= 1024 for c in parts[1:])
    assert 495 <= client.ttl(ns + "big") <= 500
    assert store.get(ns + "big") == data


@pytest.mark.parametrize("sizes", [[30, 9000], [30, 700, 1, 5000, 2048], [30, 1024, 1024], [30, 100]])
@pytest.mark.parametrize("gathering", [True, False], ids=["build_client", "plain-redis-py"])
@pytest.mark.parametrize("chunk_bytes", [1024, 64 * MiB], ids=["chunked", "one-SET"])
def test_value_given_as_buffers_is_stored_as_their_concatenation(
    redis_server: RedisServer, ns: str, sizes: list[int], gathering: bool, chunk_bytes: int
) -> None:
    # The codec hands large values over as header + payload buffers; chunks may straddle them.
    client = build_client(Settings(url=redis_server.url)) if gathering else redis_server.client()
    store = RedisStore(client, redis_server.url, chunk_bytes=chunk_bytes)
    parts = [os.urandom(n) for n in sizes]
    buffers = [parts[0], memoryview(parts[1]), *(bytearray(p) for p in parts[2:])]
    store.put(ns + "v", buffers, ttl=100, index=ns + "index")
    assert store.get(ns + "v") == b"".join(parts)
    assert store.get_many([ns + "v"]) == [b"".join(parts)]
    assert keys_under(redis_server.client(), ns) == {ns + "v", ns + "index"}


def test_large_push_sends_the_value_without_copying_it(real_backend: str) -> None:
    # A worker pushing 32 MB must not need another 32 MB: header and payload go out as they are.
    value = os.urandom(32 * MiB)
    push(value, key="warm")  # connection, script cache and eviction check out of the way
    tracemalloc.start()
    try:
        reference = push(value)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MiB, f"pushing 32 MiB allocated {peak / MiB:.1f} MiB more"
    assert pull(reference) == value


def test_buffer_list_never_shows_its_bytes() -> None:
    secret = b"password=hunter2" * 10
    assert "hunter2" not in repr(BufferList([secret, memoryview(secret)]))
    assert repr(BufferList([secret, memoryview(secret)])) == "<2 buffers, 320 bytes>"


def test_exact_chunk_size_boundaries_round_trip(store: RedisStore, ns: str) -> None:
    for size in (0, 1, 1023, 1024, 1025, 2048, 2049):
        data = os.urandom(size)
        store.put(ns + f"s{size}", data, ttl=100)
        assert store.get(ns + f"s{size}") == data, size


def test_rewrites_leave_no_orphan_chunks(store: RedisStore, redis_server: RedisServer, ns: str) -> None:
    client = redis_server.client()
    for size in (20_000, 100, 5_000, 40_000, 10, 3_000):
        data = os.urandom(size)
        store.put(ns + "x", data, ttl=100)
        assert store.get(ns + "x") == data
        assert client.type(ns + "x") == (b"list" if size > 1024 else b"string")
        assert keys_under(client, ns) == {ns + "x"}


def test_get_many_mixes_plain_chunked_and_missing_in_order(store: RedisStore, ns: str) -> None:
    values = {ns + "p": b"plain", ns + "c": os.urandom(5000), ns + "e": b""}
    for key, data in values.items():
        store.put(key, data, ttl=100)
    wanted = [ns + "c", ns + "missing", ns + "p", ns + "e", ns + "c"]
    assert store.get_many(wanted) == [values[ns + "c"], None, b"plain", b"", values[ns + "c"]]


def test_unlink_counts_values_chunked_or_not(store: RedisStore, redis_server: RedisServer, ns: str) -> None:
    store.put(ns + "a", os.urandom(4000), ttl=100)
    store.put(ns + "b", b"small", ttl=100)
    assert store.unlink([ns + "a", ns + "b", ns + "gone"]) == 2
    assert keys_under(redis_server.client(), ns) == set()
    assert store.get(ns + "a") is None


def test_truncated_chunk_list_is_an_error_never_short_data(
    store: RedisStore, redis_server: RedisServer, ns: str
) -> None:
    store.put(ns + "t", os.urandom(5000), ttl=100)
    redis_server.client().rpop(ns + "t")
    with pytest.raises(CorruptPayloadError, match=r"truncated or altered.*5 chunks and 5000 bytes") as info:
        store.get(ns + "t")
    assert f"127.0.0.1:{redis_server.port}" in str(info.value)
    with pytest.raises(CorruptPayloadError):
        store.get_many([ns + "t"])


def test_foreign_list_is_an_error_never_data(store: RedisStore, redis_server: RedisServer, ns: str) -> None:
    redis_server.client().rpush(ns + "l", b"not", b"ours")
    with pytest.raises(CorruptPayloadError, match="did not write"):
        store.get(ns + "l")
    with pytest.raises(CorruptPayloadError, match="did not write"):
        store.get_many([ns + "l"])


# -- through the backend -------------------------------------------------------------------------


@pytest.fixture
def small_chunks(real_backend: str, xcom_settings: pytest.MonkeyPatch) -> str:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", "4096")
    return real_backend


def test_backend_round_trips_chunked_values_and_purges_their_chunks(
    small_chunks: str, redis_server: RedisServer
) -> None:
    client = redis_server.client()
    value = {"blob": os.urandom(50_000), "rows": list(range(2000))}
    reference = push(value)
    assert client.type(redis_key(reference)) == b"list"
    assert pull(reference) == value
    # A mapped pull (get_all) goes through deserialize_many: plain and chunked values together.
    small = push("tiny", map_index=1)
    assert ExclusiveRedisXCom.deserialize_many([reference, small, {"inline": 1}]) == [
        value,
        "tiny",
        {"inline": 1},
    ]
    ExclusiveRedisXCom.purge(own_row(reference))
    assert value_keys(client, small_chunks + ":*") == {redis_key(small)}
    with pytest.raises(XComExpiredError):
        pull(reference)


def test_clear_removes_chunked_values_and_counts_xcoms(small_chunks: str, redis_server: RedisServer) -> None:
    push(os.urandom(20_000), task_id="a")
    push(os.urandom(20_000), task_id="a", key="other")
    push("small", task_id="b")
    assert ExclusiveRedisXCom.clear(dag_id="etl", task_id="a", key="return_value") == 1
    assert ExclusiveRedisXCom.clear(dag_id="etl") == 2
    assert value_keys(redis_server.client(), small_chunks + ":*") == set()


def test_altered_chunk_is_caught_by_the_envelope_checksum(
    small_chunks: str, redis_server: RedisServer
) -> None:
    reference = push("z" * 30_000)
    client = redis_server.client()
    chunks = redis_key(reference)
    middle: bytes = client.lindex(chunks, 3)  # type: ignore[assignment]
    client.lset(chunks, 3, bytes([middle[0] ^ 1]) + middle[1:])  # type: ignore[arg-type]  # same length, one bit flipped
    with pytest.raises(RedisXComError, match="checksum"):
        pull(reference)


def test_server_with_lowered_proto_max_bulk_len_gets_fitting_chunks(
    xcom_settings: pytest.MonkeyPatch,
) -> None:
    """chunk_bytes left at its 256 MiB default: the store reads the server's 1 MiB limit and fits under it."""
    with RedisServer(["--proto-max-bulk-len", "1mb"]) as server:
        xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", server.url)
        value = os.urandom(3 * MiB + 5)
        reference = push(value)
        client = server.client()
        parts = client.lrange(redis_key(reference), 0, -1)
        assert len(parts) == 5 and all(len(p) <= MiB for p in parts[1:])
        assert pull(reference) == value
        # Without chunking, Redis itself refuses the value: the limit is real.
        with pytest.raises(redis.RedisError):  # "invalid bulk length", then the server hangs up
            redis.Redis(port=server.port, retry=Retry(NoBackoff(), 0)).set("plain", value)


def test_max_value_bytes_refuses_before_anything_is_written(
    real_backend: str, xcom_settings: pytest.MonkeyPatch, redis_server: RedisServer
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__MAX_VALUE_BYTES", "10000")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", "4096")
    old = push("previous value")
    with pytest.raises(
        ValueTooLargeError, match=r"task_id='t'.*above \[redis_xcom\] max_value_bytes = 10000"
    ):
        push(os.urandom(20_000))
    assert pull(old) == "previous value"  # the old value is untouched
    assert value_keys(redis_server.client(), real_backend + ":*") == {redis_key(old)}


def test_chunked_write_interrupted_by_a_frozen_server_is_all_or_nothing(
    xcom_settings: pytest.MonkeyPatch, fresh_redis_server: RedisServer
) -> None:
    """SIGSTOP Redis during a chunked write: the push fails in bounded time; afterwards the key holds the
    old value or the complete new one, never a manifest without all of its chunks."""
    server = fresh_redis_server
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", server.url)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", str(MiB))
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SOCKET_TIMEOUT", "0.5")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SOCKET_CONNECT_TIMEOUT", "0.5")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__RETRY_ATTEMPTS", "1")
    reference = push("old")
    assert server.proc is not None
    new = os.urandom(24 * MiB)
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(RedisUnavailableError, match=f"127.0.0.1:{server.port}"):
            push(new)
        assert time.monotonic() - started < 5
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    # The server may still apply a transaction that reached its socket buffer in full; never half of one.
    time.sleep(0.5)
    assert pull(reference) in ("old", new)
    client = server.client()
    assert len(value_keys(client)) == 1
