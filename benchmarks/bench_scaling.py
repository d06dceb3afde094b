"""Item 4: scaling. Pulling all outputs of N mapped tasks (round trips, time); clearing one run's keys
among many unrelated keys (time, round trips).

Round trips are counted on the client side: every write of a command (or of a whole pipeline) to a
socket by redis-py is one round trip. GET calls seen by the server come from INFO commandstats
deltas where the server has them.

pull  get_all        ExclusiveRedisXCom.get_all (the override -> deserialize_many, one pipeline);
                     the supervisor's reply (the N DB references) is faked, so only Redis is timed
      per_item       deserialize_value once per reference: what BaseXCom.get_all and the lazy
                     sequence of mapped outputs do
clear backend.clear  ExclusiveRedisXCom.clear(dag_id, run_id) of a run of 100 keys (reads the run index)
      unlink_known   one UNLINK of those 100 keys: the floor any clear could reach
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import redis
from redis.connection import AbstractConnection

from benchmarks._common import BenchContext, configure_backend, fmt_seconds, summary, timed

NAME = "scaling"
RUN_KEYS = 100


class RoundTrips:
    """Counts socket writes of redis-py connections (one per command or per pipeline)."""

    def __init__(self) -> None:
        self.count = 0

    @contextlib.contextmanager
    def counting(self) -> Iterator[RoundTrips]:
        original = AbstractConnection.send_packed_command

        def counted(conn: AbstractConnection, command: Any, check_health: bool = True) -> None:
            self.count += 1
            original(conn, command, check_health)

        AbstractConnection.send_packed_command = counted  # type: ignore[method-assign]
        try:
            yield self
        finally:
            AbstractConnection.send_packed_command = original  # type: ignore[method-assign]


def measure_round_trips(fn: Callable[[], object]) -> int:
    counter = RoundTrips()
    fn()  # warm: connection set up, health check done
    with counter.counting():
        fn()
    return counter.count


def command_calls(client: redis.Redis, command: str) -> int | None:
    """Server-side count of one command, or None where INFO commandstats is unavailable."""
    try:
        stats = client.info("commandstats")
    except redis.RedisError:
        return None
    entry = stats.get(f"cmdstat_{command}")
    return int(entry["calls"]) if isinstance(entry, dict) else None


@contextlib.contextmanager
def fake_supervisor(references: list[str]) -> Iterator[None]:
    """get_all asks the supervisor for the DB rows; answer with our references, as the API would."""
    from airflow.sdk.execution_time import task_runner
    from airflow.sdk.execution_time.comms import XComSequenceSliceResult

    class Comms:
        def send(self, msg: Any) -> Any:
            return XComSequenceSliceResult(root=references)

    had = hasattr(task_runner, "SUPERVISOR_COMMS")
    previous = getattr(task_runner, "SUPERVISOR_COMMS", None)
    task_runner.SUPERVISOR_COMMS = Comms()  # type: ignore[attr-defined]
    try:
        yield
    finally:
        if had:
            task_runner.SUPERVISOR_COMMS = previous  # type: ignore[attr-defined]
        else:
            del task_runner.SUPERVISOR_COMMS


def bench_pull(ctx: BenchContext) -> list[dict[str, Any]]:
    from redis_xcom.backend import ExclusiveRedisXCom

    sizes = [10, 30] if ctx.smoke else [10, 30, 100, 300, 1000]
    server = ctx.client()
    rows = []
    for n in sizes:
        run_id = f"pull-{n}"
        refs = [
            ExclusiveRedisXCom.serialize_value(
                {"map_index": i, "rows": 3}, key="return_value", task_id="mapped", dag_id="scaling",
                run_id=run_id, map_index=i,
            )
            for i in range(n)
        ]  # fmt: skip
        expected = [{"map_index": i, "rows": 3} for i in range(n)]

        def get_all(run_id: str = run_id) -> object:
            return ExclusiveRedisXCom.get_all(
                key="return_value", dag_id="scaling", task_id="mapped", run_id=run_id
            )

        def per_item(refs: list[str] = refs) -> object:
            return [ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=r)) for r in refs]

        with fake_supervisor(refs):
            assert get_all() == expected and per_item() == expected
            trips = {"get_all": measure_round_trips(get_all), "per_item": measure_round_trips(per_item)}
            gets = {}
            for name, fn in (("get_all", get_all), ("per_item", per_item)):
                before = command_calls(server, "get")
                fn()
                after = command_calls(server, "get")
                gets[name] = None if before is None or after is None else after - before
            timing = timed(
                {"per_item": per_item, "get_all": get_all}, baseline="per_item",
                rounds=3 if ctx.smoke else 21, min_sample_time=0.005 if ctx.smoke else 0.05,
            )  # fmt: skip
        v = timing
        row = {
            "n": n,
            "round_trips_get_all": trips["get_all"],
            "round_trips_per_item": trips["per_item"],
            "server_gets_get_all": gets["get_all"],
            "server_gets_per_item": gets["per_item"],
            "get_all_s": v["get_all"]["seconds"]["median"],
            "per_item_s": v["per_item"]["seconds"]["median"],
            "speedup_median": 1 / v["get_all"]["ratio"]["median"],
            "timing": timing,
        }
        rows.append(row)
        print(
            f"  pull N={n:>4}: get_all {row['round_trips_get_all']} round trip(s) "
            f"{fmt_seconds(row['get_all_s'])}; per item {row['round_trips_per_item']} round trips "
            f"{fmt_seconds(row['per_item_s'])}; get_all {row['speedup_median']:.1f}x faster",
            flush=True,
        )
    ctx.cleanup_prefix(f"{ctx.prefix}:{{scaling/pull-")
    return rows


def _seed_unrelated(client: redis.Redis, prefix: str, count: int, already: int) -> None:
    """Keys of other DAG runs under the same prefix: what a busy deployment's keyspace looks like."""
    batch = 10_000
    for start in range(already, count, batch):
        stop = min(count, start + batch)
        client.mset(
            {f"{prefix}:{{other/run-{i // 100}}}:t:{i % 100}:return_value": b"x" for i in range(start, stop)}
        )


def bench_clear(ctx: BenchContext) -> list[dict[str, Any]]:
    from redis_xcom import keys
    from redis_xcom.backend import ExclusiveRedisXCom
    from redis_xcom.runtime import get_runtime

    fake = "fakeredis" in ctx.redis_kind
    if ctx.smoke:
        backgrounds = [0, 1_000]
    elif fake:
        backgrounds = [0, 10_000, 100_000]  # fakeredis SCAN is Python and far slower than Redis
    else:
        backgrounds = [0, 10_000, 100_000, 1_000_000]
    client = ctx.client()
    settings = get_runtime().settings
    store = get_runtime().store
    coords = [keys.XComCoordinates("clear", "run-1", "t", i, "return_value") for i in range(RUN_KEYS)]
    run_keys = [keys.build_key_and_index(settings.key_prefix, c)[0] for c in coords]
    index = keys.run_index_key(settings.key_prefix, "clear", "run-1")
    reps = 2 if ctx.smoke else 7
    rows = []
    seeded = 0
    for background in backgrounds:
        _seed_unrelated(client, ctx.prefix, background, seeded)
        seeded = background
        samples: dict[str, list[float]] = {"backend_clear": [], "unlink_known": []}
        trips: dict[str, int] = {}
        for rep in range(reps):
            order = ["backend_clear", "unlink_known"] if rep % 2 == 0 else ["unlink_known", "backend_clear"]
            for name in order:
                # What 100 pushes leave behind: the values and the run's index naming them.
                client.mset(dict.fromkeys(run_keys, b"v"))
                client.sadd(index, *run_keys)
                counter = RoundTrips()
                with counter.counting():
                    start = time.perf_counter()
                    if name == "backend_clear":
                        deleted = ExclusiveRedisXCom.clear(dag_id="clear", run_id="run-1")
                    else:
                        deleted = store.unlink(run_keys)
                    samples[name].append(time.perf_counter() - start)
                trips[name] = counter.count
                assert deleted == RUN_KEYS, (name, deleted)
        dbsize = int(client.dbsize())  # type: ignore[arg-type]
        row = {
            "unrelated_keys": background,
            "dbsize": dbsize,
            "backend_clear_s": summary(samples["backend_clear"]),
            "unlink_known_s": summary(samples["unlink_known"]),
            "round_trips_backend_clear": trips["backend_clear"],
            "round_trips_unlink_known": trips["unlink_known"],
            "raw": samples,
        }
        rows.append(row)
        print(
            f"  clear 100 keys among {background:>9,} others: backend.clear "
            f"{fmt_seconds(row['backend_clear_s']['median'])} ({trips['backend_clear']} round trips); "
            f"UNLINK of known keys {fmt_seconds(row['unlink_known_s']['median'])} "
            f"({trips['unlink_known']} round trip)",
            flush=True,
        )
    return rows


def run(ctx: BenchContext) -> dict[str, Any]:
    configure_backend(ctx)
    pull = bench_pull(ctx)
    clear = bench_clear(ctx)
    ctx.cleanup_prefix()
    goals = []
    if pull:
        trips = [r["round_trips_get_all"] for r in pull]
        goals.append(
            {
                "goal": "pulling N mapped outputs costs a constant number of Redis round trips",
                "target": "constant in N",
                "measured": f"{trips[0]}..{trips[-1]} round trips for N = {pull[0]['n']}..{pull[-1]['n']}",
                "met": len(set(trips)) == 1,
            }
        )
    if len(clear) >= 2:
        first, last = clear[0], clear[-1]
        growth = last["backend_clear_s"]["median"] / first["backend_clear_s"]["median"]
        goals.append(
            {
                "goal": "a run-level clear costs time proportional to the run's keys, not the keyspace",
                "target": "flat as unrelated keys grow",
                "measured": f"{growth:.0f}x slower with {last['unrelated_keys']:,} unrelated keys than with "
                f"{first['unrelated_keys']:,} ({fmt_seconds(first['backend_clear_s']['median'])} -> "
                f"{fmt_seconds(last['backend_clear_s']['median'])}; "
                f"{last['round_trips_backend_clear']} round trips)",
                "met": growth < 2,
                "note": "the run index should keep it flat",
            }
        )
    return {
        "description": __doc__.split("\n\n")[0],
        "pull": pull,
        "clear": clear,
        "goals": goals,
    }
