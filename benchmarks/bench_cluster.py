"""Redis Cluster: push+pull through ExclusiveRedisXCom against bare RedisCluster SET/GET, and how runs spread.

On a cluster of the suite's own (3 masters, 1 replica each, loopback), side by side in one process
and interleaved round by round:
  bare_setget   RedisCluster.set(key, data, ex=ttl) + get(key), data = the codec's bytes, the key on
                the same slot as the backend's (so the same master)
  backend       ExclusiveRedisXCom.serialize_value(...) + deserialize_value(...) on redis+cluster://
The headline is backend / bare_setget per round (median and IQR of those ratios); the goal is 1.2x.
Spread: one XCom pushed for each of N runs (hourly scheduled run ids of one DAG), then the keys each
master holds (value and run index), max/mean.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import redis

from benchmarks._common import BenchContext, configure_backend, fmt_bytes, fmt_seconds, timed
from tests.cluster_process import RedisClusterProcesses
from tests.redis_process import REDIS_SERVER

NAME = "cluster"
TTL = 3600
GOAL = 1.2  # within 1.2x of bare RedisCluster (issue 14)
SPREAD_GOAL = 1.1  # max/mean keys per master


@dataclass(frozen=True)
class Shape:
    name: str
    make: Any
    rounds: int


def shapes(smoke: bool) -> list[Shape]:
    if smoke:
        return [
            Shape("small dict", lambda: {"status": "ok", "rows": 3, "ids": [1, 2, 3]}, 5),
            Shape("1 MB bytes", lambda: bytes(1 << 20), 3),
        ]
    return [
        Shape("small dict", lambda: {"status": "ok", "rows": 3, "ids": [1, 2, 3]}, 31),
        Shape("64 MB bytes", lambda: bytes(64 << 20), 15),
    ]


def _variants(cluster: RedisClusterProcesses, value: Any) -> dict[str, Any]:
    from redis_xcom.backend import ExclusiveRedisXCom
    from redis_xcom.runtime import get_runtime

    data = get_runtime().codec.encode(value)
    bare = cluster.client()
    bare_key = f"{get_runtime().settings.key_prefix}:{{bench/r1}}:bare"  # the backend's run slot
    coords = {"key": "return_value", "task_id": "push", "dag_id": "bench", "run_id": "r1", "map_index": -1}

    def bare_setget() -> object:
        bare.set(bare_key, data, ex=TTL)
        return bare.get(bare_key)

    def backend() -> object:
        ref = ExclusiveRedisXCom.serialize_value(value, **coords)
        return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=ref))

    assert backend() == value  # same answer both ways, or the comparison means nothing
    return {"bare_setget": bare_setget, "backend": backend}


def _spread(cluster: RedisClusterProcesses, runs: int) -> dict[str, Any]:
    from datetime import datetime, timedelta, timezone

    from redis_xcom.backend import ExclusiveRedisXCom

    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    for hour in range(runs):
        run_id = f"scheduled__{(start + timedelta(hours=hour)).isoformat()}"
        ExclusiveRedisXCom.serialize_value(
            hour, key="return_value", task_id="t", dag_id="hourly", run_id=run_id
        )
    per_master = {
        f"127.0.0.1:{port}": int(redis.Redis(port=port).dbsize()) for port in cluster.master_ports()
    }
    mean = statistics.mean(per_master.values())
    return {
        "runs": runs,
        "keys_per_master": per_master,
        "max_over_mean": max(per_master.values()) / mean if mean else 0.0,
    }


def run(ctx: BenchContext) -> dict[str, Any]:
    if REDIS_SERVER is None:
        raise RuntimeError("the cluster benchmark needs redis-server (scripts/ensure-redis-server.sh)")
    rows = []
    with RedisClusterProcesses() as cluster:
        configure_backend(ctx, url=cluster.url)
        from redis_xcom.runtime import get_runtime

        min_sample = 0.005 if ctx.smoke else 0.05
        for shape in shapes(ctx.smoke):
            value = shape.make()
            variants = _variants(cluster, value)
            encoded = len(get_runtime().codec.encode(value))
            v = timed(variants, baseline="bare_setget", rounds=shape.rounds, min_sample_time=min_sample)
            ratio = v["backend"]["ratio"]
            rows.append(
                {
                    "shape": shape.name,
                    "encoded_bytes": encoded,
                    "goal_ratio": GOAL,
                    "bare_setget_s": v["bare_setget"]["seconds"]["median"],
                    "backend_s": v["backend"]["seconds"]["median"],
                    "ratio_median": ratio["median"],
                    "ratio_p25": ratio["p25"],
                    "ratio_p75": ratio["p75"],
                    "timing": v,
                }
            )
            print(
                f"  {shape.name:>12} ({fmt_bytes(encoded)}): bare RedisCluster "
                f"{fmt_seconds(rows[-1]['bare_setget_s'])}, backend {fmt_seconds(rows[-1]['backend_s'])}; "
                f"backend/bare {ratio['median']:.3f}x [IQR {ratio['p25']:.3f}-{ratio['p75']:.3f}]",
                flush=True,
            )
            del variants, value
        for port in cluster.master_ports():
            redis.Redis(port=port).flushall()  # the suite's own cluster: only the spread's keys next
        spread = _spread(cluster, 300 if ctx.smoke else 10_000)
        print(
            f"  spread of {spread['runs']} runs: keys per master {spread['keys_per_master']}, "
            f"max/mean {spread['max_over_mean']:.3f}",
            flush=True,
        )
    goals = [
        {
            "goal": f"push+pull of {row['shape']} on a cluster within {GOAL}x of bare RedisCluster SET/GET",
            "target": GOAL,
            "measured": row["ratio_median"],
            "spread": [row["ratio_p25"], row["ratio_p75"]],
            "met": row["ratio_median"] <= GOAL,
        }
        for row in rows
    ]
    goals.append(
        {
            "goal": f"{spread['runs']} runs over 3 masters: max/mean keys per master at most {SPREAD_GOAL}",
            "target": SPREAD_GOAL,
            "measured": spread["max_over_mean"],
            "spread": None,
            "met": spread["max_over_mean"] <= SPREAD_GOAL,
        }
    )
    return {
        "description": "ExclusiveRedisXCom push+pull on a Redis Cluster (3 masters, 1 replica each) vs "
        "bare RedisCluster SET/GET of the same bytes on the same slot; spread of runs over masters.",
        "rows": rows,
        "spread": spread,
        "goals": goals,
    }
