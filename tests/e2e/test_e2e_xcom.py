"""One run of dags/e2e_xcom.py through `airflow dags test`, then what a user would check."""

from __future__ import annotations

from typing import Any

import pytest

from redis_xcom import keys
from redis_xcom.ops.airflow_run import CommandResult
from redis_xcom.rows import XComRow
from tests.airflow_limits import SLASH_KEY_REASON, execution_api_takes_slash_keys, per_attempt_xcoms
from tests.e2e.conftest import E2E, describe

pytestmark = pytest.mark.e2e

DAG_ID = "e2e_xcom"
MAPPED_INPUT = [1, 2, 3, 4]
ODD_KEYS = [
    "with space",
    "star*glob",
    "br[ack]ets",
    "back\\slash",
    "{curly}",
    "co:lo:n",
    "sl/ash/es",
    "all * [ ] \\ { } : / at once",
]
RICH = [
    "tuple",
    "datetime_utc",
    "datetime_offset",
    "datetime_naive",
    "date",
    "time",
    "timedelta",
    "bytes",
    "decimal",
    "set",
    "frozenset",
    "big_int",
    "non_str_keys",
    "nested_rich",
]


class Run:
    def __init__(self, e2e: E2E, result: CommandResult) -> None:
        self.e2e = e2e
        self.result = result
        self.run_id = e2e.home.latest_run(DAG_ID).run_id
        self.rows = e2e.home.xcoms(DAG_ID, self.run_id)

    def row(self, task_id: str, key: str = "return_value", map_index: int = -1) -> XComRow:
        for row in self.rows:
            if (row.task_id, row.key, row.map_index) == (task_id, key, map_index):
                return row
        raise AssertionError(f"no XCom {task_id}[{map_index}] {key!r} in the DB; rows: {self.rows}")

    def pulled(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        return self.e2e.value(self.row(task_id, key, map_index))


def carried(key: str) -> bool:
    """Whether this Airflow's execution API can carry the key (SLASH_KEY_REASON)."""
    return "/" not in key or execution_api_takes_slash_keys()


@pytest.fixture(scope="module")
def run(e2e: E2E) -> Run:
    conf = {"odd_keys": [key for key in ODD_KEYS if carried(key)]}
    result = e2e.home.dags_test(DAG_ID, conf=conf, timeout=300)
    return Run(e2e, result)


def test_dag_run_succeeds_and_every_task_ends_as_expected(run: Run) -> None:
    states = run.e2e.home.task_states(DAG_ID, run.run_id)
    expected = {task: "success" for task in states}
    expected["not_taken"] = "skipped"
    assert states == expected, describe(run.result)
    assert run.result.ok, describe(run.result)
    assert run.e2e.home.latest_run(DAG_ID).state == "success"
    assert {f"square[{i}]" for i in range(len(MAPPED_INPUT))} <= states.keys()


def test_db_holds_only_references_to_live_keys_and_redis_nothing_else(run: Run) -> None:
    rows = run.e2e.assert_db_and_redis_agree(DAG_ID, run.run_id)
    not_pushed = [key for key in ODD_KEYS if not carried(key)]
    assert len(rows) > 40 - len(not_pushed)  # every kind of XCom the DAG makes is in there


def test_taskflow_and_multiple_outputs(run: Run) -> None:
    assert run.pulled("produce")["label"] == "héllo ✓ 日本"
    assert run.pulled("split", "left") == "L"
    assert run.pulled("split", "right") == [1, 2, 3]
    assert run.pulled("split") == {"left": "L", "right": [1, 2, 3]}


def test_expand_and_downstream_pull_of_all_mapped_outputs(run: Run) -> None:
    assert [run.pulled("square", map_index=i) for i in range(len(MAPPED_INPUT))] == [
        x * x for x in MAPPED_INPUT
    ]
    assert run.pulled("collect") == sum(x * x for x in MAPPED_INPUT)
    seen = run.pulled("pull_many")
    assert seen["squares"] == [x * x for x in MAPPED_INPUT]
    assert seen["square_2"] == 9


def test_xcom_pull_over_a_list_of_task_ids(run: Run) -> None:
    both = run.pulled("pull_many")["both"]
    assert both[0]["numbers"] == [1, 2, 3]
    assert both[1] == {"left": "L", "right": [1, 2, 3]}


def test_bash_operator_templated_pull_and_push_of_last_line(run: Run) -> None:
    expected = f"left=L total={sum(x * x for x in MAPPED_INPUT)}"
    assert run.pulled("bash_pull") == expected
    assert run.pulled("check_bash") == expected


@pytest.mark.parametrize("key", ODD_KEYS)
def test_odd_keys_round_trip(run: Run, key: str) -> None:
    if not carried(key):
        pytest.skip(SLASH_KEY_REASON)
    assert run.pulled("push_odd_keys", key) == {"key": key, "i": ODD_KEYS.index(key)}
    assert run.pulled("pull_odd_keys")[key] == {"key": key, "i": ODD_KEYS.index(key)}


@pytest.mark.parametrize("name", RICH)
def test_rich_value_survives_push_and_pull(run: Run, name: str) -> None:
    # The codec's supported types are a contract: a type it stops taking fails here, never skips.
    report = run.pulled("pull_rich")
    assert report[name] == "ok", describe(run.result)
    assert run.pulled("push_rich", f"rich_{name}") is not None


def test_retry_leaves_nothing_of_the_failed_try_but_its_history(run: Run) -> None:
    flaky = [ti for ti in run.e2e.home.task_instances(DAG_ID, run.run_id) if ti.task_id == "flaky"]
    assert [(ti.state, ti.try_number) for ti in flaky] == [("success", 2)]
    first_try = [r for r in run.rows if r.key == "only_on_first_try"]
    left = [k for k in run.e2e.run_keys(DAG_ID, run.run_id) if ":only_on_first_try" in k]
    if per_attempt_xcoms():
        # 3.4 keeps the failed try's rows as history: each keeps its own value, under try 1's key.
        assert [r.try_number for r in first_try] == [1]
        assert left == [keys.key_of_reference(first_try[0].value)]
    else:
        assert (first_try, left) == ([], [])
    assert run.pulled("flaky", "on_retry") == 2
    assert run.pulled("after_flaky") == "recovered"
    assert "flaky: the first try fails on purpose" in run.result.output


def test_branch_decision_stays_inline_and_skips_the_other_branch(run: Run) -> None:
    assert run.row("choose", "skipmixin_key").value == {"followed": ["taken"]}
    states = run.e2e.home.task_states(DAG_ID, run.run_id)
    assert (states["taken"], states["not_taken"]) == ("success", "skipped")
    assert run.pulled("taken") == "ran"
