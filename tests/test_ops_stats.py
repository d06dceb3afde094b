"""`redis-xcom stats` against a real redis-server: per DAG, largest, chunked, TTLs, the server."""

from __future__ import annotations

import json

import pytest

from redis_xcom.ops import cli
from tests.redis_process import RedisServer, engine_shown
from tests.xcom_calls import push, redis_key

pytestmark = pytest.mark.integration


def test_stats_reports_usage_by_dag_largest_chunked_and_the_server(
    fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", fresh_redis_server.url)
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", "4096")
    for i in range(5):
        push("s" * 100, dag_id="small", task_id=f"t{i}")
    big = redis_key(push(b"b" * 20_000, dag_id="big", task_id="huge"))  # chunked: above chunk_bytes
    push(b"m" * 3000, dag_id="big", task_id="medium")
    fresh_redis_server.client().set("xcom-not-ours", b"x" * 50_000)  # outside key_prefix: not counted
    assert cli.main(["stats", "--json", "--top", "2"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["values"] == 7
    assert report["dags"]["small"]["values"] == 5 and report["dags"]["big"]["values"] == 2
    assert report["dags"]["big"]["bytes"] > 23_000
    assert report["largest"][0]["key"] == big and len(report["largest"]) == 2
    assert report["chunked"]["values"] == 1
    assert report["ttl_histogram"]["1 - 7 days"] == 7
    (server,) = report["servers"].values()
    # Named as the server is, on Valkey too (whose INFO pins redis_version at 7.2.4).
    assert f"{server['engine']} {server['version']}" == engine_shown()
    assert server["maxmemory_policy"] == "noeviction"
    assert cli.main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "7 XCom values under key_prefix 'xcom'" in out and "Chunked values: 1" in out
    assert f": {engine_shown()}, " in out


def test_stats_prints_ids_read_from_keys_escaped(
    fresh_redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Anyone who can write to Redis (or name a DAG) can put terminal escape sequences in a key.
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", fresh_redis_server.url)
    push("v", dag_id="evil\x1b[2J\x1b]0;owned\x07\u202edag", task_id="t")
    assert cli.main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "evil\\x1b[2J\\x1b]0;owned\\x07\\u202edag" in out
