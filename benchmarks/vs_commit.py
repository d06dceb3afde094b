"""The hot path of this tree against an earlier commit, side by side in one run.

``python -m benchmarks.vs_commit --against REV [--against REV2] [--rounds N] [--cluster]``

The package of each REV is exported (``git archive``) to a temporary directory. Each round starts
one process per tree (each round starting with the next tree) against the same redis-server of the
run's own; each process times, interleaved sample by sample:
  small      push+pull of a small dict (serialize_value + deserialize_value of a row that carries
             its coordinates, so the pull's ownership check runs) over bare redis-py SET + GET of
             the codec's bytes: the ratio the README quotes
  records    20k records: Airflow's serde + JSON (the default backend's path) over the codec's
             encode + decode: the speed-up the README quotes
  large      push+pull of 64 MB of bytes over bare redis-py SET + GET of the codec's bytes
Reported: per tree, the median over rounds of each process's median; then this tree / REV per
figure (above 1 means this tree is slower; for a ratio figure, that it is further from bare
redis-py). Processes, not threads: each tree imports its own
``redis_xcom``; rotating the order spreads the machine's drift over every tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.cluster_process import RedisClusterProcesses
from tests.redis_process import RedisServer

ROOT = Path(__file__).resolve().parent.parent

# Runs with one tree first on sys.path; imports nothing from this repository but redis_xcom.
WORKER = r"""
import json, os, statistics, sys, time
from types import SimpleNamespace
import redis
import redis_xcom
from redis_xcom.backend import ExclusiveRedisXCom
try:
    from redis_xcom.runtime import get_runtime
except ImportError:  # before the runtime had a module of its own
    from redis_xcom.backend import _runtime as get_runtime

SAMPLES, CALLS = int(os.environ["VS_SAMPLES"]), int(os.environ["VS_CALLS"])
value = {"status": "ok", "rows": 3, "ids": [1, 2, 3]}
coords = {"key": "return_value", "task_id": "push", "dag_id": "bench", "run_id": "r1", "map_index": -1}
codec = get_runtime().codec
data = codec.encode(value)
if os.environ.get("VS_CLUSTER_SEED"):  # --cluster: bare RedisCluster, keys in the backend's run slot
    from redis.cluster import RedisCluster
    bare = RedisCluster.from_url(os.environ["VS_CLUSTER_SEED"])
    BARE_KEY, LARGE_KEY = "vs:{bench/r1}:bare", "vs:{bench/r1}:large"
else:
    bare = redis.Redis.from_url(os.environ["AIRFLOW__REDIS_XCOM__URL"])
    BARE_KEY, LARGE_KEY = "vs:bare", "vs:large"

def bare_setget():
    bare.set(BARE_KEY, data, ex=3600)
    return bare.get(BARE_KEY)

def backend():
    ref = ExclusiveRedisXCom.serialize_value(value, **coords)
    return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=ref, **coords))

n = int(os.environ["VS_RECORDS"])
records = [{"id": i, "name": f"user-{i}", "score": i * 0.5, "active": i % 2 == 0} for i in range(n)]
from airflow.sdk import serde

def default_path():
    return serde.deserialize(json.loads(json.dumps(serde.serialize(records))))

def ours():
    return codec.decode(codec.encode(records))

large = bytes(int(os.environ["VS_LARGE_MB"]) << 20)
large_coords = dict(coords, key="large")

def large_bare():
    bare.set(LARGE_KEY, codec.encode(large), ex=3600)
    return bare.get(LARGE_KEY)

def large_backend():
    ref = ExclusiveRedisXCom.serialize_value(large, **large_coords)
    return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=ref, **large_coords))

assert backend() == value and ours() == records == default_path()

def sample(fn, calls):
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls

out = {"package": redis_xcom.__file__, "bare": [], "backend": [], "default": [], "ours": []}
out.update(large_bare=[], large_backend=[])
for _ in range(3):
    sample(bare_setget, CALLS); sample(backend, CALLS)
for _ in range(SAMPLES):
    out["bare"].append(sample(bare_setget, CALLS))
    out["backend"].append(sample(backend, CALLS))
for _ in range(max(3, SAMPLES // 4)):
    out["default"].append(sample(default_path, 1))
    out["ours"].append(sample(ours, 1))
    if large:
        out["large_bare"].append(sample(large_bare, 1))
        out["large_backend"].append(sample(large_backend, 1))
print(json.dumps({k: statistics.median(v) if isinstance(v, list) and v else v for k, v in out.items()}))
"""


def export(rev: str, into: Path) -> Path:
    """The package as it was at rev, in a directory of its own."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "redis_xcom"], check=True, capture_output=True
    )
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive.stdout, check=True)
    return into


def run_worker(
    tree: Path,
    url: str,
    prefix: str,
    samples: int,
    calls: int,
    records: int,
    large_mb: int,
    cluster_seed: str = "",
) -> dict[str, Any]:
    env = dict(os.environ)
    env.update(
        VS_CLUSTER_SEED=cluster_seed,
        PYTHONPATH=str(tree),
        AIRFLOW__REDIS_XCOM__URL=url,
        AIRFLOW__REDIS_XCOM__KEY_PREFIX=prefix,
        VS_SAMPLES=str(samples),
        VS_CALLS=str(calls),
        VS_RECORDS=str(records),
        VS_LARGE_MB=str(large_mb),
    )
    # cwd is the tree: "-c" puts the working directory first on sys.path.
    done = subprocess.run(
        [sys.executable, "-c", WORKER], cwd=tree, env=env, check=True, capture_output=True, text=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    # The tree asked for is the tree measured, not the installed one.
    assert result["package"].startswith(str(tree)), result["package"]
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.vs_commit", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--against", required=True, action="append", help="an earlier commit (any git revision; repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--records", type=int, default=20_000, help="records in the codec figure")
    parser.add_argument("--large-mb", type=int, default=64, help="size of the large value (0: none)")
    parser.add_argument(
        "--cluster",
        action="store_true",
        help="on a Redis Cluster of the run's own (3 masters, 3 replicas), against bare RedisCluster",
    )
    args = parser.parse_args(argv)
    revs = [
        subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", rev], check=True, capture_output=True, text=True
        ).stdout.strip()
        for rev in args.against
    ]
    server: RedisServer | RedisClusterProcesses = (
        RedisClusterProcesses().start() if args.cluster else RedisServer().start()
    )
    cluster_seed = server.seed_url if isinstance(server, RedisClusterProcesses) else ""
    try:
        with tempfile.TemporaryDirectory(prefix="redis-xcom-vs-") as tmp:
            trees = {"this tree": ROOT}
            for rev in revs:
                trees[rev] = export(rev, Path(tmp) / rev)
            got: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
            for n in range(args.rounds):
                # Each round starts with the next tree: every tree runs first and last as often.
                order = list(trees)[n % len(trees) :] + list(trees)[: n % len(trees)]
                for name in order:
                    got[name].append(
                        run_worker(
                            trees[name],
                            server.url,
                            "vs",
                            args.samples,
                            args.calls,
                            args.records,
                            args.large_mb,
                            cluster_seed,
                        )
                    )
    finally:
        server.stop()
    figures = {
        "small push+pull / bare SET+GET": lambda r: r["backend"] / r["bare"],
        "small push+pull (µs)": lambda r: r["backend"] * 1e6,
        f"{args.records} records: default path / ours": lambda r: r["default"] / r["ours"],
        f"{args.records} records: ours encode+decode (ms)": lambda r: r["ours"] * 1e3,
    }
    if args.large_mb:
        figures[f"{args.large_mb} MB bytes push+pull / bare SET+GET"] = lambda r: (
            r["large_backend"] / r["large_bare"]
        )
    where = "a Redis Cluster (3 masters), bare = RedisCluster" if args.cluster else "one redis-server"
    print(f"{args.rounds} rounds on {where}, one process per tree per round, rotating order\n")
    print("| figure | this tree | " + " | ".join(f"{rev} | this tree / {rev}" for rev in revs) + " |")
    print("|---" * (2 + 2 * len(revs)) + "|")
    for label, figure in figures.items():
        mine = statistics.median(figure(r) for r in got["this tree"])
        cells = [f"{mine:.3f}"]
        for rev in revs:
            theirs = statistics.median(figure(r) for r in got[rev])
            cells += [f"{theirs:.3f}", f"{mine / theirs:.3f}"]
        print(f"| {label} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
