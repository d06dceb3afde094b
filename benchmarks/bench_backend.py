"""Item 2: one push + pull through ExclusiveRedisXCom against bare redis-py SET/GET of the same bytes.

Per shape, side by side in one process and interleaved round by round:
  bare_setget   client.set(key, data, ex=ttl) + client.get(key), data = the codec's bytes of the value
  backend       ExclusiveRedisXCom.serialize_value(...) + deserialize_value(...) (codec, key, store):
                how Airflow 3.0 to 3.3 push and pull
  store_value   ExclusiveRedisXCom.store_value(coordinate, ...) + load_value(...): how Airflow 3.4
                pushes and pulls (a key per task instance); store_value / backend per round is the
                3.4 path's cost over the 3.0-3.3 one
  store_only    RedisStore.put + RedisStore.get of those bytes (MULTI/EXEC, chunking): the Redis part
  bare_indexed  bare redis-py EVALSHA of the backend's SET-and-index script + GET (small values):
                what the run index costs Redis, without any of the backend's client-side code
  codec_only    Codec.encode + Codec.decode, no Redis: the codec's own time, its code hot in the caches
  bare_codec    bare_setget with Codec.encode before the SET and Codec.decode after the GET: what the
                codec costs between round trips, where its code runs cold (small values: several
                times codec_only on a VM, see docs/benchmarks.md)
The headline is backend / bare_setget per round (median and IQR of those ratios).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import statistics
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from benchmarks._common import BenchContext, configure_backend, fmt_bytes, fmt_seconds, timed
from redis_xcom.storage.store import _SET_AND_INDEX as SET_AND_INDEX
from redis_xcom.storage.store import SCRIPT_VALUE_MAX

NAME = "backend"
TTL = 3600


@dataclass(frozen=True)
class Shape:
    name: str
    make: Callable[[], Any]
    rounds: int
    goal: float | None = None  # the ratio backend / bare the issue asks for, if any


def _records(n: int) -> list[dict[str, Any]]:
    return [{"id": i, "name": f"user-{i}", "score": i * 0.5, "active": i % 2 == 0} for i in range(n)]


def shapes(smoke: bool) -> list[Shape]:
    if smoke:
        return [
            Shape("small dict", lambda: {"status": "ok", "rows": 3, "ids": [1, 2, 3]}, 5, 1.1),
            Shape("1 KB str", lambda: "x" * 1024, 5, 1.1),
            Shape("2k records", lambda: _records(2_000), 3),
        ]
    return [
        Shape("small dict", lambda: {"status": "ok", "rows": 3, "ids": [1, 2, 3]}, 41, 1.1),
        Shape("1 KB str", lambda: "x" * 1024, 41, 1.1),
        Shape("20k records", lambda: _records(20_000), 25),
        Shape("1 MB bytes", lambda: b"\x01" * (1 << 20), 31),
        Shape("64 MB bytes", lambda: bytes(64 << 20), 15, 1.0),
    ]


def _variants(ctx: BenchContext, value: Any) -> dict[str, Callable[[], object]]:
    from redis_xcom.backend import ExclusiveRedisXCom
    from redis_xcom.runtime import get_runtime

    runtime = get_runtime()
    codec = runtime.codec
    data = codec.encode(value)
    bare = ctx.client()
    bare_key = f"{ctx.prefix}:bare"
    coords = {"key": "return_value", "task_id": "push", "dag_id": "bench", "run_id": "r1", "map_index": -1}

    def bare_setget() -> object:
        bare.set(bare_key, data, ex=TTL)
        return bare.get(bare_key)

    def backend() -> object:
        ref = ExclusiveRedisXCom.serialize_value(value, **coords)
        return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=ref))

    coordinate = _coordinate("bench", "r1", "push", uuid.uuid4())

    def store_value() -> object:
        ref = ExclusiveRedisXCom.store_value(coordinate, "return_value", value)
        return ExclusiveRedisXCom.load_value(ref)

    store_key = f"{ctx.prefix}:store"

    def store_only() -> object:
        runtime.store.put(store_key, data, TTL)
        return runtime.store.get(store_key)

    def codec_only() -> object:
        return codec.decode(codec.encode(value))

    def bare_codec() -> object:
        bare.set(bare_key, codec.encode(value), ex=TTL)
        return codec.decode(bare.get(bare_key))  # type: ignore[arg-type]

    # Same answer both ways, or the comparison means nothing.
    assert backend() == value and store_value() == value
    variants = {
        "bare_setget": bare_setget,
        "backend": backend,
        "store_value": store_value,
        "store_only": store_only,
        "codec_only": codec_only,
        "bare_codec": bare_codec,
    }
    if len(data) <= SCRIPT_VALUE_MAX:
        sha = bare.script_load(SET_AND_INDEX.text)
        index_key = f"{ctx.prefix}:{{bench/r1}}#index"
        indexed_key = f"{ctx.prefix}:{{bench/r1}}:bare:-1:k"

        def bare_indexed() -> object:
            bare.evalsha(sha, 2, indexed_key, index_key, data, TTL)
            return bare.get(indexed_key)

        variants["bare_indexed"] = bare_indexed
    return variants


def _coordinate(dag_id: str, run_id: str, task_id: str, ti_id: uuid.UUID) -> Any:
    """What Airflow 3.4 passes to store_value: its XComCoordinate where it has one."""
    fields = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "ti_id": ti_id}
    try:
        from airflow.sdk.bases.xcom import XComCoordinate  # type: ignore[attr-defined]
    except ImportError:
        return SimpleNamespace(**fields, region_id=None, region_index=None)
    return XComCoordinate(**fields)


def _short(filename: str) -> str:
    return filename.rsplit("/site-packages/", 1)[-1].rsplit("/work/main/", 1)[-1]


def _profile(fn: Callable[[], object], calls: int, top: int = 12) -> list[dict[str, Any]]:
    """Where the backend's time goes: the top functions by own time (cProfile)."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(calls):
        fn()
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = stats.total_tt  # type: ignore[attr-defined]
    rows = []
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append(
            {
                "function": f"{_short(filename)}:{line}({func})",
                "calls": ncalls,
                "tottime_per_call_s": tottime / calls,
                "share_of_total": tottime / total if total else 0.0,
                "cumtime_per_call_s": cumtime / calls,
            }
        )
    rows.sort(key=lambda r: r["tottime_per_call_s"], reverse=True)
    return rows[:top]


def _paired_median(timing: dict[str, Any], numerator: str, denominator: str) -> float:
    """The median over rounds of one variant's time over another's in the same round."""
    pairs = zip(timing[numerator]["raw_seconds"], timing[denominator]["raw_seconds"], strict=True)
    return statistics.median(a / b for a, b in pairs)


def run(ctx: BenchContext) -> dict[str, Any]:
    configure_backend(ctx)
    from redis_xcom.runtime import get_runtime

    rows = []
    profiles = {}
    min_sample = 0.005 if ctx.smoke else 0.05
    for shape in shapes(ctx.smoke):
        value = shape.make()
        variants = _variants(ctx, value)
        encoded = get_runtime().codec.encode(value)
        timing = timed(variants, baseline="bare_setget", rounds=shape.rounds, min_sample_time=min_sample)
        v = timing
        ratio = v["backend"]["ratio"]
        row = {
            "shape": shape.name,
            "encoded_bytes": len(encoded),
            "goal_ratio": shape.goal,
            "bare_setget_s": v["bare_setget"]["seconds"]["median"],
            "backend_s": v["backend"]["seconds"]["median"],
            "codec_only_s": v["codec_only"]["seconds"]["median"],
            "store_only_s": v["store_only"]["seconds"]["median"],
            "store_ratio_median": v["store_only"]["ratio"]["median"],
            "store_value_s": v["store_value"]["seconds"]["median"],
            # Airflow 3.4's path (store_value + load_value) over 3.0-3.3's, paired per round.
            "store_value_over_serialize_median": _paired_median(v, "store_value", "backend"),
            "ratio_median": ratio["median"],
            "ratio_p25": ratio["p25"],
            "ratio_p75": ratio["p75"],
            "codec_ratio_median": v["codec_only"]["ratio"]["median"],
            # The codec between round trips (bare SET/GET with encode and decode) over bare SET/GET.
            "bare_codec_ratio_median": v["bare_codec"]["ratio"]["median"],
            # Redis's own cost of the run index (bare EVALSHA of the script / bare SET), and the
            # backend's client-side cost over that (backend / bare EVALSHA).
            "index_ratio_median": v["bare_indexed"]["ratio"]["median"] if "bare_indexed" in v else None,
            "backend_over_indexed_median": (
                _paired_median(v, "backend", "bare_indexed") if "bare_indexed" in v else None
            ),
            "timing": timing,
        }
        rows.append(row)
        print(
            f"  {shape.name:>12} ({fmt_bytes(len(encoded))}): bare {fmt_seconds(row['bare_setget_s'])}, "
            f"backend {fmt_seconds(row['backend_s'])}, store {fmt_seconds(row['store_only_s'])}, "
            f"codec {fmt_seconds(row['codec_only_s'])}; "
            f"backend/bare {ratio['median']:.3f}x [IQR {ratio['p25']:.3f}-{ratio['p75']:.3f}]"
            + f"; bare+codec/bare {row['bare_codec_ratio_median']:.3f}x"
            + f"; store_value/serialize_value {row['store_value_over_serialize_median']:.3f}x"
            + (
                f"; index script/bare {row['index_ratio_median']:.3f}x, "
                f"backend/index script {row['backend_over_indexed_median']:.3f}x"
                if row["index_ratio_median"] is not None
                else ""
            ),
            flush=True,
        )
        if shape.name in ("small dict", "64 MB bytes", "20k records"):
            calls = 1 if "64 MB" in shape.name else (3 if "records" in shape.name else 2000)
            calls = min(calls, 50) if ctx.smoke else calls
            profiles[shape.name] = _profile(variants["backend"], calls)
        del variants, value, encoded
    ctx.cleanup_prefix()
    goals = [
        {
            "goal": f"push+pull of {row['shape']} within {row['goal_ratio']}x of bare redis-py SET/GET",
            "target": row["goal_ratio"],
            "measured": row["ratio_median"],
            "spread": [row["ratio_p25"], row["ratio_p75"]],
            "met": row["ratio_median"] <= row["goal_ratio"],
        }
        for row in rows
        if row["goal_ratio"] is not None
    ]
    return {
        "description": "ExclusiveRedisXCom push+pull (serialize_value + deserialize_value) vs bare "
        "redis-py SET/GET of the same encoded bytes, per shape; one process, interleaved rounds.",
        "rows": rows,
        "profiles": profiles,
        "goals": goals,
    }
