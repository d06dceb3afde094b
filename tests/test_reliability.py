"""Faults against real redis-server processes that the suite starts, freezes, kills and restarts itself.

Every failure must reach the task as a RedisXComError naming host:port within the configured timeouts;
transient faults (a short outage, LOADING, a failover) are ridden out by the retries; after Redis comes
back the same process pushes and pulls again; a value that is gone is an XComExpiredError, never data.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from redis_xcom import ExclusiveRedisXCom, RedisUnavailableError, RedisXComError, XComExpiredError
from redis_xcom.runtime import reset_runtime
from tests.airflow_limits import CONNECT_AT_START_REASON, OLD_REDIS_PY
from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer
from tests.xcom_calls import pull, push, redis_key, value_keys

pytestmark = [pytest.mark.integration, pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING_REASON)]

MiB = 1024 * 1024
TIMEOUT = 0.5  # socket and connect timeout the tests configure
ATTEMPTS = 2  # retries after the first try
BACKOFF_CAP = 0.2
# Worst case of one operation: each try may spend a connect timeout and two socket timeouts (the
# command, and the handshake of a fresh connection), plus the back-off between tries, plus slack.
BOUND = (ATTEMPTS + 1) * 3 * TIMEOUT + ATTEMPTS * BACKOFF_CAP + 1.0


def configure(mp: pytest.MonkeyPatch, server: RedisServer, **options: object) -> None:
    """Point the backend at `server` with short timeouts; options override [redis_xcom] settings."""
    values: dict[str, object] = {
        "url": server.url,
        "socket_timeout": TIMEOUT,
        "socket_connect_timeout": TIMEOUT,
        "retry_attempts": ATTEMPTS,
        "retry_backoff_base": 0.05,
        "retry_backoff_cap": BACKOFF_CAP,
        **options,
    }
    for name, value in values.items():
        mp.setenv(f"AIRFLOW__REDIS_XCOM__{name.upper()}", str(value))
    reset_runtime()


@pytest.fixture
def server(fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch) -> Iterator[RedisServer]:
    configure(xcom_settings, fresh_redis_server)
    yield fresh_redis_server
    if fresh_redis_server.proc is not None:  # never leave a frozen server behind
        os.kill(fresh_redis_server.proc.pid, signal.SIGCONT)


def pid(server: RedisServer) -> int:
    assert server.proc is not None
    return server.proc.pid


def timed(call: Any) -> tuple[BaseException | None, float]:
    started = time.monotonic()
    try:
        call()
    except BaseException as exc:
        return exc, time.monotonic() - started
    return None, time.monotonic() - started


def assert_unavailable(error: BaseException | None, elapsed: float, server: RedisServer) -> None:
    assert isinstance(error, RedisUnavailableError), repr(error)
    assert f"127.0.0.1:{server.port}" in str(error)
    assert elapsed < BOUND, f"took {elapsed:.2f}s, bound {BOUND:.2f}s"


def assert_works_again() -> None:
    reference = push({"after": "recovery"}, task_id="after")
    assert pull(reference) == {"after": "recovery"}


# -- Redis dies or freezes mid-push / mid-pull --------------------------------------------------------


def test_frozen_server_mid_push_fails_within_timeouts_then_recovers(server: RedisServer) -> None:
    push(os.urandom(2 * MiB), task_id="warm-up")  # the process has connected and read the server's limits
    big = os.urandom(16 * MiB)  # more than the socket buffers hold: the write itself blocks
    os.kill(pid(server), signal.SIGSTOP)
    error, elapsed = timed(lambda: push(big))
    os.kill(pid(server), signal.SIGCONT)
    assert_unavailable(error, elapsed, server)
    assert "write" in str(error)
    assert_works_again()


def test_frozen_server_mid_pull_fails_within_timeouts_then_recovers(server: RedisServer) -> None:
    value = os.urandom(16 * MiB)
    reference = push(value)
    os.kill(pid(server), signal.SIGSTOP)
    error, elapsed = timed(lambda: pull(reference))
    os.kill(pid(server), signal.SIGCONT)
    assert_unavailable(error, elapsed, server)
    assert "read" in str(error)
    assert pull(reference) == value  # same process, same connection pool: it reconnects by itself
    assert_works_again()


@pytest.mark.parametrize("operation", ["push", "pull"])
def test_server_killed_mid_operation_fails_fast_and_a_restart_is_picked_up(
    server: RedisServer, operation: str
) -> None:
    """Freeze Redis so the operation is surely in flight, then SIGKILL it under the client's feet."""
    reference = push(os.urandom(8 * MiB))
    os.kill(pid(server), signal.SIGSTOP)
    threading.Timer(0.3, os.kill, (pid(server), signal.SIGKILL)).start()
    if operation == "push":
        error, elapsed = timed(lambda: push(os.urandom(16 * MiB), task_id="other"))
    else:
        error, elapsed = timed(lambda: pull(reference))
    assert_unavailable(error, elapsed, server)
    server.restart()  # same port, empty: no persistence
    assert_works_again()
    with pytest.raises(XComExpiredError):
        pull(reference)


@pytest.mark.skipif(OLD_REDIS_PY, reason=CONNECT_AT_START_REASON)
def test_short_outage_is_bridged_by_retries(xcom_settings: pytest.MonkeyPatch, server: RedisServer) -> None:
    configure(xcom_settings, server, retry_attempts=10, retry_backoff_base=0.1, retry_backoff_cap=0.5)
    reference = push("before")
    server.stop()
    restarter = threading.Timer(0.8, server.start)
    restarter.start()
    try:
        started = time.monotonic()
        again = push("during the outage", task_id="later")  # no exception: retried until the server is back
        assert time.monotonic() - started >= 0.5
    finally:
        restarter.join()
    assert pull(again) == "during the outage"
    with pytest.raises(XComExpiredError):
        pull(reference)  # the restart lost it


def test_retry_attempts_zero_fails_on_the_first_error(
    xcom_settings: pytest.MonkeyPatch, server: RedisServer
) -> None:
    configure(xcom_settings, server, retry_attempts=0)
    push("warm up")
    server.stop()
    error, elapsed = timed(lambda: push("x"))
    assert_unavailable(error, elapsed, server)
    assert elapsed < TIMEOUT + 0.5


def test_loading_after_a_restart_is_retried(xcom_settings: pytest.MonkeyPatch, server: RedisServer) -> None:
    """A restart with persistence answers LOADING for a while: pushes and pulls wait it out."""
    configure(xcom_settings, server, retry_attempts=40, retry_backoff_base=0.05, retry_backoff_cap=0.2)
    reference = push({"kept": "across the restart"})
    client = server.client()
    pipe = client.pipeline(transaction=False)
    for batch in range(20):
        pipe.mset({f"filler:{batch}:{i}": "x" for i in range(1000)})
    pipe.execute()
    client.save()
    # 20000 keys x 75 us: over a second of LOADING, answering clients every KiB it loads.
    server.extra_args += ["--key-load-delay", "75", "--loading-process-events-interval-bytes", "1024"]
    server.stop()
    starter = threading.Thread(target=server.start)  # start() itself waits for the end of LOADING
    starter.start()
    try:
        wait_for_loading(server.port)
        started = time.monotonic()
        assert pull(reference) == {"kept": "across the restart"}
        after = push("written once loaded")
        assert time.monotonic() - started > 0.3  # it did wait for the loading to end
    finally:
        starter.join()
    assert pull(after) == "written once loaded"


def wait_for_loading(port: int) -> None:
    """Until the restarted server answers LOADING (it accepts connections before it has loaded)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(100).startswith(b"-LOADING"):
                    return
        except OSError:
            pass
        time.sleep(0.02)
    raise AssertionError("the restarted server never reported LOADING")


def test_failover_read_only_replica_is_retried_until_promoted(
    xcom_settings: pytest.MonkeyPatch, fresh_redis_server: RedisServer
) -> None:
    """The URL points at a node that is still a replica (READONLY) and gets promoted a moment later."""
    primary = fresh_redis_server
    with RedisServer(["--replicaof", "127.0.0.1", str(primary.port)]) as replica:
        configure(xcom_settings, replica, retry_attempts=0)
        with pytest.raises(RedisXComError, match=f"127.0.0.1:{replica.port}.*read only replica") as info:
            push("refused by a replica")
        assert "refused by a replica" not in str(info.value)  # no payload bytes in the message
        configure(xcom_settings, replica, retry_attempts=12, retry_backoff_base=0.1, retry_backoff_cap=0.3)
        promote = threading.Timer(0.5, lambda: replica.client().replicaof("NO", "ONE"))
        promote.start()
        try:
            reference = push({"written": "after the failover"})
        finally:
            promote.join()
        assert pull(reference) == {"written": "after the failover"}


# -- Redis comes back empty, or evicts ------------------------------------------------------------------


def test_restart_without_persistence_pulls_raise_expired_with_guidance(
    xcom_settings: pytest.MonkeyPatch, server: RedisServer
) -> None:
    configure(xcom_settings, server, chunk_bytes=64 * 1024)
    small = push({"a": 1}, task_id="small")
    chunked = push(os.urandom(300_000), task_id="chunked")
    server.restart()
    for reference, task in ((small, "small"), (chunked, "chunked")):
        with pytest.raises(XComExpiredError) as info:
            pull(reference)
        message = str(info.value)
        assert f"task_id='{task}'" in message and f"127.0.0.1:{server.port}" in message
        assert "Clear and re-run" in message
    with pytest.raises(XComExpiredError):
        ExclusiveRedisXCom.deserialize_many([small, chunked])


def test_evicted_values_surface_as_expired_never_as_wrong_data(
    xcom_settings: pytest.MonkeyPatch, fresh_redis_server: RedisServer
) -> None:
    server = fresh_redis_server
    server.client().config_set("maxmemory", str(24 * MiB))
    server.client().config_set("maxmemory-policy", "allkeys-lru")
    configure(xcom_settings, server, chunk_bytes=256 * 1024)
    values = {i: os.urandom(700_000 if i % 3 else 200_000) for i in range(80)}  # 40 MB into 24 MB
    references = {i: push(v, map_index=i) for i, v in values.items()}
    survivors, expired = [], 0
    for i, reference in references.items():
        try:
            got = pull(reference)
        except XComExpiredError as exc:
            assert f"map_index={i}" in str(exc)
            expired += 1
        else:
            assert got == values[i]
            survivors.append(i)
    assert expired > 0 and survivors, (expired, survivors)
    # Pipelined reads (mapped pulls) too; reads can trigger evictions as well (output buffers count).
    for i in survivors:
        try:
            assert ExclusiveRedisXCom.deserialize_many([references[i], "inline"]) == [values[i], "inline"]
        except XComExpiredError as exc:
            assert f"map_index={i}" in str(exc)


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-lru", "volatile-ttl", "allkeys-random"])
def test_one_warning_per_process_when_redis_may_evict(
    server: RedisServer, caplog: pytest.LogCaptureFixture, policy: str
) -> None:
    server.client().config_set("maxmemory-policy", policy)
    reset_runtime()
    with caplog.at_level(logging.WARNING, logger="redis_xcom"):
        for i in range(5):
            pull(push(i, map_index=i))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "maxmemory-policy" in r.message]
    assert len(warnings) == 1, [r.message for r in caplog.records]
    assert policy in warnings[0].message and f"127.0.0.1:{server.port}" in warnings[0].message
    assert "noeviction" in warnings[0].message


def test_no_warning_with_noeviction(server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    assert server.client().config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    reset_runtime()
    with caplog.at_level(logging.WARNING, logger="redis_xcom"):
        pull(push("x"))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_noeviction_refuses_a_push_clearly_when_full(
    xcom_settings: pytest.MonkeyPatch, server: RedisServer
) -> None:
    """With the recommended noeviction a full Redis refuses the push: the task fails, nothing is lost."""
    server.client().config_set("maxmemory", str(8 * MiB))
    kept = push(b"kept", task_id="kept")
    with pytest.raises(RedisXComError, match=f"127.0.0.1:{server.port}.*maxmemory") as info:
        for i in range(20):
            push(os.urandom(MiB), map_index=i)
    assert "RX" not in str(info.value)  # the message carries no payload bytes
    assert pull(kept) == b"kept"


# -- integrity: what Redis hands back is checked before it is decoded -------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda b: b[: len(b) // 2], id="truncated"),
        pytest.param(lambda b: b[:-1], id="last-byte-missing"),
        pytest.param(lambda b: b + b"\x00", id="trailing-byte"),
        pytest.param(lambda b: b[:40] + bytes([b[40] ^ 0x10]) + b[41:], id="bit-flip"),
        pytest.param(lambda b: b"not ours at all", id="foreign"),
        pytest.param(lambda b: b"", id="empty"),
    ],
)
def test_damaged_value_raises_never_decodes_into_garbage(server: RedisServer, damage: Any) -> None:
    reference = push({"numbers": list(range(100)), "text": "payload" * 10}, task_id="victim")
    client = server.client()
    stored: bytes = client.get(redis_key(reference))  # type: ignore[assignment]
    client.set(redis_key(reference), damage(stored))
    with pytest.raises(RedisXComError, match="task_id='victim'"):
        pull(reference)


def test_damaged_chunk_manifest_raises(xcom_settings: pytest.MonkeyPatch, server: RedisServer) -> None:
    configure(xcom_settings, server, chunk_bytes=4096)
    reference = push(os.urandom(50_000))
    server.client().rpush(redis_key(reference), b"extra chunk")
    with pytest.raises(RedisXComError, match="truncated or altered"):
        pull(reference)


# -- bad input ------------------------------------------------------------------------------------------


def test_unserializable_value_raises_type_error_with_its_path_and_writes_nothing(server: RedisServer) -> None:
    previous = push({"previous": True}, task_id="producer")
    with pytest.raises(TypeError) as info:
        push({"rows": [{"ok": 1}, {"handle": threading.Lock()}]}, task_id="producer")
    message = str(info.value)
    assert "task_id='producer'" in message
    assert "['rows'][1]['handle']" in message and "lock" in message.lower()
    assert not isinstance(info.value, RedisXComError)  # a bug in the task's value, not a Redis problem
    assert pull(previous) == {"previous": True}
    assert len(value_keys(server.client())) == 1
