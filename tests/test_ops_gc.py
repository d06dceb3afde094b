"""`redis-xcom gc` against a real redis-server, with the xcom table stood in for (the batching, the
guard, the grace period); tests/test_ops_gc_airflow.py runs it against Airflow's own DB."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest

from redis_xcom import keys
from redis_xcom.ops import cli
from redis_xcom.ops.gc import run_gc
from redis_xcom.ops.metadata import AirflowXComTable
from redis_xcom.ops.output import Output
from tests.key_helpers import build_key
from tests.redis_process import RedisServer
from tests.xcom_calls import own_coordinates, push, redis_key, value_keys

pytestmark = pytest.mark.integration


class FakeTable:
    """Rows refer to the keys in `rows`; records how many coordinates each lookup asked for."""

    def __init__(self, rows: set[str], missing: Sequence[str] = ()) -> None:
        self.rows = rows
        self.missing = [keys.to_reference(k) for k in missing]
        self.lookups: list[int] = []

    def referenced(self, coords: Sequence[keys.XComCoordinates], prefix: str) -> set[str]:
        self.lookups.append(len(coords))
        return {k for c in coords if (k := build_key(prefix, c)) in self.rows}

    def references(self) -> Iterator[list[tuple[keys.RowCoordinates, object]]]:
        yield [(own_coordinates(reference), reference) for reference in self.missing]


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
    return build_key(PREFIX, keys.XComCoordinates("dag", f"run{i % 100}", f"t{i}", -1, "return_value"))


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
    table = FakeTable(set(made[:3]), missing=["gc-test:{etl/old}:t:-1:return_value"])
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


class StandInXComTable(AirflowXComTable):
    """Airflow's xcom table as gc reads it (the real queries), on a stand-in database of the columns
    Airflow 3.0 to 3.3 have: a row is user input, and any value can be written into it."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        from sqlalchemy import JSON, Column, Integer, String, create_engine
        from sqlalchemy.orm import Session, declarative_base

        base: Any = declarative_base()

        class XCom(base):  # type: ignore[misc,valid-type]
            __tablename__ = "xcom"
            id = Column(Integer, primary_key=True)
            dag_id, run_id, task_id, key = (Column(String) for _ in range(4))
            map_index = Column(Integer)
            value = Column(JSON)

        engine = create_engine("sqlite://")
        base.metadata.create_all(engine)
        with Session(engine) as session:
            session.add_all(XCom(**row) for row in rows)
            session.commit()
        self._model = XCom
        self._session = lambda: Session(engine)
        self.queries = 0


@contextmanager
def redis_commands(server: RedisServer) -> Iterator[list[str]]:
    """Every command the redis-server runs inside the block (MONITOR), filled in when it ends."""
    seen: list[str] = []
    with server.client(socket_timeout=60).monitor() as monitor:
        yield seen
        marker = f"end-of-block-{uuid.uuid4().hex}"
        server.client().echo(marker)
        for command in monitor.listen():
            if marker in command["command"]:
                break
            seen.append(command["command"])


def test_rows_whose_reference_is_not_theirs_are_never_probed(
    gc_redis: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """gc's report of rows whose value is gone probes only the rows whose reference is their own:
    a row of etl edited to name payroll's value (or a key that is no XCom) is counted, not looked up.
    (payroll's own rows are left out, so that any probe of its key is the forged row's.)"""
    payroll = redis_key(push("salaries", dag_id="payroll", task_id="pay"))
    gone = redis_key(push("etl's own", dag_id="etl", task_id="t"))
    gc_redis.client().unlink(gone)
    gc_redis.client().set("celery", b"a queue")
    row = {"dag_id": "etl", "run_id": "r1", "task_id": "t", "map_index": -1, "key": "return_value"}
    table = StandInXComTable(
        [
            {**row, "value": keys.to_reference(gone)},
            {**row, "key": "forged", "value": keys.to_reference(payroll)},
            {**row, "key": "foreign", "value": "redis-xcom://celery"},
        ]
    )
    with redis_commands(gc_redis) as seen:
        assert run_gc(grace=0, dry_run=True, yes=True, force=False, out=Output(True), table=table) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_without_value_by_dag"] == {"etl": 1}
    assert report["rows_with_untrusted_reference_by_dag"] == {"etl": 2}
    probes = [c for c in seen if c.upper().startswith("EXISTS ")]
    assert any(gone in c for c in probes), seen
    assert not [c for c in probes if payroll in c or "celery" in c], probes
