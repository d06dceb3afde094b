"""Load: many processes pushing and pulling mixed sizes against one real redis-server.

Each value carries its own coordinates, writer, sequence number and a checksum of its payload, and
is checked on every pull: zero lost, zero crossed. Afterwards the keyspace holds exactly one value per
XCom pushed (plus the chunk lists of the chunked ones): pushing the same XCom again leaves no orphans.

Size: REDIS_XCOM_LOAD_PROCESSES x REDIS_XCOM_LOAD_OPS (default 8 x 2000, as issue 5 asks).
"""

from __future__ import annotations

import math
import multiprocessing
import os
import random
import time
import zlib
from types import SimpleNamespace
from typing import Any

import pytest

# Imported here, before the pool forks: each worker then skips the seconds of importing Airflow.
from redis_xcom.backend import ExclusiveRedisXCom
from redis_xcom.runtime import reset_runtime
from redis_xcom.storage.store import is_manifest
from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer
from tests.xcom_calls import value_keys

pytestmark = [pytest.mark.integration, pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING_REASON)]

PROCESSES = int(os.environ.get("REDIS_XCOM_LOAD_PROCESSES", "8"))
OPS = int(os.environ.get("REDIS_XCOM_LOAD_OPS", "2000"))
MAX_SIZE = 1024 * 1024
CHUNK_BYTES = 256 * 1024  # so that the biggest values are chunked too
DAG = "load"


def _size(rng: random.Random) -> int:
    """Log-uniform from 16 B to 1 MiB: mostly small values, some big ones, a few of exactly 1 MiB."""
    if rng.random() < 0.01:
        return MAX_SIZE
    return int(math.exp(rng.uniform(math.log(16), math.log(MAX_SIZE))))


def _coordinates(worker: int, rng: random.Random) -> tuple[str, str, int, bool]:
    """(run_id, task_id, map_index, exclusive): own run, own keys in a shared run, or keys all share."""
    kind = rng.random()
    if kind < 0.5:
        return f"own-{worker}", f"t{rng.randrange(10)}", rng.randrange(5), True
    if kind < 0.8:
        return "shared", f"w{worker}", rng.randrange(10), True
    return "shared", "everyone", rng.randrange(8), False


def _check(value: Any, run_id: str, task_id: str, map_index: int) -> None:
    """A pulled value must be the one written for these coordinates, intact."""
    assert (value["dag"], value["run"], value["task"], value["map"]) == (DAG, run_id, task_id, map_index), (
        f"crossed: pulled {value['run']}/{value['task']}/{value['map']} for {run_id}/{task_id}/{map_index}"
    )
    assert zlib.crc32(value["blob"]) == value["crc"] and len(value["blob"]) == value["size"], "damaged"


def _worker(worker: int, url: str, ops: int, seed: int) -> dict[str, Any]:
    os.environ["AIRFLOW__REDIS_XCOM__URL"] = url
    os.environ["AIRFLOW__REDIS_XCOM__CHUNK_BYTES"] = str(CHUNK_BYTES)
    reset_runtime()
    rng = random.Random(seed)
    written: dict[tuple[str, str, int], int] = {}  # exclusive coordinates -> last sequence number
    pushed: set[tuple[str, str, int]] = set()
    stats: dict[str, Any] = {"pushes": 0, "pulls": 0, "many_pulls": 0, "bytes": 0, "chunked": 0}
    stats["worker"] = worker
    for seq in range(ops):
        run_id, task_id, map_index, exclusive = _coordinates(worker, rng)
        coords = (run_id, task_id, map_index)
        if coords not in pushed or rng.random() < 0.5:
            size = _size(rng)
            blob = rng.randbytes(size)
            value = {"dag": DAG, "run": run_id, "task": task_id, "map": map_index, "writer": worker,
                     "seq": seq, "size": size, "crc": zlib.crc32(blob), "blob": blob}  # fmt: skip
            reference = ExclusiveRedisXCom.serialize_value(
                value, key="return_value", task_id=task_id, dag_id=DAG, run_id=run_id, map_index=map_index
            )
            assert reference.endswith(f":{map_index}:return_value")
            pushed.add(coords)
            if exclusive:
                written[coords] = seq
            stats["pushes"] += 1
            stats["bytes"] += size
            stats["chunked"] += size > CHUNK_BYTES
            continue
        reference = f"redis-xcom://xcom:{{{DAG}/{run_id}}}:{task_id}:{map_index}:return_value"
        if rng.random() < 0.2:
            # A mapped pull: every pushed map index of this task, one pipelined read.
            indexes = sorted(m for (r, t, m) in pushed if (r, t) == (run_id, task_id))
            refs = [f"redis-xcom://xcom:{{{DAG}/{run_id}}}:{task_id}:{m}:return_value" for m in indexes]
            values = ExclusiveRedisXCom.deserialize_many(refs)
            for m, got in zip(indexes, values, strict=True):
                _check(got, run_id, task_id, m)
                if exclusive:
                    assert (got["writer"], got["seq"]) == (worker, written[(run_id, task_id, m)]), "stale"
            stats["many_pulls"] += 1
        else:
            got = ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=reference))
            _check(got, run_id, task_id, map_index)
            if exclusive:  # only this worker writes here: it must read back its own latest value
                assert (got["writer"], got["seq"]) == (worker, written[coords]), "stale or lost"
        stats["pulls"] += 1
    stats["coordinates"] = sorted(pushed)
    return stats


def _run(args: tuple[int, str, int, int]) -> dict[str, Any]:
    return _worker(*args)


def test_parallel_pushes_and_pulls_lose_nothing_cross_nothing_orphan_nothing(
    fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch
) -> None:
    server: RedisServer = fresh_redis_server
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", server.url)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", str(CHUNK_BYTES))
    started = time.monotonic()
    context = multiprocessing.get_context(
        "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    )
    with context.Pool(PROCESSES) as pool:
        results = pool.map(_run, [(w, server.url, OPS, 1000 + w) for w in range(PROCESSES)])
    elapsed = time.monotonic() - started

    pushes = sum(r["pushes"] for r in results)
    pulls = sum(r["pulls"] for r in results)
    assert pushes + pulls == PROCESSES * OPS
    assert sum(r["chunked"] for r in results) > 0, "no value was big enough to be chunked"
    assert sum(r["many_pulls"] for r in results) > 0

    # Exactly one key per XCom pushed: the 2nd..nth pushes of an XCom replaced it, chunks included.
    coordinates = {tuple(c) for r in results for c in r["coordinates"]}
    client = server.client()
    all_keys = value_keys(client)
    assert all_keys == {f"xcom:{{{DAG}/{r}}}:{t}:{m}:return_value" for r, t, m in coordinates}
    chunk_lists = [k for k in all_keys if client.type(k) == b"list"]
    for chunked in chunk_lists:  # every list is a whole chunked value, manifest first
        assert is_manifest(client.lindex(chunked, 0)), f"not a chunked value: {chunked}"  # type: ignore[arg-type]
    # And the last word: every XCom still reads back intact.
    reset_runtime()
    for run_id, task_id, map_index in coordinates:
        reference = f"redis-xcom://xcom:{{{DAG}/{run_id}}}:{task_id}:{map_index}:return_value"
        _check(
            ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=reference)), run_id, task_id, map_index
        )

    megabytes = sum(r["bytes"] for r in results) / 1e6
    print(
        f"\nload: {PROCESSES} processes x {OPS} ops = {pushes} pushes + {pulls} pulls, {megabytes:.0f} MB "
        f"pushed, {len(coordinates)} XComs, {len(chunk_lists)} chunked now, {elapsed:.1f}s"
    )
