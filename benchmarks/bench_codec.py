"""Codec benchmark: redis-xcom's Codec against bare msgpack, Airflow's serde + JSON, XComEncoder/JSON,
ormsgpack and (as a reference only) pickle, on typical XCom shapes.

    python -m benchmarks.bench_codec [--smoke] [--out benchmarks/results]

Times an encode+decode round trip per call, interleaved (benchmarks.harness), notes whether each
competitor gives back an equal value of the same type, the encoded size, and for the large shapes
the tracemalloc peak of encode and of decode (Arrow allocates outside tracemalloc's view, so
DataFrame peaks undercount). "ours-no-checksum" is the same codec without the checksum,
to show what the checksum costs. Writes <out>/codec.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import decimal
import importlib.util
import json
import pickle  # reference competitor only: redis_xcom itself never imports pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack

from benchmarks.harness import compare, format_seconds, markdown_table, peak_memory, write_json
from redis_xcom.codec import Codec

Pair = tuple[Callable[[Any], Any], Callable[[Any], Any]]  # (encode, decode)
LARGE = {"bytes_8mb", "numpy_64mb", "dataframe_1m"}


def shapes(smoke: bool) -> dict[str, Callable[[], Any]]:
    """Value factories by shape name (built lazily: some are large)."""
    records = 200 if smoke else 20_000
    scale = 64 if smoke else 1

    def metadata() -> dict[str, Any]:
        return {
            "dag_id": "etl_daily",
            "run_id": "scheduled__2024-06-01T00:00:00+00:00",
            "task_id": "load",
            "map_index": -1,
            "try_number": 1,
            "rows": 18234,
            "ok": True,
            "ratio": 0.973,
            "files": ["s3://bucket/a.parquet", "s3://bucket/b.parquet"],
        }

    def rows() -> list[dict[str, Any]]:
        return [
            {
                "id": i,
                "name": f"user-{i}",
                "email": f"user{i}@example.org",
                "score": i * 0.25,
                "active": i % 3 == 0,
                "tags": ["a", "b"],
                "parent": None,
            }
            for i in range(records)
        ]

    def rich() -> list[dict[str, Any]]:
        base = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
        return [
            {
                "at": base + dt.timedelta(minutes=i),
                "day": dt.date(2024, 1, 1 + i % 28),
                "amount": decimal.Decimal(f"{i}.{i % 100:02d}"),
                "span": (i, i + 10),
                "labels": {"x", f"l{i % 7}"},
            }
            for i in range(records // 10)
        ]

    out: dict[str, Callable[[], Any]] = {
        "small_metadata": metadata,
        f"records_{records}": rows,
        f"nested_rich_{records // 10}": rich,
        "bytes_8mb": lambda: bytes(range(256)) * (32768 // scale),
    }
    if importlib.util.find_spec("numpy"):
        import numpy as np

        out["numpy_64mb"] = lambda: np.random.default_rng(0).random((8 << 20) // scale)
        if importlib.util.find_spec("pandas") and importlib.util.find_spec("pyarrow"):
            import pandas as pd

            n = 1_000_000 // (1000 if smoke else 1)
            out["dataframe_1m"] = lambda: pd.DataFrame(
                {
                    "id": np.arange(n),
                    "value": np.random.default_rng(1).random(n),
                    "category": pd.Categorical(np.array(["a", "b", "c"])[np.arange(n) % 3]),
                }
            )
    return out


def competitors() -> dict[str, Pair]:
    from airflow.sdk import serde
    from airflow.utils.json import XComDecoder, XComEncoder

    if importlib.util.find_spec("pyarrow"):
        import pyarrow

        # Airflow's pandas serializer converts with pyarrow's thread pool, which has crashed the
        # process (SIGSEGV) on this stack; one thread for every competitor keeps the run alive and fair.
        pyarrow.set_cpu_count(1)
    ours, no_checksum = Codec(), Codec(checksum=False)
    pairs: dict[str, Pair] = {
        "ours": (ours.encode, ours.decode),
        "ours-no-checksum": (no_checksum.encode, no_checksum.decode),
        "msgpack": (lambda v: msgpack.packb(v), lambda b: msgpack.unpackb(b)),
        "airflow-serde+json": (
            lambda v: json.dumps(serde.serialize(v)),
            lambda s: serde.deserialize(json.loads(s)),
        ),
        "XComEncoder/json": (
            lambda v: json.dumps(v, cls=XComEncoder),
            lambda s: json.loads(s, cls=XComDecoder),
        ),
    }
    if importlib.util.find_spec("ormsgpack"):
        import ormsgpack

        opts = ormsgpack.OPT_SERIALIZE_NUMPY | ormsgpack.OPT_NON_STR_KEYS
        pairs["ormsgpack"] = (lambda v: ormsgpack.packb(v, option=opts), ormsgpack.unpackb)
    pairs["pickle (reference)"] = (lambda v: pickle.dumps(v, protocol=5), pickle.loads)  # reference only
    return pairs


def same(got: Any, expected: Any) -> bool:
    """Equal and of the same type, recursively (arrays and frames by content)."""
    if type(got) is not type(expected):
        return False
    module = type(expected).__module__.partition(".")[0]
    if module == "numpy":
        import numpy as np

        return bool(got.dtype == expected.dtype and np.array_equal(got, expected))
    if module == "pandas":
        return bool(got.equals(expected)) and list(got.dtypes) == list(expected.dtypes)
    if isinstance(expected, dict):
        return got.keys() == expected.keys() and all(same(got[k], expected[k]) for k in expected)
    if isinstance(expected, (list, tuple)):
        return len(got) == len(expected) and all(same(g, e) for g, e in zip(got, expected, strict=True))
    return bool(got == expected)


def run_shape(name: str, value: Any, pairs: dict[str, Pair], rounds: int, smoke: bool) -> dict[str, Any]:
    usable: dict[str, Callable[[], object]] = {}
    info: dict[str, dict[str, Any]] = {}
    for label, (encode, decode) in pairs.items():
        try:
            encoded = encode(value)
            exact = same(decode(encoded), value)
        except Exception as exc:  # a competitor that cannot represent the shape sits it out
            info[label] = {"supported": False, "error": f"{type(exc).__name__}: {str(exc)[:120]}"}
            continue
        info[label] = {"supported": True, "exact": exact, "size": len(encoded)}
        if label == "msgpack" and not exact:
            info[label]["supported"] = False  # bare msgpack is only a baseline where it is exact
            continue
        usable[label] = lambda e=encode, d=decode: d(e(value))
        if name in LARGE:
            _, info[label]["peak_encode"] = peak_memory(lambda e=encode: e(value))
            _, info[label]["peak_decode"] = peak_memory(lambda d=decode, b=encoded: d(b))
    stats = compare(usable, baseline="ours", rounds=rounds, min_sample_time=0.005 if smoke else 0.05)
    for label, s in stats.items():
        info[label].update(s.as_dict())
    return info


def print_tables(results: dict[str, dict[str, Any]]) -> None:
    for shape, info in results.items():
        rows = []
        for label, r in info.items():
            if not r["supported"]:
                rows.append([label, "n/a", "", "", "", "", "", r["error"][:60]])
                continue
            peaks = (
                f"{r['peak_encode'] / 2**20:.1f} / {r['peak_decode'] / 2**20:.1f}"
                if "peak_encode" in r
                else ""
            )
            rows.append(
                [
                    label,
                    format_seconds(r["median"]),
                    format_seconds(r["p25"]),
                    format_seconds(r["p75"]),
                    f"{r['ratio']:.2f}",
                    "yes" if r["exact"] else "no",
                    f"{r['size']:,}",
                    peaks,
                ]
            )
        print(f"\n### {shape}\n")
        print(
            markdown_table(
                [
                    "competitor",
                    "median round trip",
                    "p25",
                    "p75",
                    "x ours",
                    "exact",
                    "bytes",
                    "peak MiB enc / dec",
                ],
                rows,
            )
        )


def print_targets(results: dict[str, dict[str, Any]]) -> None:
    print("\n### Targets\n")
    for shape, info in results.items():
        if info.get("msgpack", {}).get("supported") and "ours" in info:
            target = " (target <= 1.15)" if shape == "small_metadata" or shape.startswith("records") else ""
            print(f"- {shape}: ours / msgpack = {1 / info['msgpack']['ratio']:.3f}x{target}")
        serde = info.get("airflow-serde+json", {})
        if serde.get("supported"):
            print(f"- {shape}: airflow-serde+json / ours = {serde['ratio']:.1f}x")
        if "ours-no-checksum" in info:
            cost = 100 * (1 / info["ours-no-checksum"]["ratio"] - 1)
            print(f"- {shape}: checksum costs {cost:+.1f}% of ours")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes and few rounds (seconds; for CI)")
    parser.add_argument("--out", default="benchmarks/results", help="directory for codec.json")
    parser.add_argument("--rounds", type=int, default=None, help="timing rounds (default 15, smoke 3)")
    args = parser.parse_args(argv)
    rounds = args.rounds or (3 if args.smoke else 15)
    pairs = competitors()
    results: dict[str, dict[str, Any]] = {}
    for name, make in shapes(args.smoke).items():
        value = make()
        shape_rounds = max(3, rounds // 2) if name in LARGE else rounds
        results[name] = run_shape(name, value, pairs, shape_rounds, args.smoke)
        del value
    print_tables(results)
    print_targets(results)
    path = write_json(
        Path(args.out) / "codec.json", {"smoke": args.smoke, "rounds": rounds, "results": results}
    )
    print(f"\nraw figures: {path}")


if __name__ == "__main__":
    main()
