"""What a user of a real deployment would check, the same for every executor.

Each test module subclasses DeploymentChecks and names its executor; the module's `outcome`
fixture (conftest.py) has already deployed Airflow, run every DAG and cleared one task.
"""

from __future__ import annotations

from typing import Any

import pytest

from redis_xcom import keys
from redis_xcom.backend import SKIPMIXIN_KEY
from tests.airflow_limits import MAPPED_RETRY_REASON, retry_clears_mapped_xcoms
from tests.deployment.airflow_deployment import CONCURRENCY
from tests.deployment.scenario import RERUN_DAG, Outcome
from tests.xcom_checks import assert_rows_agree_with_redis, stored_value

# A cleared mapped task's re-run is a new try too: the same limit as its retry.
MAPPED_NEW_TRY_LIMIT = pytest.mark.xfail(
    not retry_clears_mapped_xcoms(), strict=True, reason=MAPPED_RETRY_REASON
)
MIN_TASK_PROCESSES = 60
# As in dags/deployment_xcom.py: the map indexes of its mapped tasks, and deployment_fanout's width.
MAPPED = [0, 1, 2]
FANOUT = 12


def values_of(outcome: Outcome, dag_id: str, task_id: str, key: str = "return_value") -> dict[int, Any]:
    """map_index -> value in Redis, for one task and key of the DAG's run the test triggered."""
    run_id = outcome.triggered[dag_id]
    rows = [r for r in outcome.rows(dag_id, run_id) if (r.task_id, r.key) == (task_id, key)]
    return {r.map_index: stored_value(outcome.xcom.client, r) for r in rows}


def redis_keys_named(outcome: Outcome, dag_id: str, task_id: str, key: str) -> list[str]:
    """Redis keys of one task and XCom key in the triggered run, whatever their map index."""
    run_id = outcome.triggered[dag_id]
    pattern = f"{keys.run_tag(outcome.xcom.prefix, dag_id, run_id)}:{task_id}:*:{key}"
    return sorted(k.decode() for k in outcome.xcom.client.scan_iter(match=pattern, count=1000))


class DeploymentChecks:
    """The tests every executor's module runs against its own deployment."""

    def test_every_dag_file_is_deployed_and_each_dag_runs(self, outcome: Outcome) -> None:
        files = set(outcome.dag_files.values())
        assert {"deployment_xcom.py", "e2e_xcom.py", "example_xcom.py"} <= files, outcome.dag_files
        assert len(outcome.dag_files) >= 10, outcome.dag_files
        assert {dag for dag, _ in outcome.runs} == set(outcome.dag_files), outcome.describe()

    def test_every_run_succeeds(self, outcome: Outcome) -> None:
        for (dag_id, run_id), state in outcome.runs.items():
            states = outcome.db.task_states(dag_id, run_id)
            failed = {t: s for t, s in states.items() if s not in ("success", "skipped")}
            assert not failed, f"{dag_id}/{run_id}: {states}\n{outcome.describe()}"
            assert state == "success", f"{dag_id}/{run_id} is {state}"

    def test_xcom_value_column_is_jsonb_holding_reference_strings(self, outcome: Outcome) -> None:
        assert outcome.db.xcom_value_column_type() == "jsonb"
        types = outcome.db.xcom_json_types()
        assert len(types) > 80, types
        assert {t for k, t in types if k != SKIPMIXIN_KEY} == {"string"}
        assert {t for k, t in types if k == SKIPMIXIN_KEY} == {"object"}

    def test_db_holds_only_references_to_live_keys_and_redis_nothing_else(self, outcome: Outcome) -> None:
        for dag_id, run_id in outcome.runs:
            rows = outcome.rows(dag_id, run_id)
            client, prefix, ttl = outcome.xcom.client, outcome.xcom.prefix, outcome.xcom.ttl
            assert_rows_agree_with_redis(rows, client, prefix, ttl, dag_id, run_id)

    def test_redis_holds_no_key_outside_the_runs(self, outcome: Outcome) -> None:
        tags = {keys.run_tag(outcome.xcom.prefix, dag, run) for dag, run in outcome.runs}
        found = [k.decode() for k in outcome.xcom.client.scan_iter(count=1000)]
        assert found
        outside = [k for k in found if k.partition("}")[0] + "}" not in tags]
        assert not outside, outside

    def test_branch_decisions_stay_inline(self, outcome: Outcome) -> None:
        run_id = outcome.triggered["e2e_xcom"]
        rows = {(r.task_id, r.key): r.value for r in outcome.rows("e2e_xcom", run_id)}
        assert rows[("choose", SKIPMIXIN_KEY)] == {"followed": ["taken"]}
        states = outcome.db.task_states("e2e_xcom", run_id)
        assert (states["taken"], states["not_taken"]) == ("success", "skipped")
        short = outcome.db.task_states(
            "example_short_circuit_decorator", outcome.triggered["example_short_circuit_decorator"]
        )
        assert (short["true_1"], short["false_1"]) == ("success", "skipped"), short

    def test_pulled_values_are_the_pushed_ones(self, outcome: Outcome) -> None:
        assert values_of(outcome, "example_xcom", "push", "value from pusher 1") == {-1: [1, 2, 3]}
        assert values_of(outcome, "example_xcom", "push_by_returning") == {-1: {"a": "b"}}
        assert values_of(outcome, "example_xcom", "bash_push") == {-1: "value_by_return"}
        assert values_of(outcome, "example_dynamic_task_mapping", "add_one") == {0: 2, 1: 3, 2: 4}
        squares = values_of(outcome, "deployment_fanout", "emit")
        assert squares == {i: {"i": i, "square": i * i} for i in range(FANOUT)}
        assert values_of(outcome, "deployment_fanout", "total") == {-1: sum(i * i for i in range(FANOUT))}

    def test_a_failed_try_leaves_nothing_in_redis(self, outcome: Outcome) -> None:
        for dag_id, key in (("deployment_retry", "first_try_only"), ("e2e_xcom", "only_on_first_try")):
            run_id = outcome.triggered[dag_id]
            flaky = [t for t in outcome.db.task_tries(dag_id, run_id) if t.task_id == "flaky"]
            assert [(t.state, t.try_number) for t in flaky] == [("success", 2)], f"{dag_id}: {flaky}"
            leftover = [r for r in outcome.rows(dag_id, run_id) if (r.task_id, r.key) == ("flaky", key)]
            assert not leftover, f"{dag_id}: the failed try's rows are still there: {leftover}"
            assert redis_keys_named(outcome, dag_id, "flaky", key) == [], dag_id
        assert values_of(outcome, "deployment_retry", "flaky") == {-1: {"try": 2}}
        assert values_of(outcome, "deployment_retry", "after_retries")[-1]["single_leftover"] is None

    @MAPPED_NEW_TRY_LIMIT
    def test_a_failed_try_of_a_mapped_task_leaves_nothing_in_redis(self, outcome: Outcome) -> None:
        run_id = outcome.triggered["deployment_retry"]
        tries = [t for t in outcome.db.task_tries("deployment_retry", run_id) if t.task_id == "flaky_mapped"]
        assert [(t.state, t.try_number) for t in tries] == [("success", 2)] * len(MAPPED)
        assert values_of(outcome, "deployment_retry", "flaky_mapped") == {
            i: {"try": 2, "x": i} for i in MAPPED
        }
        assert redis_keys_named(outcome, "deployment_retry", "flaky_mapped", "first_try_only") == []
        assert values_of(outcome, "deployment_retry", "after_retries")[-1]["mapped_leftover"] is None

    def test_a_cleared_task_reruns_and_its_values_are_rewritten(self, outcome: Outcome) -> None:
        self._assert_rewritten(outcome, "per_try", [-1])
        consumed = values_of(outcome, RERUN_DAG, "consume")[-1]
        assert consumed["single"] == values_of(outcome, RERUN_DAG, "per_try")[-1]

    @MAPPED_NEW_TRY_LIMIT
    def test_a_cleared_mapped_task_reruns_and_its_values_are_rewritten(self, outcome: Outcome) -> None:
        self._assert_rewritten(outcome, "per_try_mapped", MAPPED)
        consumed = values_of(outcome, RERUN_DAG, "consume")[-1]
        now = values_of(outcome, RERUN_DAG, "per_try_mapped")
        assert consumed["mapped"] == [now[i] for i in MAPPED]

    @staticmethod
    def _assert_rewritten(outcome: Outcome, task_id: str, map_indexes: list[int]) -> None:
        """Try 1's key set and values (recorded before the clear) are gone, try 2's are there."""
        before = {k: v for k, v in outcome.before_clear.items() if k[0] == task_id}
        assert {(m, key) for _, m, key in before} == {
            (m, key) for m in map_indexes for key in ("return_value", "try_1")
        }
        now = values_of(outcome, RERUN_DAG, task_id)
        for m in map_indexes:
            old, new = before[(task_id, m, "return_value")], now[m]
            assert (old["try"], new["try"]) == (1, 2), (old, new)
            assert old["token"] != new["token"], "the re-run's value was not rewritten"
        assert set(values_of(outcome, RERUN_DAG, task_id, "try_2")) == set(map_indexes)
        assert values_of(outcome, RERUN_DAG, task_id, "try_1") == {}
        assert redis_keys_named(outcome, RERUN_DAG, task_id, "try_1") == []

    def test_redis_connections_are_bounded_and_all_closed_after_the_runs(self, outcome: Outcome) -> None:
        conns = outcome.connections
        figures = f"{vars(conns)}, {outcome.task_processes} task processes"
        assert outcome.task_processes >= MIN_TASK_PROCESSES, figures
        assert conns.baseline == 0, f"something held the XCom Redis before any task ran: {figures}"
        assert conns.samples > 100 and conns.peak >= 1, f"the sampler saw no task connect: {figures}"
        # One connection per running task process; a finished task's may still be listed for a
        # moment (Redis not yet scheduled to reap it) when the next one connects, on a busy machine.
        assert conns.peak <= 2 * CONCURRENCY < outcome.task_processes, figures
        # And no churn: each task process opens one connection at most, whatever it pushes and pulls.
        assert 1 <= conns.opened <= outcome.task_processes, figures
        assert conns.after == conns.baseline, f"connections left open after the runs: {figures}"
