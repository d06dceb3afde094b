"""Key building, references and clear patterns, over adversarial coordinates."""

from __future__ import annotations

import re
import uuid

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from redis_xcom.errors import UntrustedReferenceError
from redis_xcom.keys import (
    REFERENCE_SCHEME,
    RowCoordinates,
    Selection,
    XComCoordinates,
    belongs_to_row,
    key_of_reference,
    new_write,
    owned_key,
    parse_key,
    run_index_key,
    run_index_of,
    task_instance_of,
    to_reference,
)
from tests.key_helpers import build_key

pytestmark = pytest.mark.version_independent

PREFIX = "xcom"
# Characters that break naive key schemes: globs, delimiters, braces, escapes, spaces, non-ASCII.
NASTY = "*?[]\\{}:/%#^!- .+~é中\x00\n"
ids = st.one_of(
    st.sampled_from(["r", "r:1", "r*", "etl", "etl_v2", "k*", "k", "", "a/b", "{x}", "%2A"]),
    st.text(alphabet=st.sampled_from(list(NASTY) + list("abr1")), max_size=12),
    st.text(max_size=20),
)
map_indexes = st.integers(min_value=-1, max_value=2000)
# 3.0-3.3 keys (no instance), 3.4 task instances' own keys, and 3.4 writes through coordinates
# (unknown map index).
legacy = st.builds(XComCoordinates, ids, ids, ids, map_indexes, ids, st.none())
own = st.builds(XComCoordinates, ids, ids, ids, map_indexes, ids, st.uuids().map(task_instance_of))
through = st.builds(XComCoordinates, ids, ids, ids, st.none(), ids, st.builds(new_write))
coordinates = st.one_of(legacy, own, through)


def redis_glob_match(pattern: str, key: str) -> bool:
    """Redis MATCH semantics for our patterns, whose only glob syntax is '*'."""
    assert not re.search(r"[?\[\]\\]", pattern), f"unexpected glob syntax in {pattern!r}"
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, key, flags=re.DOTALL) is not None


@given(coordinates)
def test_key_parses_back_to_its_coordinates(coords: XComCoordinates) -> None:
    assert parse_key(build_key(PREFIX, coords)) == coords


@given(coordinates, coordinates)
def test_different_coordinates_never_share_a_key(a: XComCoordinates, b: XComCoordinates) -> None:
    assume(a != b)
    assert build_key(PREFIX, a) != build_key(PREFIX, b)


@given(coordinates)
def test_user_text_cannot_move_the_cluster_hash_tag(coords: XComCoordinates) -> None:
    key = build_key(PREFIX, coords)
    tag = key[key.index("{") + 1 : key.index("}")]
    # Redis Cluster hashes the text between the first '{' and the next '}': the run, nothing else.
    same_run = XComCoordinates(coords.dag_id, coords.run_id, "other", 7, "other")
    other = build_key(PREFIX, same_run)
    assert other[other.index("{") + 1 : other.index("}")] == tag
    assert key.count("{") == 1 and key.count("}") == 1
    assert key.split("}", 1)[1].count(":") == (3 if coords.instance is None else 4)


@given(coordinates)
def test_keys_stay_printable_ascii_for_redis_cli(coords: XComCoordinates) -> None:
    key = build_key(PREFIX, coords)
    assert key.isascii() and key.isprintable() and " " not in key


def test_common_ids_are_readable_as_they_are() -> None:
    coords = XComCoordinates("etl", "manual__2024-01-01T00:00:00+00:00", "extract", 3, "return_value")
    assert build_key(PREFIX, coords) == "xcom:{etl/manual__2024-01-01T00:00:00+00:00}:extract:3:return_value"


@given(
    coordinates,
    st.data(),
)
def test_clear_pattern_selects_exactly_the_selection(coords: XComCoordinates, data: st.DataObject) -> None:
    # Build selections that share some coordinates with the key and differ in others.
    other = data.draw(coordinates)

    def pick(mine: object, theirs: object) -> object:
        return data.draw(st.sampled_from([None, mine, theirs]))

    selection = Selection(
        dag_id=data.draw(st.sampled_from([coords.dag_id, other.dag_id])),
        run_id=pick(coords.run_id, other.run_id),  # type: ignore[arg-type]
        task_id=pick(coords.task_id, other.task_id),  # type: ignore[arg-type]
        map_index=pick(coords.map_index, other.map_index),  # type: ignore[arg-type]
        key=pick(coords.key, other.key),  # type: ignore[arg-type]
    )
    key = build_key(PREFIX, coords)
    # The pattern may let through more (a key "k" also matches "kk"), never less; contains is exact.
    if selection.contains(coords):
        assert redis_glob_match(selection.pattern(PREFIX), key)


@given(legacy, st.uuids(), st.uuids())
def test_every_attempt_has_its_own_key_and_a_clear_takes_them_all(
    coords: XComCoordinates, first: uuid.UUID, second: uuid.UUID
) -> None:
    assume(first != second)
    attempts = [coords._replace(instance=task_instance_of(ti_id)) for ti_id in (first, second)]
    built = {build_key(PREFIX, c) for c in [coords, *attempts]}
    assert len(built) == 3
    selection = Selection(coords.dag_id, coords.run_id, coords.task_id, coords.map_index, coords.key)
    assert all(redis_glob_match(selection.pattern(PREFIX), k) for k in built)
    assert all(selection.contains(parse_key(k)) for k in built)  # type: ignore[arg-type]


def test_a_write_through_coordinates_is_in_no_single_map_index() -> None:
    coords = XComCoordinates("d", "r", "t", None, "k", new_write())
    assert not Selection("d", "r", "t", -1, "k").contains(coords)
    assert Selection("d", "r", "t").contains(coords) and Selection("d", "r").contains(coords)


def test_clear_patterns_for_the_classic_traps() -> None:
    run_r = build_key(PREFIX, XComCoordinates("etl", "r", "t", -1, "k"))
    run_r1 = build_key(PREFIX, XComCoordinates("etl", "r:1", "t", -1, "k"))
    run_rstar = build_key(PREFIX, XComCoordinates("etl", "r*", "t", -1, "k"))
    etl_v2 = build_key(PREFIX, XComCoordinates("etl_v2", "r", "t", -1, "k"))
    key_kstar = build_key(PREFIX, XComCoordinates("etl", "r", "t", -1, "k*"))
    pattern = Selection("etl", "r").pattern(PREFIX)
    assert [redis_glob_match(pattern, k) for k in (run_r, run_r1, run_rstar, etl_v2)] == [
        True,
        False,
        False,
        False,
    ]
    assert not redis_glob_match(Selection("etl").pattern(PREFIX), etl_v2)
    only_kstar = Selection("etl", key="k*").pattern(PREFIX)
    assert redis_glob_match(only_kstar, key_kstar) and not redis_glob_match(only_kstar, run_r)


def test_reference_round_trip_and_foreign_values() -> None:
    key = build_key(PREFIX, XComCoordinates("d", "r", "t", -1, "k"))
    reference = to_reference(key)
    assert reference.startswith(REFERENCE_SCHEME) and len(reference) < 1024
    assert key_of_reference(reference) == key
    for foreign in (None, 1, "plain text", {"redis-xcom://x": 1}, ["redis-xcom://x"]):
        assert key_of_reference(foreign) is None


def test_parse_key_rejects_what_is_not_an_xcom_key() -> None:
    ti = "ti-" + "a" * 32
    for text in (
        "",
        "xcom",
        "xcom:{d/r}",
        "xcom:{d/r}:t:x:k",
        "xcom:{dr}:t:-1:k",
        "xcom:{d/r}:t:-1:k:extra",
        "xcom:{d/r}:t:-1:k:ti-" + "A" * 32,  # not how we write ids
        "xcom:{d/r}:t:-1:k:" + ti + ":more",
        "xcom:{d/r}:t:_:k:" + ti,  # only a write through coordinates has an unknown map index
    ):
        assert parse_key(text) is None, text


def test_a_reference_is_ours_only_under_the_prefix_and_as_one_of_our_keys() -> None:
    key = build_key(PREFIX, XComCoordinates("d", "r", "t", -1, "k"))
    row = RowCoordinates("d", "r", "t", "k", -1)
    assert owned_key(to_reference(key), row, PREFIX) == key
    assert owned_key("plain text", row, PREFIX) is None
    assert owned_key(None, row, PREFIX) is None
    foreign = [
        "redis-xcom://celery",  # a broker queue in a shared Redis
        "redis-xcom://session:admin",
        "redis-xcom://billing:{etl/r1}:t:-1:k",  # another application's look-alike
        "redis-xcom://" + run_index_key(PREFIX, "d", "r"),  # the run's index is no value
        "redis-xcom://" + key.replace("xcom:", "xcom2:", 1),
    ]
    for reference in foreign:
        with pytest.raises(UntrustedReferenceError, match=r"^XCom\(dag_id='d'.*Delete or correct the row"):
            owned_key(reference, row, PREFIX)


def test_a_reference_belongs_to_its_own_row_and_attempt() -> None:
    ti_id = uuid.uuid4()
    coords = XComCoordinates("d", "r", "t", 2, "k", task_instance_of(ti_id))
    row = RowCoordinates("d", "r", "t", "k")
    assert belongs_to_row(coords, row._replace(map_index=2, task_instance_id=ti_id))
    assert belongs_to_row(coords, row)  # nothing else known: not compared
    assert not belongs_to_row(coords, row._replace(task_instance_id=uuid.uuid4()))  # another attempt's row
    assert not belongs_to_row(coords, row._replace(map_index=3))
    assert not belongs_to_row(coords, row._replace(dag_id="payroll"))
    assert not belongs_to_row(coords, row._replace(key="other"))


def test_a_request_map_index_is_compared_with_the_keys_of_3_0_to_3_3_only() -> None:
    """Airflow's requests name the public map index (-1 for a loop iteration); a 3.4 key records the
    region index (the iteration), so only the task instance can tell iterations apart there."""
    iteration = XComCoordinates("d", "r", "t", 4, "k", task_instance_of(uuid.uuid4()))
    legacy = XComCoordinates("d", "r", "t", 3, "k")
    requested = RowCoordinates("d", "r", "t", "k", public_map_index=-1)
    assert belongs_to_row(iteration, requested)
    assert not belongs_to_row(legacy, requested)
    assert belongs_to_row(legacy, requested._replace(public_map_index=3))


def test_a_deletion_needs_every_identifying_coordinate_confirmed() -> None:
    ti_id = uuid.uuid4()
    row = RowCoordinates("d", "r", "t", "k", public_map_index=2)
    legacy = XComCoordinates("d", "r", "t", 2, "k")
    assert belongs_to_row(legacy, row, confirmed=True)
    assert not belongs_to_row(legacy, row._replace(public_map_index=None), confirmed=True)
    assert not belongs_to_row(legacy, row._replace(run_id=None), confirmed=True)
    own = XComCoordinates("d", "r", "t", 2, "k", task_instance_of(ti_id))
    assert not belongs_to_row(own, row, confirmed=True), "a task instance no one named is not assumed"
    assert belongs_to_row(own, row._replace(task_instance_id=ti_id), confirmed=True)
    assert not belongs_to_row(own, row._replace(task_instance_id=uuid.uuid4()), confirmed=True)
    written = XComCoordinates("d", "r", "t", None, "k", new_write())
    assert belongs_to_row(written, row) and not belongs_to_row(written, row, confirmed=True)


def test_on_3_4_a_reference_in_the_old_form_needs_its_rows_dag() -> None:
    key = build_key(PREFIX, XComCoordinates("payroll", "r", "t", -1, "k"))
    assert owned_key(to_reference(key), RowCoordinates(), PREFIX) == key  # 3.0-3.3: no other check
    with pytest.raises(UntrustedReferenceError, match=r"form Airflow 3\.0 to 3\.3 wrote"):
        owned_key(to_reference(key), RowCoordinates(), PREFIX, unbound_legacy=False)
    assert owned_key(to_reference(key), RowCoordinates("payroll"), PREFIX, unbound_legacy=False) == key
    own = build_key(PREFIX, XComCoordinates("payroll", "r", "t", -1, "k", task_instance_of(uuid.uuid4())))
    assert owned_key(to_reference(own), RowCoordinates(), PREFIX, unbound_legacy=False) == own


def test_a_row_is_named_by_what_is_known_of_it() -> None:
    full = RowCoordinates("d", "r", "t", "k", 2, try_number=1)
    assert full.describe() == "XCom(dag_id='d', run_id='r', task_id='t', map_index=2, key='k', try_number=1)"
    assert RowCoordinates(key="k", public_map_index=-1).describe() == "XCom(map_index=-1, key='k')"
    assert RowCoordinates().describe() == "An XCom row"


@given(coordinates)
def test_run_index_belongs_to_the_run_and_never_passes_for_an_xcom(coords: XComCoordinates) -> None:
    key = build_key(PREFIX, coords)
    index = run_index_key(PREFIX, coords.dag_id, coords.run_id)
    assert run_index_of(key) == index
    assert index[index.index("{") : index.index("}") + 1] == key[key.index("{") : key.index("}") + 1]
    assert parse_key(index) is None and run_index_of(index) is None
    assert not redis_glob_match(Selection(coords.dag_id).pattern(PREFIX), index)
