"""Metrics reach statsd through Airflow's Stats from a real Airflow process; none are sent when off."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from redis_xcom import metrics
from tests.redis_process import RedisServer

pytestmark = pytest.mark.integration

# Pushes two values, pulls them (one pull of a gone value), the way a task process does.
SCRIPT = """
from types import SimpleNamespace
from redis_xcom import ExclusiveRedisXCom, XComExpiredError
ref = ExclusiveRedisXCom.serialize_value("x" * 100, key="k", task_id="t", dag_id="d", run_id="r")
ExclusiveRedisXCom.serialize_value([1, 2], key="k2", task_id="t", dag_id="d", run_id="r")
assert ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=ref)) == "x" * 100
try:
    ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value="redis-xcom://metrics:{d/r}:t:-1:gone"))
except XComExpiredError:
    pass
"""


def run_task_like_process(
    tmp_path: Path, redis: RedisServer, statsd_on: bool, port: int, **options: str
) -> None:
    """SCRIPT in a process of its own; options: more [redis_xcom] options (name=value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({f"AIRFLOW__REDIS_XCOM__{name.upper()}": value for name, value in options.items()})
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW__METRICS__STATSD_ON=str(statsd_on),
        AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
        AIRFLOW__METRICS__STATSD_PORT=str(port),
        AIRFLOW__METRICS__STATSD_PREFIX="airflow",
        AIRFLOW__REDIS_XCOM__URL=redis.url,
        AIRFLOW__REDIS_XCOM__KEY_PREFIX="metrics",
    )
    subprocess.run([sys.executable, "-c", SCRIPT], env=env, check=True, timeout=120)


def received(listener: socket.socket) -> dict[str, list[str]]:
    """statsd lines by metric name (`airflow.redis_xcom.push:1|c` -> {"redis_xcom.push": ["1|c"]})."""
    found: dict[str, list[str]] = {}
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            packet = listener.recv(65536).decode()
        except TimeoutError:
            continue
        for line in packet.splitlines():
            name, _, value = line.partition(":")
            found.setdefault(name.removeprefix("airflow."), []).append(value)
    return found


@pytest.fixture
def listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    yield sock
    sock.close()


def test_metrics_arrive_at_a_statsd_listener(
    tmp_path: Path, fresh_redis_server: RedisServer, listener: socket.socket
) -> None:
    run_task_like_process(tmp_path, fresh_redis_server, True, listener.getsockname()[1])
    got = received(listener)
    assert got.get(metrics.PUSHES) == ["1|c", "1|c"]
    assert got.get(metrics.PULLS) == ["1|c"]
    assert got.get(metrics.EXPIRED_PULLS) == ["1|c"]
    assert sum(int(v.split("|")[0]) for v in got[metrics.BYTES_PUSHED]) > 100
    assert int(got[metrics.BYTES_PULLED][0].split("|")[0]) > 100
    assert len(got[metrics.PUSH_TIME]) == 2 and got[metrics.PUSH_TIME][0].endswith("|ms")
    assert len(got[metrics.PULL_TIME]) == 1
    assert set(got) <= set(metrics.METRICS) | {n for n in got if not n.startswith("redis_xcom.")}


def test_inline_pushes_are_counted_apart(
    tmp_path: Path, fresh_redis_server: RedisServer, listener: socket.socket
) -> None:
    # [1, 2] is 6 bytes of JSON: inline; "x" * 100 is 102: Redis.
    port = listener.getsockname()[1]
    run_task_like_process(tmp_path, fresh_redis_server, True, port, inline_max_bytes="50")
    got = received(listener)
    assert got.get(metrics.PUSHES_INLINE) == ["1|c"]
    assert got.get(metrics.PUSHES) == ["1|c"]


def test_redis_errors_are_counted(tmp_path: Path, listener: socket.socket) -> None:
    down = RedisServer()  # never started: nothing listens on its port
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(tmp_path),
        AIRFLOW__METRICS__STATSD_ON="True",
        AIRFLOW__METRICS__STATSD_HOST="127.0.0.1",
        AIRFLOW__METRICS__STATSD_PORT=str(listener.getsockname()[1]),
        AIRFLOW__REDIS_XCOM__URL=down.url,
        AIRFLOW__REDIS_XCOM__RETRY_ATTEMPTS="0",
        AIRFLOW__REDIS_XCOM__SOCKET_CONNECT_TIMEOUT="0.5",
    )
    script = (
        "from redis_xcom import ExclusiveRedisXCom, RedisUnavailableError\n"
        "try:\n"
        "    ExclusiveRedisXCom.serialize_value(1, key='k', task_id='t', dag_id='d', run_id='r')\n"
        "except RedisUnavailableError:\n"
        "    pass\n"
    )
    subprocess.run([sys.executable, "-c", script], env=env, check=True, timeout=120)
    got = received(listener)
    assert got.get(metrics.REDIS_ERRORS) == ["1|c"]
    assert metrics.PUSHES not in got


def test_nothing_is_sent_when_metrics_are_off(
    tmp_path: Path, fresh_redis_server: RedisServer, listener: socket.socket
) -> None:
    run_task_like_process(tmp_path, fresh_redis_server, False, listener.getsockname()[1])
    assert received(listener) == {}


def test_the_docs_list_every_metric() -> None:
    page = (Path(__file__).parent.parent / "docs" / "metrics.md").read_text(encoding="utf-8")
    for name, (kind, meaning) in metrics.METRICS.items():
        assert f"| `{name}` | {kind} | {meaning} |" in page, name
