"""End-to-end DAG: every way a DAG moves XComs, with consumers that assert what they pulled.

Run by tests/e2e/test_e2e_xcom.py through `airflow dags test`; a consumer that sees a wrong value
fails, and the test sees the failed task. Values the consumers saw are pushed too, for the test.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import Any

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task

MAPPED_INPUT = [1, 2, 3, 4]
PRODUCED = {"numbers": [1, 2, 3], "label": "héllo ✓ 日本", "nested": {"a": {"b": [None, True, 1.5, -7]}}}
# Keys Airflow's execution API carries intact (not ? % # nor non-Latin-1: see AIRFLOW3_XCOM.md).
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


def rich_candidates() -> dict[str, Any]:
    """Values the default serde cannot carry faithfully; each is checked only if the codec takes it."""
    return {
        "tuple": (1, "two", (3.0, None)),
        "datetime_utc": dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc),
        "datetime_offset": dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
        "datetime_naive": dt.datetime(2024, 5, 6, 7, 8, 9),
        "date": dt.date(2024, 2, 29),
        "time": dt.time(12, 34, 56, 789),
        "timedelta": dt.timedelta(days=1, microseconds=5),
        "bytes": b"\x00\xffbinary\r\n",
        "decimal": decimal.Decimal("12345678901234567890.000000001"),
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "big_int": 2**100,
        "non_str_keys": {1: "one", 2.5: "two and a half"},
        "nested_rich": {"when": dt.date(2024, 1, 1), "pair": (b"x", decimal.Decimal("0.1"))},
    }


def same(a: Any, b: Any) -> bool:
    """Equal and of exactly the same types, all the way down (True == 1 is not enough here)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, dt.datetime):
        return a == b and a.utcoffset() == b.utcoffset()
    return bool(a == b)


@dag(
    dag_id="e2e_xcom",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0},
    tags=["redis-xcom-e2e"],
)
def e2e_xcom() -> None:
    @task
    def produce() -> Any:  # not dict[...]: that annotation implies multiple_outputs
        return PRODUCED

    @task(multiple_outputs=True)
    def split() -> dict[str, Any]:
        return {"left": "L", "right": [1, 2, 3]}

    @task
    def square(x: int) -> int:
        return x * x

    @task
    def collect(squares: Any) -> int:
        got = list(squares)
        assert got == [x * x for x in MAPPED_INPUT], got
        return sum(got)

    @task
    def pull_many(ti: Any = None) -> Any:
        both = ti.xcom_pull(task_ids=["produce", "split"])
        assert both == [PRODUCED, {"left": "L", "right": [1, 2, 3]}], both
        left = ti.xcom_pull(task_ids="split", key="left")
        right = ti.xcom_pull(task_ids="split", key="right")
        assert (left, right) == ("L", [1, 2, 3]), (left, right)
        squares = ti.xcom_pull(task_ids="square")
        assert squares == [x * x for x in MAPPED_INPUT], squares
        one = ti.xcom_pull(task_ids="square", map_indexes=2)
        assert one == MAPPED_INPUT[2] ** 2, one
        return {"both": both, "left": left, "right": right, "squares": squares, "square_2": one}

    bash_pull = BashOperator(
        task_id="bash_pull",
        bash_command=(
            "echo 'first line is not pushed'; "
            "echo \"left={{ ti.xcom_pull(task_ids='split', key='left') }} "
            "total={{ ti.xcom_pull(task_ids='collect') }}\""
        ),
    )

    @task
    def check_bash(line: str) -> str:
        expected = f"left=L total={sum(x * x for x in MAPPED_INPUT)}"
        assert line == expected, (line, expected)
        return line

    # The test passes the keys this Airflow's execution API can carry (Airflow 3.0's cannot take '/').
    @task
    def push_odd_keys(dag_run: Any = None, ti: Any = None) -> None:
        for key in dag_run.conf.get("odd_keys", ODD_KEYS):
            ti.xcom_push(key=key, value={"key": key, "i": ODD_KEYS.index(key)})

    @task
    def pull_odd_keys(dag_run: Any = None, ti: Any = None) -> Any:
        keys = dag_run.conf.get("odd_keys", ODD_KEYS)
        seen = {key: ti.xcom_pull(task_ids="push_odd_keys", key=key) for key in keys}
        wrong = {k: v for k, v in seen.items() if v != {"key": k, "i": ODD_KEYS.index(k)}}
        assert not wrong, wrong
        return seen

    # Every rich type is part of the codec's contract: a push it refuses fails the task (and the test).
    @task
    def push_rich(ti: Any = None) -> list[str]:
        pushed = []
        for name, value in rich_candidates().items():
            ti.xcom_push(key=f"rich_{name}", value=value)
            pushed.append(name)
        return pushed

    @task
    def pull_rich(pushed: list[str], ti: Any = None) -> Any:
        candidates = rich_candidates()
        report = {}
        for name in candidates:
            if name not in pushed:
                report[name] = "not pushed"
                continue
            got = ti.xcom_pull(task_ids="push_rich", key=f"rich_{name}")
            report[name] = (
                "ok" if same(got, candidates[name]) else f"mismatch: {got!r} ({type(got).__name__})"
            )
        bad = {k: v for k, v in report.items() if v.startswith("mismatch")}
        assert not bad, bad
        return report

    @task(retries=1, retry_delay=dt.timedelta(seconds=0))
    def flaky(ti: Any = None) -> str:
        if ti.try_number == 1:
            ti.xcom_push(key="only_on_first_try", value="pushed by the failed try")
            raise RuntimeError("flaky: the first try fails on purpose")
        ti.xcom_push(key="on_retry", value=ti.try_number)
        return "recovered"

    @task
    def after_flaky(value: str, ti: Any = None) -> str:
        assert value == "recovered", value
        leftover = ti.xcom_pull(task_ids="flaky", key="only_on_first_try")
        assert leftover is None, leftover
        assert ti.xcom_pull(task_ids="flaky", key="on_retry") == 2
        return value

    @task.branch
    def choose() -> str:
        return "taken"

    @task
    def taken() -> str:
        return "ran"

    @task
    def not_taken() -> str:
        raise AssertionError("the branch should have skipped this task")

    sq = square.expand(x=MAPPED_INPUT)
    total = collect(sq)
    produced, parts = produce(), split()
    [produced, parts, sq] >> pull_many()
    [parts, total] >> bash_pull
    check_bash(bash_pull.output)
    odd = push_odd_keys()
    odd >> pull_odd_keys()
    pull_rich(push_rich())
    after_flaky(flaky())
    choose() >> [taken(), not_taken()]


e2e_xcom()
