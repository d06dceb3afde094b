"""The backend's own contract, run unchanged on any topology: push, pull, deserialize_many / get_all,
purge, clear with adversarial ids, chunked values, TTLs and the run index.

The caller points the backend at the topology (AIRFLOW__REDIS_XCOM__*, chunk_bytes = CHUNK_BYTES)
and hands over an unrestricted client of its own that sees the same keys, for the checks.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from redis_xcom import ExclusiveRedisXCom, XComExpiredError, keys
from tests.xcom_calls import own_row, pull, push, redis_key, value_keys

CHUNK_BYTES = 4096
TTL = 3600


def backend_env(url: str, prefix: str, **options: str) -> dict[str, str]:
    """The AIRFLOW__REDIS_XCOM__* variables of a contract run (small chunks, a short TTL)."""
    env = {
        "AIRFLOW__REDIS_XCOM__URL": url,
        "AIRFLOW__REDIS_XCOM__KEY_PREFIX": prefix,
        "AIRFLOW__REDIS_XCOM__TTL": str(TTL),
        "AIRFLOW__REDIS_XCOM__CHUNK_BYTES": str(CHUNK_BYTES),
        "AIRFLOW__REDIS_XCOM__SOCKET_CONNECT_TIMEOUT": "2",
        "AIRFLOW__REDIS_XCOM__SOCKET_TIMEOUT": "2",
    }
    env.update({f"AIRFLOW__REDIS_XCOM__{name.upper()}": value for name, value in options.items()})
    return env


class _Supervisor:
    """The supervisor's answer to get_all's execution-API request: the rows' references."""

    def __init__(self, values: list[Any]) -> None:
        self.values = values

    def send(self, msg: Any) -> Any:
        from airflow.sdk.execution_time.comms import XComSequenceSliceResult

        return XComSequenceSliceResult(root=self.values)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def run_contract(admin: redis.Redis, prefix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything one node does, checked through admin (which must not be the backend's client)."""
    _round_trip_ttl_and_index(admin, prefix)
    _chunked_values(admin)
    _many_and_get_all(monkeypatch)
    _purge(admin)
    _clear_selects_exactly(admin, prefix)
    _expired(admin)
    assert not [k for k in admin.scan_iter(match="*", count=1000) if not _text(k).startswith(prefix + ":")], (
        "the backend wrote outside its key_prefix"
    )


def _round_trip_ttl_and_index(admin: redis.Redis, prefix: str) -> None:
    value = {"rows": [{"id": i, "name": f"n{i}"} for i in range(100)], "when": 1.5}
    reference = push(value, dag_id="contract", run_id="ttl")
    key = redis_key(reference)
    assert key.startswith(prefix + ":") and pull(reference) == value
    assert 0 < admin.ttl(key) <= TTL
    assert push({"again": True}, dag_id="contract", run_id="ttl") == reference, "a retry moved the key"
    assert pull(reference) == {"again": True}
    index = keys.run_index_key(prefix, "contract", "ttl")
    assert {_text(m) for m in admin.smembers(index)} == {key}
    assert admin.ttl(index) >= admin.ttl(key)


def _chunked_values(admin: redis.Redis) -> None:
    big = bytes(range(256)) * 200  # 51 KB: 13 chunks of CHUNK_BYTES
    reference = push(big, dag_id="contract", run_id="chunks", task_id="big")
    key = redis_key(reference)
    assert admin.type(key) == b"list" and admin.llen(key) > 10
    assert pull(reference) == big
    assert 0 < admin.ttl(key) <= TTL
    # A smaller value pushed again replaces the list whole: one key, nothing orphaned.
    assert pull(push("small", dag_id="contract", run_id="chunks", task_id="big")) == "small"
    assert admin.type(key) == b"string"


def _many_and_get_all(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.execution_time import task_runner

    mapped = {"dag_id": "contract", "run_id": "many", "task_id": "m"}
    references = [push({"i": i}, **mapped, map_index=i) for i in range(30)]  # type: ignore[arg-type]
    references.append(push(b"x" * 20_000, **mapped, map_index=30))  # type: ignore[arg-type]
    pulled = ExclusiveRedisXCom.deserialize_many(references)
    assert pulled[:30] == [{"i": i} for i in range(30)] and pulled[30] == b"x" * 20_000
    monkeypatch.setattr(task_runner, "SUPERVISOR_COMMS", _Supervisor(references), raising=False)
    got = ExclusiveRedisXCom.get_all(key="return_value", dag_id="contract", task_id="m", run_id="many")
    assert got == pulled


def _purge(admin: redis.Redis) -> None:
    kept = push("keep", dag_id="contract", run_id="purge", task_id="keep")
    purged = push("drop", dag_id="contract", run_id="purge", task_id="drop")
    ExclusiveRedisXCom.purge(own_row(purged))
    assert admin.exists(redis_key(purged)) == 0 and pull(kept) == "keep"


def _clear_selects_exactly(admin: redis.Redis, prefix: str) -> None:
    runs = ["r", "r:1", "r*", "r?", "[r]", "r/x", "ré"]
    dags = ["d", "d*", "d_v2"]
    for dag in dags:
        for run in runs:
            for task in ("t", "t*"):
                for key in ("k", "k*", "return_value"):
                    push(f"{dag}|{run}|{task}|{key}", dag_id=dag, run_id=run, task_id=task, key=key)
    every = value_keys(admin, f"{prefix}:*")

    def remaining(dag: str) -> set[str]:
        return {k for k in value_keys(admin, f"{prefix}:*") if keys.parse_key(k).dag_id == dag}  # type: ignore[union-attr]

    assert ExclusiveRedisXCom.clear(dag_id="d", run_id="r", key="k*") == 2
    assert ExclusiveRedisXCom.clear(dag_id="d", run_id="r") == 4
    gone = every - value_keys(admin, f"{prefix}:*")
    assert {(c.dag_id, c.run_id) for c in map(keys.parse_key, gone)} == {("d", "r")}  # type: ignore[union-attr]
    assert ExclusiveRedisXCom.clear(dag_id="d", task_id="t*") == len(runs) * 3 - 3
    assert {keys.parse_key(k).task_id for k in remaining("d")} == {"t"}  # type: ignore[union-attr]
    before = remaining("d_v2") | remaining("d*")
    assert ExclusiveRedisXCom.clear(dag_id="d") == (len(runs) - 1) * 3
    assert remaining("d") == set() and remaining("d_v2") | remaining("d*") == before
    for dag in ("d*", "d_v2"):
        ExclusiveRedisXCom.clear(dag_id=dag)


def _expired(admin: redis.Redis) -> None:
    reference = push("soon gone", dag_id="contract", run_id="expired")
    admin.delete(redis_key(reference))
    with pytest.raises(XComExpiredError, match="contract"):
        pull(reference)
