"""What a user of a real deployment would check, the same for every executor.

Each test module subclasses DeploymentChecks and names its executor; the module's `outcome`
fixture (conftest.py) has already deployed Airflow, run every DAG and cleared one task.

Airflow 3.4 makes every attempt (a retry, a re-run after a clear) a task instance of its own and
keeps the earlier attempts' XCom rows as history: the checks tell it by the DB's tables
(`outcome.db.per_attempt()`), read values from the live attempts as tasks do, and check every
attempt's rows against Redis.
"""

from __future__ import annotations

from typing import Any

import pytest

from redis_xcom import keys
from redis_xcom.backend import SKIPMIXIN_KEY
from redis_xcom.rows import XComRow
from tests.airflow_limits import MAPPED_RETRY_REASON, retry_clears_mapped_xcoms
from tests.deployment.airflow_deployment import CONCURRENCY
from tests.deployment.scenario import RERUN_DAG, STATE_DAG, Outcome
from tests.state_store.example_runs import BEFORE_3_3_REASON, has_state_store
from tests.xcom_checks import assert_rows_agree_with_redis, run_keys, stored_value

# A cleared mapped task's re-run is a new try too: the same limit as its retry.
MAPPED_NEW_TRY_LIMIT = pytest.mark.xfail(
    not retry_clears_mapped_xcoms(), strict=True, reason=MAPPED_RETRY_REASON
)
MIN_TASK_PROCESSES = 60
# As in dags/deployment_xcom.py: the map indexes of its mapped tasks, and deployment_fanout's width.
MAPPED = [0, 1, 2]
FANOUT = 12


def values_of(outcome: Outcome, dag_id: str, task_id: str, key: str = "return_value") -> dict[int, Any]:
    """map_index -> value in Redis, for one task and key of the live attempts of the DAG's run the
    test triggered."""
    run_id = outcome.triggered[dag_id]
    rows = [r for r in outcome.live_rows(dag_id, run_id) if (r.task_id, r.key) == (task_id, key)]
    return {r.map_index: stored_value(outcome.xcom.client, r) for r in rows}


def redis_keys_named(outcome: Outcome, dag_id: str, task_id: str, key: str | None = None) -> list[str]:
    """Redis keys of one task (and XCom key) in the triggered run, whatever their map index and
    attempt (scanned, not taken from the DB)."""
    run_id = outcome.triggered[dag_id]
    found = run_keys(outcome.xcom.client, outcome.xcom.prefix, dag_id, run_id)
    return sorted(
        k
        for k in found
        if (coords := keys.parse_key(k)) is not None
        and coords.task_id == task_id
        and (key is None or coords.key == key)
    )


def rows_of(outcome: Outcome, dag_id: str, task_id: str, key: str | None = None) -> list[XComRow]:
    """Every attempt's rows of one task (and XCom key) in the triggered run."""
    rows = outcome.rows(dag_id, outcome.triggered[dag_id])
    return [r for r in rows if r.task_id == task_id and key in (None, r.key)]


def referenced_keys(rows: list[XComRow]) -> list[str]:
    return sorted(str(keys.key_of_reference(r.value)) for r in rows)


def assert_each_row_names_its_attempt(outcome: Outcome, dag_id: str, rows: list[XComRow]) -> None:
    """3.4: each row's Redis key names the task instance the row belongs to (`ti-<id>`), and that
    task instance is the attempt the row says."""
    run_id = outcome.triggered[dag_id]
    attempts = {t.id: t.try_number for t in outcome.db.task_tries(dag_id, run_id, attempts=True)}
    for row in rows:
        assert row.task_instance_id is not None, row
        assert row.value.endswith(":ti-" + row.task_instance_id.replace("-", "")), row
        assert attempts[row.task_instance_id] == row.try_number, (row, attempts)


class DeploymentChecks:
    """The tests every executor's module runs against its own deployment."""

    @pytest.mark.skipif(not has_state_store(), reason=BEFORE_3_3_REASON)
    def test_task_and_asset_state_live_in_redis(self, outcome: Outcome) -> None:
        """RedisStateStoreBackend in both settings: the retry read back the job id its first try stored,
        the state tables stay empty, and Redis holds each key as a reference with its value."""
        (result,) = values_of(outcome, STATE_DAG, "reattach").values()
        assert result["try"] == 2 and result["job_id"].startswith("job-") and result["runs"] >= 1, result
        assert outcome.db.row_count("task_state_store") == 0
        assert outcome.db.row_count("asset_state_store") == 0
        client, prefix = outcome.xcom.client, outcome.xcom.prefix
        fields: dict[str, set[str]] = {}
        for key in client.scan_iter(match=f"{prefix}:state:*", count=1000):
            if client.type(key) == b"hash":
                fields[key.decode()] = {name.decode() for name in client.hkeys(key)}
        (task_hash,) = [k for k in fields if k.startswith(f"{prefix}:state:{{t/{STATE_DAG}/")]
        # r: what the row would hold (the worker's reference), v: the value it refers to.
        assert fields[task_hash] == {"r:job_id", "v:job_id", "r:status", "v:status"}, fields
        asset_hashes = [k for k, f in fields.items() if "deployment_state_warehouse" in k or "{a/id/" in k]
        assert {"r:runs", "v:runs"} <= set().union(*(fields[k] for k in asset_hashes)), fields
        if "example_task_state_store_async" in outcome.dag_files:
            # aget/aset from an async task (3.4+): the retry resumed from the checkpoint in Redis.
            (async_hash,) = [k for k in fields if "{t/example_task_state_store_async/" in k]
            assert fields[async_hash] == {"r:progress", "v:progress"}, fields
            (pages,) = values_of(outcome, "example_task_state_store_async", "ingest_pages").values()
            assert pages == {"pages": 12, "rows": sum(page * 100 for page in range(1, 13))}, pages

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
        # The state store's keys (deployment_state, Airflow 3.3+) have a check of their own below.
        found = [k for k in found if not k.startswith(f"{outcome.xcom.prefix}:state:")]
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

    def test_a_retry_purges_the_failed_try_or_keeps_it_as_history(self, outcome: Outcome) -> None:
        """Before 3.4 the retry purges the failed try's rows and values; 3.4 keeps them with the
        archived attempt, each resolving to what that try pushed. Tasks never pull them."""
        for dag_id, key, pushed in (
            ("deployment_retry", "first_try_only", {"try": 1, "map_index": -1}),
            ("e2e_xcom", "only_on_first_try", "pushed by the failed try"),
        ):
            run_id = outcome.triggered[dag_id]
            flaky = [t for t in outcome.db.task_tries(dag_id, run_id) if t.task_id == "flaky"]
            assert [(t.state, t.try_number) for t in flaky] == [("success", 2)], f"{dag_id}: {flaky}"
            live = [r for r in outcome.live_rows(dag_id, run_id) if (r.task_id, r.key) == ("flaky", key)]
            assert not live, f"{dag_id}: the live attempt has the failed try's rows: {live}"
            kept = rows_of(outcome, dag_id, "flaky", key)
            in_redis = redis_keys_named(outcome, dag_id, "flaky", key)
            if outcome.db.per_attempt():
                assert [(r.try_number, stored_value(outcome.xcom.client, r)) for r in kept] == [(1, pushed)]
                assert in_redis == referenced_keys(kept), dag_id
                assert_each_row_names_its_attempt(outcome, dag_id, kept)
            else:
                assert (kept, in_redis) == ([], []), f"{dag_id}: the failed try's rows are still there"
        assert values_of(outcome, "deployment_retry", "flaky") == {-1: {"try": 2}}
        assert values_of(outcome, "deployment_retry", "after_retries")[-1]["single_leftover"] is None

    @MAPPED_NEW_TRY_LIMIT
    def test_a_retry_of_a_mapped_task_purges_the_failed_try_or_keeps_it_as_history(
        self, outcome: Outcome
    ) -> None:
        run_id = outcome.triggered["deployment_retry"]
        tries = [t for t in outcome.db.task_tries("deployment_retry", run_id) if t.task_id == "flaky_mapped"]
        assert [(t.state, t.try_number) for t in tries] == [("success", 2)] * len(MAPPED)
        assert values_of(outcome, "deployment_retry", "flaky_mapped") == {
            i: {"try": 2, "x": i} for i in MAPPED
        }
        kept = rows_of(outcome, "deployment_retry", "flaky_mapped", "first_try_only")
        in_redis = redis_keys_named(outcome, "deployment_retry", "flaky_mapped", "first_try_only")
        if outcome.db.per_attempt():
            assert {r.map_index: (r.try_number, stored_value(outcome.xcom.client, r)) for r in kept} == {
                i: (1, {"try": 1, "map_index": i}) for i in MAPPED
            }
            assert in_redis == referenced_keys(kept)
            assert_each_row_names_its_attempt(outcome, "deployment_retry", kept)
        else:
            assert (kept, in_redis) == ([], [])
        assert values_of(outcome, "deployment_retry", "after_retries")[-1]["mapped_leftover"] is None

    def test_two_tries_pushing_the_same_key_each_resolve_to_their_own_value(self, outcome: Outcome) -> None:
        """same_key's try 1 pushes k="try1" and try1_only, then fails; try 2 pushes k="try2". 3.4 keeps
        a row of each attempt, each to its own Redis key; before, the retry purged try 1's keys and
        try 2 rewrote k. Either way Redis holds exactly the keys the rows refer to."""
        dag_id = "deployment_retry"
        rows = rows_of(outcome, dag_id, "same_key")
        found = {(r.key, r.try_number): stored_value(outcome.xcom.client, r) for r in rows}
        if outcome.db.per_attempt():
            assert found == {
                ("k", 1): "try1",
                ("try1_only", 1): {"written_by": "try1"},
                ("k", 2): "try2",
                ("return_value", 2): {"done_by": "try2"},
            }, rows
            assert_each_row_names_its_attempt(outcome, dag_id, rows)
            attempts = [
                (t.try_number, t.archived)
                for t in outcome.db.task_tries(dag_id, outcome.triggered[dag_id], attempts=True)
                if t.task_id == "same_key"
            ]
            assert attempts == [(1, True), (2, False)], attempts
        else:
            assert found == {("k", None): "try2", ("return_value", None): {"done_by": "try2"}}, rows
        assert redis_keys_named(outcome, dag_id, "same_key") == referenced_keys(rows)
        pulled = values_of(outcome, dag_id, "after_retries")[-1]["same_key"]
        assert pulled == {"returned": {"done_by": "try2"}, "k": "try2", "try1_only": None}

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
        try_1 = [r for r in rows_of(outcome, RERUN_DAG, task_id) if r.try_number == 1]
        in_redis = redis_keys_named(outcome, RERUN_DAG, task_id, "try_1")
        if outcome.db.per_attempt():
            # The cleared attempt is archived with its rows, which still resolve to what they did.
            client = outcome.xcom.client
            assert {(task_id, r.map_index, r.key): stored_value(client, r) for r in try_1} == before
            assert in_redis == referenced_keys([r for r in try_1 if r.key == "try_1"])
            assert_each_row_names_its_attempt(outcome, RERUN_DAG, try_1)
        else:
            assert (try_1, in_redis) == ([], [])

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
        # Only the api-server's state store may keep a connection (its pool, not a leak): none before 3.3.
        assert conns.api_server <= (CONCURRENCY if has_state_store() else 0), figures
        assert conns.after - conns.api_server == conns.baseline, (
            f"connections left open after the runs: {figures}"
        )
