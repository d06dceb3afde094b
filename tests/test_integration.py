"""The backend against a real redis-server that the suite starts itself."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from redis_xcom import ExclusiveRedisXCom, RedisUnavailableError, XComExpiredError
from redis_xcom.keys import Selection, XComCoordinates
from tests.key_helpers import build_key
from tests.redis_process import RedisServer, free_port
from tests.xcom_calls import pull, push, value_keys

pytestmark = pytest.mark.integration


def test_round_trip_with_ttl_on_a_real_server(real_backend: str, redis_server: RedisServer) -> None:
    value = {"rows": [{"id": i, "name": f"n{i}"} for i in range(1000)]}
    reference = push(value)
    key = reference.removeprefix("redis-xcom://")
    assert key.startswith(real_backend + ":")
    assert pull(reference) == value
    assert 604790 <= redis_server.client().ttl(key) <= 604800


def test_unix_socket_urls_work(xcom_settings: pytest.MonkeyPatch, tmp_path: Any) -> None:
    socket_path = tmp_path / "redis.sock"
    with RedisServer(extra_args=["--unixsocket", str(socket_path)]) as server:
        xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", f"unix://{socket_path}?db=0")
        assert pull(push([1, "two"])) == [1, "two"]
        assert len(value_keys(server.client())) == 1


def test_a_valkey_url_reaches_the_server_as_the_redis_one(
    real_backend: str, redis_server: RedisServer, xcom_settings: pytest.MonkeyPatch
) -> None:
    # As copied from a Valkey console; the same server whichever engine the suite runs.
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", f"valkey://127.0.0.1:{redis_server.port}/3")
    assert pull(push({"from": "valkey://"})) == {"from": "valkey://"}
    assert len(value_keys(redis_server.client(db=3))) == 1, "in the URL's database"


def test_unreachable_redis_fails_fast_naming_host_and_port(xcom_settings: pytest.MonkeyPatch) -> None:
    port = free_port()  # nothing listens there
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", f"redis://app:hunter2@127.0.0.1:{port}/0")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SOCKET_CONNECT_TIMEOUT", "0.5")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__RETRY_ATTEMPTS", "2")
    started = time.monotonic()
    with pytest.raises(RedisUnavailableError) as info:
        push("x")
    assert time.monotonic() - started < 10
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value)


ids = st.text(alphabet=st.sampled_from(list("*?[]\\{}:/% ^!-é") + list("ab")), max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(ids, ids, ids, st.sampled_from([-1, 0, 1]), ids), min_size=1, max_size=8, unique=True),
    st.data(),
)
def test_clear_on_real_redis_deletes_exactly_the_selection(
    real_backend: str,
    redis_server: RedisServer,
    coords: list[tuple[str, str, str, int, str]],
    data: st.DataObject,
) -> None:
    client = redis_server.client()
    for existing in client.scan_iter(f"{real_backend}:*"):
        client.delete(existing)
    xcoms = [XComCoordinates("d" + d, *rest) for d, *rest in coords]  # type: ignore[arg-type]
    for xcom in xcoms:
        push(
            "v",
            dag_id=xcom.dag_id,
            run_id=xcom.run_id,
            task_id=xcom.task_id,
            map_index=xcom.map_index,
            key=xcom.key,
        )
    target = data.draw(st.sampled_from(xcoms))
    selection = Selection(
        target.dag_id,
        data.draw(st.sampled_from([None, target.run_id])),
        data.draw(st.sampled_from([None, target.task_id])),
        data.draw(st.sampled_from([None, target.map_index])),
        data.draw(st.sampled_from([None, target.key])),
    )
    expected = {build_key(real_backend, x) for x in xcoms if selection.contains(x)}
    before = value_keys(client, f"{real_backend}:*")
    deleted = ExclusiveRedisXCom.clear(
        dag_id=selection.dag_id,
        run_id=selection.run_id,
        task_id=selection.task_id,
        map_index=selection.map_index,
        key=selection.key,
    )
    after = value_keys(client, f"{real_backend}:*")
    assert deleted == len(expected)
    assert before - after == expected


def test_expired_value_surfaces_as_expired_error(
    real_backend: str, xcom_settings: pytest.MonkeyPatch
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__TTL", "1")
    reference = push({"short": "lived"}, task_id="quick")
    assert pull(reference) == {"short": "lived"}
    time.sleep(2.1)
    with pytest.raises(XComExpiredError, match=r"task_id='quick'.*ttl = 1s"):
        pull(reference)


def test_push_survives_a_server_that_forgot_its_scripts(real_backend: str, redis_server: RedisServer) -> None:
    # After a restart or failover the server has no cached scripts: EVALSHA answers NOSCRIPT.
    assert pull(push("before", task_id="a")) == "before"
    redis_server.client().script_flush()
    assert pull(push("after", task_id="b")) == "after"
    assert ExclusiveRedisXCom.clear(dag_id="etl", run_id="r1") == 2


def _pull_then_push_in_child(reference: str, queue: Any) -> None:
    queue.put((pull(reference), push("from the child", task_id="child")))


def test_a_forked_worker_gets_its_own_connection_pool(real_backend: str) -> None:
    import multiprocessing

    from redis_xcom.runtime import get_runtime

    reference = push("from the parent", task_id="parent")
    parent_client = get_runtime().store.client  # the parent's pool is in use before the fork
    queue: Any = multiprocessing.get_context("fork").Queue()
    child = multiprocessing.get_context("fork").Process(
        target=_pull_then_push_in_child, args=(reference, queue)
    )
    child.start()
    pulled, child_reference = queue.get(timeout=30)
    child.join(timeout=30)
    assert child.exitcode == 0 and pulled == "from the parent"
    assert pull(child_reference) == "from the child"
    assert get_runtime().store.client is parent_client
