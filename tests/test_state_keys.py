"""State store keys and references (pure: no Redis, no Airflow)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from redis.cluster import key_slot

from redis_xcom.state import keys
from redis_xcom.state.keys import ASSET, TASK, StateScope

pytestmark = pytest.mark.version_independent

HOSTILE = ["plain", "a/b", "{x}", "a:b", "*?[]\\", "sp ace", "ünï", "%41", "#maps", "r:v"]


def task(dag: str = "d", run: str = "r", task_id: str = "t", map_index: int = -1, region=None) -> StateScope:
    return StateScope(TASK, dag, run, task_id, map_index, region)


@pytest.mark.parametrize("text", HOSTILE)
def test_every_scope_round_trips_through_its_hash_key_and_reference(text: str) -> None:
    for scope in (
        task(text, text, text, 3),
        task(text, "r", "t", -1, uuid.uuid4().hex),
        StateScope(ASSET, asset_kind="name", asset=text),
        StateScope(ASSET, asset_kind="uri", asset=f"s3://bucket/{text}"),
        StateScope(ASSET, asset_kind="id", asset="42"),
    ):
        hash_key = keys.hash_key("pre", scope)
        assert hash_key.count("{") == 1 and hash_key.count("}") == 1
        assert keys.parse_hash_key(hash_key, "pre") == scope
        ref = keys.to_reference("pre", scope, text)
        assert keys.parse_reference(ref, "pre") == (scope, text)


def test_every_map_index_of_a_task_and_its_maps_set_share_one_cluster_slot() -> None:
    slots = {key_slot(keys.hash_key("pre", task(map_index=i)).encode()) for i in range(-1, 50)}
    slots.add(key_slot(keys.maps_key("pre", task()).encode()))  # type: ignore[union-attr]
    assert len(slots) == 1


def test_references_are_deterministic_and_distinct_per_scope_and_key() -> None:
    refs = {
        keys.to_reference("pre", scope, key)
        for scope in (
            task(),
            task(map_index=0),
            task(task_id="u"),
            StateScope(ASSET, asset_kind="name", asset="t"),
        )
        for key in ("k", "k2")
    }
    assert len(refs) == 8
    assert keys.to_reference("pre", task(), "k") == keys.to_reference("pre", task(), "k")


@pytest.mark.parametrize(
    "ref",
    [
        "redis-xcom-state://other:state:{t/d/r/t}:-1#k",  # another prefix
        "redis-xcom-state://pre:state:{t/%64/r/t}:-1#k",  # non-canonical spelling of d
        "redis-xcom-state://pre:state:{t/d/r/t}:+1#k",  # non-canonical map index
        "redis-xcom-state://pre:state:{t/d/r/t}#maps#k",  # the maps set
        "redis-xcom-state://pre:state:{t/d/r/t}:-1",  # no key
        "redis-xcom-state://pre:state:{t/d/r/t}:-1#a#b",  # an unencoded # in the key
        "redis-xcom-state://pre:state:{a/bogus/x}#k",  # unknown asset kind
        "redis-xcom://pre:{d/r}:t:-1:k",  # an XCom reference
        "pre:state:{t/d/r/t}:-1#k",  # no scheme
        "",
    ],
)
def test_anything_but_a_canonical_reference_under_the_prefix_is_refused(ref: str) -> None:
    assert keys.parse_reference(ref, "pre") is None


def test_airflow_scopes_map_onto_ours_whichever_copy_of_the_classes_hands_them() -> None:
    zero = uuid.UUID(int=0)
    region = uuid.uuid4()
    assert keys.scope_of(SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=2)) == task(
        map_index=2
    )
    assert keys.scope_of(
        SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=2, region_id=zero)
    ) == task(map_index=2)
    assert keys.scope_of(
        SimpleNamespace(dag_id="d", run_id="r", task_id="t", map_index=2, region_id=region)
    ) == task(map_index=2, region=region.hex)
    assert keys.scope_of(SimpleNamespace(asset_id=7, name="n", uri="u")).asset_kind == "id"
    assert keys.scope_of(SimpleNamespace(asset_id=None, name="n", uri="u")).asset == "n"
    assert keys.scope_of(SimpleNamespace(asset_id=None, name=None, uri="u")).asset_kind == "uri"


def test_state_keys_never_pass_for_xcom_keys() -> None:
    from redis_xcom import keys as xcom_keys

    for scope in (task(), task(map_index=4), StateScope(ASSET, asset_kind="name", asset="n")):
        assert xcom_keys.parse_key(keys.hash_key("pre", scope)) is None
        assert xcom_keys.parse_key(keys.hash_key("pre", scope), "pre") is None
