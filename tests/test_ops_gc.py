"""`redis-xcom gc` against a real redis-server, with the xcom table stood in for (the batching, the
guard, the grace period); tests/test_ops_gc_airflow.py runs it against Airflow's own DB."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import pytest

from redis_xcom import keys
from redis_xcom.ops import cli
from redis_xcom.ops.gc import run_gc
from redis_xcom.ops.output import Output
from tests.redis_process import RedisServer
from tests.xcom_calls import push, redis_key, value_keys

pytestmark = pytest.mark.integration


class FakeTable:
    """Rows refer to the keys in `rows`; records how many coordinates each lookup asked for."""

    def __init__(self, rows: set[str], missing: Sequence[tuple[str, str]] = ()) -> None:
        self.rows = rows
        self.missing = list(missing)
        self.lookups: list[int] = []

    def referenced(self, coords: Sequence[keys.XComCoordinates]) -> set[str]:
        self.lookups.append(len(coords))
        return {k for c in coords if (k := keys.build_key(PREFIX, c)) in self.rows}

    def references(self, prefix: str) -> Iterator[list[tuple[str, str]]]:
        yield self.missing


PREFIX = "gc-test"
# Values of task t<i> in run<i % 100>, each in its run's index, as the backend writes them.
LOAD = """
for i = tonumber(ARGV[2]), tonumber(ARGV[3]) - 1 do
  local tag = ARGV[1] .. ':{dag/run' .. (i % 100) .. '}'
  local key = tag .. ':t' .. i .. ':-1:return_value'
  redis.call('SET', key, 'v', 'EX', 3600)
  redis.call('SADD', tag .. '#index', key)
end
"""


def key_of(i: int) -> str:
    return keys.build_key(PREFIX, keys.XComCoordinates("dag", f"run{i % 100}", f"t{i}", -1, "return_value"))


@pytest.fixture
def gc_redis(fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch) -> RedisServer:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", fresh_redis_server.url)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", PREFIX)
    return fresh_redis_server


def test_100k_keys_in_batches_exactly_the_orphans_go(
    gc_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    client = gc_redis.client()
    for start in range(0, 100_000, 5_000):  # server-side, in short scripts (a busy machine: no BUSY)
        client.eval(LOAD, 0, PREFIX, start, start + 5_000)
    all_keys = [key_of(i) for i in range(100_000)]
    referenced = set(all_keys[::2])
    table = FakeTable(referenced)
    code = run_gc(grace=0, dry_run=False, yes=True, force=False, out=Output(True), table=table)
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["examined"] == 100_000 and report["deleted"] == 50_000
    assert value_keys(client, f"{PREFIX}:*") == referenced
    # Both passes looked keys up a SCAN batch at a time (about 1000), never the keyspace at once
    # (tracemalloc would show the same, at three times the test's run time).
    assert sum(table.lookups) == 200_000 and max(table.lookups) <= 2_000
    index = client.smembers(keys.run_index_key(PREFIX, "dag", "run0"))
    assert {m.decode() for m in index} == {k for k in referenced if "{dag/run0}" in k}, "indexes stay exact"


def test_more_than_half_orphaned_stops_without_deleting_unless_forced(
    gc_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    made = {redis_key(push(i, task_id=f"t{i}")) for i in range(4)}
    table = FakeTable({next(iter(made))})  # 3 of 4 orphaned: a wrong DB?
    assert run_gc(grace=0, dry_run=False, yes=True, force=False, out=Output(False), table=table) == 1
    assert "--force" in capsys.readouterr().err
    assert value_keys(gc_redis.client(), f"{PREFIX}:*") == made
    assert run_gc(grace=0, dry_run=False, yes=True, force=True, out=Output(False), table=table) == 0
    assert value_keys(gc_redis.client(), f"{PREFIX}:*") == {next(iter(made))}


def test_values_inside_grace_stay_and_dry_run_deletes_nothing(
    gc_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    made = [redis_key(push(i, task_id=f"t{i}")) for i in range(4)]
    table = FakeTable(set(made[:3]), missing=[("etl", "gc-test:{etl/old}:t:-1:return_value")])
    assert run_gc(grace=3600, dry_run=False, yes=True, force=False, out=Output(True), table=table) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["orphans"] == 1 and report["kept_in_grace"] == 1 and report["deleted"] == 0
    assert report["rows_without_value_by_dag"] == {"etl": 1}
    assert run_gc(grace=0, dry_run=True, yes=True, force=False, out=Output(False), table=table) == 0
    out = capsys.readouterr().out
    assert "Would delete: 1 values" in out and made[3] in out
    assert "etl: 1" in out
    assert value_keys(gc_redis.client(), f"{PREFIX}:*") == set(made)


def test_gc_needs_yes_without_a_terminal(gc_redis: RedisServer, monkeypatch: pytest.MonkeyPatch) -> None:
    import redis_xcom.ops.gc as gc

    made = [redis_key(push(i, task_id=f"t{i}")) for i in range(4)]
    monkeypatch.setattr(gc, "AirflowXComTable", lambda: FakeTable(set(made[:3])))
    assert cli.main(["gc", "--grace", "0"]) == 2
    assert len(value_keys(gc_redis.client(), f"{PREFIX}:*")) == 4
