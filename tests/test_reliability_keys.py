"""Keys, chunked values and clear over adversarial coordinates, checked against a real redis-server's SCAN.

Complements tests/test_keys.py (which models Redis's glob in Python): here the glob is Redis's own, the
ids include 512-character and non-ASCII ones, and some values are chunked (a list at the XCom's own key),
so a clear must take them whole.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot

from redis_xcom import ExclusiveRedisXCom, XComExpiredError
from redis_xcom.keys import Selection, XComCoordinates, parse_key, run_tag, task_instance_of
from redis_xcom.storage.store import is_manifest
from tests.key_helpers import build_key
from tests.redis_process import RedisServer
from tests.xcom_calls import value_keys

NASTY = "*?[]\\{}:/%#^!- .+~é中\x00\n"
short_ids = st.text(alphabet=st.sampled_from([*NASTY, "a", "b"]), max_size=6)
long_ids = st.text(alphabet=st.sampled_from([*NASTY, "a", "x", "😀"]), min_size=512, max_size=512)
ids = st.one_of(short_ids, short_ids, short_ids, long_ids, st.text(max_size=12))
coordinates = st.builds(
    XComCoordinates,
    ids,
    ids,
    ids,
    st.integers(-1, 3),
    ids,
    st.one_of(st.none(), st.uuids().map(task_instance_of)),
)


# -- pure properties: no server needed ------------------------------------------------------------------


@given(coordinates, ids, ids, st.integers(-1, 3))
def test_whole_run_shares_one_cluster_slot(
    coords: XComCoordinates, task_id: str, key: str, map_index: int
) -> None:
    value_key = build_key("xcom", coords)
    sibling = build_key("xcom", XComCoordinates(coords.dag_id, coords.run_id, task_id, map_index, key))
    slot = key_slot(value_key.encode())
    assert slot == key_slot(sibling.encode())
    assert value_key.startswith(run_tag("xcom", coords.dag_id, coords.run_id) + ":")


@given(coordinates)
def test_long_and_non_ascii_ids_stay_printable_and_parse_back(coords: XComCoordinates) -> None:
    key = build_key("xcom", coords)
    assert key.isascii() and key.isprintable()
    assert parse_key(key) == coords


# -- against a real redis-server ------------------------------------------------------------------------


def push(value: Any, c: XComCoordinates) -> str:
    """Through serialize_value as 3.0-3.3 push, or store_value as a 3.4 task instance pushes its own."""
    if c.task_instance_id is None:
        return ExclusiveRedisXCom.serialize_value(
            value, key=c.key, task_id=c.task_id, dag_id=c.dag_id, run_id=c.run_id, map_index=c.map_index
        )
    coordinate = SimpleNamespace(
        dag_id=c.dag_id,
        run_id=c.run_id,
        task_id=c.task_id,
        ti_id=c.task_instance_id,
        region_index=c.map_index,
    )
    return ExclusiveRedisXCom.store_value(coordinate, c.key, value)


def pull(reference: str) -> Any:
    return ExclusiveRedisXCom.deserialize_value(SimpleNamespace(value=reference))


def as_value(c: XComCoordinates, big: bool) -> dict[str, Any]:
    """A value naming its own coordinates; big ones are chunked (chunk_bytes is 1024 here)."""
    return {"coords": [c.dag_id, c.run_id, c.task_id, c.map_index, c.key], "pad": "p" * (3000 if big else 1)}


@pytest.mark.integration
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(coordinates, st.booleans()), min_size=1, max_size=6, unique_by=lambda t: t[0]),
    st.data(),
)
def test_clear_on_real_redis_over_adversarial_ids_takes_exactly_the_selection_with_its_chunks(
    real_backend: str,
    redis_server: RedisServer,
    xcom_settings: pytest.MonkeyPatch,
    xcoms: list[tuple[XComCoordinates, bool]],
    data: st.DataObject,
) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__CHUNK_BYTES", "1024")
    client = redis_server.client()
    for stale in client.scan_iter(f"{real_backend}:*"):
        client.delete(stale)
    # Siblings that share a prefix or differ only by glob syntax with the first XCom make the traps likely.
    first = xcoms[0][0]
    twins = [
        first._replace(run_id=first.run_id + "*"),
        first._replace(dag_id=first.dag_id + "?"),
        first._replace(key=first.key + "[a]"),
    ]
    everything = dict(xcoms)
    for twin in twins:
        everything.setdefault(twin, False)
    references = {c: push(as_value(c, big), c) for c, big in everything.items()}

    # What Redis holds is exactly one key per XCom, chunked (a list, manifest first) or not.
    stored = value_keys(client, f"{real_backend}:*")
    assert {parse_key(k) for k in stored} == set(everything)
    chunked = {c for c in everything if client.type(build_key(real_backend, c)) == b"list"}
    assert {c for c, big in everything.items() if big} <= chunked
    assert all(is_manifest(client.lindex(build_key(real_backend, c), 0)) for c in chunked)  # type: ignore[arg-type]
    for c, reference in references.items():
        assert pull(reference)["coords"] == [c.dag_id, c.run_id, c.task_id, c.map_index, c.key]

    target = data.draw(st.sampled_from(sorted(everything, key=repr)))
    selection = Selection(
        target.dag_id,
        data.draw(st.sampled_from([None, target.run_id])),
        data.draw(st.sampled_from([None, target.task_id])),
        data.draw(st.sampled_from([None, target.map_index])),
        data.draw(st.sampled_from([None, target.key])),
    )
    chosen = {c for c in everything if selection.contains(c)}
    deleted = ExclusiveRedisXCom.clear(
        dag_id=selection.dag_id,
        run_id=selection.run_id,
        task_id=selection.task_id,
        map_index=selection.map_index,
        key=selection.key,
    )
    assert deleted == len(chosen)
    left = value_keys(client, f"{real_backend}:*")
    kept = set(everything) - chosen
    assert left == {build_key(real_backend, c) for c in kept}
    for c in chosen:
        with pytest.raises(XComExpiredError):
            pull(references[c])
    for c in kept:
        assert pull(references[c]) == as_value(c, everything[c])
