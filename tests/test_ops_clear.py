"""`redis-xcom clear` against a real redis-server: what it says, what it deletes, when it asks."""

from __future__ import annotations

import json

import pytest

from redis_xcom.keys import run_index_key
from redis_xcom.ops import cli
from tests.redis_process import RedisServer
from tests.xcom_calls import push, redis_key, value_keys

pytestmark = pytest.mark.integration


def seed() -> dict[str, str]:
    return {
        "a0": redis_key(push("x" * 1000, run_id="r1", task_id="a", map_index=0)),
        "a1": redis_key(push("x" * 1000, run_id="r1", task_id="a", map_index=1)),
        "b": redis_key(push("y", run_id="r2", task_id="b")),
        "other_dag": redis_key(push("z", dag_id="etl_v2", run_id="r1", task_id="a")),
    }


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(["clear", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_dry_run_counts_keys_and_bytes_and_deletes_nothing(
    real_backend: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    made = seed()
    code, out, _ = run(capsys, "--dag-id", "etl", "--task-id", "a", "--dry-run", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["keys"] == 2 and report["deleted"] == 0
    assert report["bytes"] >= 2000 and report["bytes_measured_by"] == "MEMORY USAGE"
    assert set(report["sample_keys"]) == {made["a0"], made["a1"]}
    assert value_keys(redis_server.client(), f"{real_backend}:*") == set(made.values())
    code, out, _ = run(capsys, "--dag-id", "etl", "--dry-run")
    assert code == 0 and out.startswith("Would delete 3 XCom values, ")


def test_yes_deletes_exactly_the_selection_and_keeps_run_indexes_exact(
    real_backend: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    made = seed()
    code, out, _ = run(capsys, "--dag-id", "etl", "--task-id", "a", "--yes")
    assert code == 0
    assert "Deleted 2 values" in out
    client = redis_server.client()
    assert value_keys(client, f"{real_backend}:*") == {made["b"], made["other_dag"]}
    assert not client.exists(run_index_key(real_backend, "etl", "r1")), "r1's emptied index is gone"
    assert client.smembers(run_index_key(real_backend, "etl", "r2")) == {made["b"].encode()}


def test_without_a_terminal_it_needs_yes(
    real_backend: str, redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    made = seed()
    code, _, err = run(capsys, "--dag-id", "etl")
    assert code == 2
    assert "Pass --yes" in err
    assert value_keys(redis_server.client(), f"{real_backend}:*") == set(made.values())


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["clear", "--run-id", "r1"]) == 2  # no --dag-id
    assert "--dag-id is required" in capsys.readouterr().err
