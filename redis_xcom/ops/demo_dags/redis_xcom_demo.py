"""The example DAG that `redis-xcom demo` runs: the usual ways a DAG passes XComs around.

- TaskFlow return values (``extract``), a ``multiple_outputs`` task (``summarize``),
- dynamic task mapping (``add_tax.expand``) and a downstream task pulling every mapped output
  (``collect``),
- a BashOperator whose command pulls XComs through Jinja and pushes its last stdout line (``report``),
- a branch (``route``): its decision (``skipmixin_key``) stays inline in the DB, the rest goes to Redis,
- an explicit ``ti.xcom_push`` with a custom key (``big_day``).

Every consumer checks what it pulled and fails on a mismatch. With
``[core] xcom_backend = redis_xcom.ExclusiveRedisXCom`` the xcom table holds only references.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import dag, task

ORDERS: list[dict[str, Any]] = [
    {"id": 1, "customer": "Ada", "amount": 12.5},
    {"id": 2, "customer": "Grace", "amount": 80.0},
    {"id": 3, "customer": "Linus", "amount": 7.25},
]
TAX = 1.2
EXPECTED_WITH_TAX = round(sum(o["amount"] for o in ORDERS) * TAX, 2)


@dag(
    dag_id="redis_xcom_demo",
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    default_args={"retries": 0},
    tags=["redis-xcom", "example"],
)
def redis_xcom_demo() -> None:
    @task
    def extract() -> Any:
        return ORDERS

    @task(multiple_outputs=True)
    def summarize(orders: Any) -> dict[str, Any]:
        return {"count": len(orders), "total": sum(o["amount"] for o in orders)}

    @task
    def add_tax(order: dict[str, Any]) -> Any:
        return {**order, "with_tax": round(order["amount"] * TAX, 2)}

    @task
    def collect(taxed: Any) -> float:
        rows = list(taxed)  # every mapped output, pulled from Redis in one round trip
        assert [r["id"] for r in rows] == [o["id"] for o in ORDERS], rows
        total = round(sum(r["with_tax"] for r in rows), 2)
        assert total == EXPECTED_WITH_TAX, total
        return total

    report = BashOperator(
        task_id="report",
        bash_command=(
            "echo \"{{ ti.xcom_pull(task_ids='summarize', key='count') }} orders, "
            "total {{ ti.xcom_pull(task_ids='summarize', key='total') }}, "
            "with tax {{ ti.xcom_pull(task_ids='collect') }}\""
        ),
    )

    @task.branch
    def route(total: Any) -> str:
        return "big_day" if total > 50 else "quiet_day"

    @task
    def big_day(line: Any, ti: Any = None) -> None:
        expected = (
            f"{len(ORDERS)} orders, total {sum(o['amount'] for o in ORDERS)}, with tax {EXPECTED_WITH_TAX}"
        )
        assert line == expected, (line, expected)
        ti.xcom_push(key="note", value=f"Big day! {line}")

    @task
    def quiet_day() -> None:
        raise AssertionError("the branch should have skipped quiet_day")

    orders = extract()
    summary: Any = summarize(orders)  # typed Any: multiple_outputs results are indexable
    total = collect(add_tax.expand(order=orders))
    [summary, total] >> report
    route(summary["total"]) >> [big_day(report.output), quiet_day()]


redis_xcom_demo()
