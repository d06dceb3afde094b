"""Airflow 3.4 runs the backend in worker threads (asyncio.to_thread in aset / aget_one / aget_all).

Pushes and pulls of many task instances with the same dag, run, task, map index and key (attempts,
loop iterations), from several threads at once, against a real redis-server: nothing crossed, and
one connection pool per process, shared by the threads.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from types import SimpleNamespace
from typing import Any

import pytest

from redis_xcom import runtime
from redis_xcom.backend import ExclusiveRedisXCom
from tests.redis_process import RedisServer

pytestmark = pytest.mark.integration

INSTANCES = 48
THREADS = 8


def coordinate(ti_id: uuid.UUID | None) -> Any:
    """What Airflow 3.4 passes to store_value (XComCoordinate; a namespace on older Airflows)."""
    fields = {
        "dag_id": "d",
        "run_id": "r",
        "task_id": "t",
        "ti_id": ti_id,
        "region_id": None,
        "region_index": 0,
    }
    try:
        from airflow.sdk.bases.xcom import XComCoordinate  # type: ignore[attr-defined]
    except ImportError:
        return SimpleNamespace(**fields)
    return XComCoordinate(**fields)


def test_concurrent_pushes_and_pulls_of_same_coordinates_never_cross(
    fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", fresh_redis_server.url)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", "threads")
    ti_ids = [uuid.uuid4() for _ in range(INSTANCES)]
    runtimes: set[int] = set()
    lock = threading.Lock()

    def push(ti_id: uuid.UUID) -> str:
        with lock:
            runtimes.add(id(runtime.get_runtime()))
        value = {"ti": str(ti_id), "payload": ti_id.hex * (1 + ti_id.int % 200)}
        return ExclusiveRedisXCom.store_value(coordinate(ti_id), "return_value", value)

    def pull(reference: str) -> Any:
        with lock:
            runtimes.add(id(runtime.get_runtime()))
        return ExclusiveRedisXCom.load_value(reference)

    async def scenario() -> tuple[list[str], list[Any], list[list[Any]]]:
        loop = asyncio.get_running_loop()
        from concurrent.futures import ThreadPoolExecutor

        loop.set_default_executor(ThreadPoolExecutor(max_workers=THREADS))
        references = await asyncio.gather(*(asyncio.to_thread(push, ti_id) for ti_id in ti_ids))
        # Pulls of single rows and batched pulls (get_all) at the same time.
        singles = asyncio.gather(*(asyncio.to_thread(pull, ref) for ref in references))
        batches = asyncio.gather(
            *(asyncio.to_thread(ExclusiveRedisXCom._load_many, list(references[i::4])) for i in range(4))
        )
        return references, await singles, await batches

    references, singles, batches = asyncio.run(scenario())

    assert len(set(references)) == INSTANCES, "every task instance has a key of its own"
    assert [v["ti"] for v in singles] == [str(t) for t in ti_ids]
    for i, batch in enumerate(batches):
        assert [v["ti"] for v in batch] == [str(t) for t in ti_ids[i::4]]
    assert all(v["payload"].startswith(uuid.UUID(v["ti"]).hex) for v in singles)
    assert len(runtimes) == 1, "one settings/codec/store (one connection pool) for the whole process"
    admin = fresh_redis_server.client()
    # The backend names its connections; the fixture's own clients (ping, admin) are not counted.
    ours = [c for c in admin.client_list() if c.get("name") == "redis-xcom"]
    admin.close()
    assert 1 <= len(ours) <= THREADS, f"at most one pooled connection per thread, got {len(ours)}"


def test_a_write_through_coordinates_gets_a_key_per_write(real_backend: str) -> None:
    first = ExclusiveRedisXCom.store_value(coordinate(None), "k", "one")
    second = ExclusiveRedisXCom.store_value(coordinate(None), "k", "two")
    assert first != second
    assert (ExclusiveRedisXCom.load_value(first), ExclusiveRedisXCom.load_value(second)) == ("one", "two")
