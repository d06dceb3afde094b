"""Hybrid mode: small-value push+pull with inline_max_bytes on and off, the default backend and bare Redis.

Per shape, side by side in one process and interleaved round by round:
  default      BaseXCom.serialize_value + deserialize_value: Airflow's default backend's own hooks
  inline_on    ExclusiveRedisXCom.serialize_value + deserialize_value with inline_max_bytes = THRESHOLD:
               the size walk, then the default's serializer (a value above it goes to Redis)
  inline_off   the same with inline_max_bytes = 0 (the default): the codec and one Redis round trip
  bare_redis   redis-py SET + GET of the codec's bytes of the value: Redis with nothing around it
The metadata DB write that every push ends in (the value, or a reference) is the same kind of row in
each case and is not part of these figures (the `airflow` benchmark measures whole DAG runs).
The last shape is far above the threshold: what deciding costs a value that goes to Redis anyway.
Per shape, the decision alone (inline.kept_inline) is also timed on its own, outside the rounds.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from benchmarks._common import BenchContext, configure_backend, fmt_seconds, timed
from benchmarks.bench_backend import _paired_median

NAME = "hybrid"
TTL = 3600
THRESHOLD = 2048


@dataclass(frozen=True)
class Shape:
    name: str
    make: Callable[[], Any]
    rounds: int


def shapes(smoke: bool) -> list[Shape]:
    rounds = 3 if smoke else 31
    return [
        Shape("flag", lambda: True, rounds),
        Shape("row count", lambda: 123_456, rounds),
        Shape("path", lambda: "s3://bucket/warehouse/2024/01/01/part-00000.parquet", rounds),
        Shape("small dict", lambda: {"status": "ok", "rows": 3, "ids": [1, 2, 3]}, rounds),
        Shape("1 KB str", lambda: "x" * 1024, rounds),
        Shape("1 MB str (above)", lambda: "x" * (1 << 20), 3 if smoke else 15),
    ]


def _variants(ctx: BenchContext, value: Any) -> dict[str, Callable[[], object]]:
    from airflow.sdk.bases.xcom import BaseXCom

    from redis_xcom.backend import ExclusiveRedisXCom
    from redis_xcom.runtime import get_runtime

    runtime = get_runtime()
    on = dataclasses.replace(runtime.settings, inline_max_bytes=THRESHOLD)
    off = dataclasses.replace(runtime.settings, inline_max_bytes=0)
    data = runtime.codec.encode(value)
    bare = ctx.client()
    bare_key = f"{ctx.prefix}:bare"
    coords = {"key": "return_value", "task_id": "push", "dag_id": "bench", "run_id": "r1", "map_index": -1}

    def default() -> object:
        stored = BaseXCom.serialize_value(value)
        return BaseXCom.deserialize_value(SimpleNamespace(value=stored))

    def backend_with(settings: Any) -> Callable[[], object]:
        def push_pull() -> object:
            runtime.settings = settings  # one attribute store: the two configurations share a process
            stored = ExclusiveRedisXCom.serialize_value(value, **coords)
            return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=stored))

        return push_pull

    def bare_redis() -> object:
        bare.set(bare_key, data, ex=TTL)
        return bare.get(bare_key)

    variants = {
        "default": default,
        "inline_on": backend_with(on),
        "inline_off": backend_with(off),
        "bare_redis": bare_redis,
    }
    # Same answer every way, or the comparison means nothing.
    assert all(fn() == value for name, fn in variants.items() if name != "bare_redis")
    return variants


def _decision_seconds(value: Any, calls: int) -> float:
    """The inline decision alone (inline.kept_inline), per call: the median of 5 timed batches."""
    from redis_xcom.inline import kept_inline

    batches = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls):
            kept_inline(value, THRESHOLD)
        batches.append((time.perf_counter() - started) / calls)
    return statistics.median(batches)


def run(ctx: BenchContext) -> dict[str, Any]:
    configure_backend(ctx)
    from redis_xcom.inline import kept_inline
    from redis_xcom.runtime import get_runtime

    rows = []
    min_sample = 0.005 if ctx.smoke else 0.05
    for shape in shapes(ctx.smoke):
        value = shape.make()
        variants = _variants(ctx, value)
        timing = timed(variants, baseline="default", rounds=shape.rounds, min_sample_time=min_sample)
        seconds = {name: timing[name]["seconds"]["median"] for name in variants}
        row = {
            "shape": shape.name,
            "inline": kept_inline(value, THRESHOLD),
            "seconds": seconds,
            # Medians of per-round ratios.
            "inline_on_over_default": timing["inline_on"]["ratio"]["median"],
            "inline_off_over_default": timing["inline_off"]["ratio"]["median"],
            "inline_on_over_inline_off": _paired_median(timing, "inline_on", "inline_off"),
            "inline_on_over_bare": _paired_median(timing, "inline_on", "bare_redis"),
            "inline_off_over_bare": _paired_median(timing, "inline_off", "bare_redis"),
            "timing": timing,
        }
        row["decision_s"] = _decision_seconds(value, 100 if ctx.smoke else 2000)
        rows.append(row)
        print(
            f"  {shape.name:>16} ({'inline' if row['inline'] else 'Redis'}): "
            + ", ".join(f"{name} {fmt_seconds(s)}" for name, s in seconds.items())
            + f"; on/default {row['inline_on_over_default']:.2f}x"
            + f", on/off {row['inline_on_over_inline_off']:.2f}x"
            + f", off/bare {row['inline_off_over_bare']:.2f}x"
            + f"; the decision alone {fmt_seconds(row['decision_s'])}",
            flush=True,
        )
        del variants, value
    get_runtime().settings = dataclasses.replace(get_runtime().settings, inline_max_bytes=0)
    ctx.cleanup_prefix()
    return {
        "description": "Push+pull of small values with [redis_xcom] inline_max_bytes = "
        f"{THRESHOLD} (inline_on) and 0 (inline_off), beside Airflow's default backend (BaseXCom's "
        "serialize + deserialize) and bare redis-py SET+GET of the same bytes; one process, "
        "interleaved rounds.",
        "threshold": THRESHOLD,
        "rows": rows,
    }
