"""Task loops (Airflow 3.4): a consumer in the body pulling the same iteration's value, and a mapped body.

Every iteration is its own task instance with the same dag, run, task, map index and key.
"""

from __future__ import annotations

import datetime

from airflow.sdk import dag, task, task_group


@dag(schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False)
def e2e_loop_consumer():
    @task_group
    def body():
        @task
        def produce(*, loop):
            return {"iteration": loop.index, "payload": "x" * 100 * (loop.index + 1)}

        @task
        def consume(value, *, loop):
            # The same iteration's value, not the previous or the last one.
            if value["iteration"] != loop.index:
                raise AssertionError(f"iteration {loop.index} pulled iteration {value['iteration']}'s value")
            return {"iteration": loop.index, "length": len(value["payload"])}

        consume(produce())

    body.loop(max_iterations=3)


@dag(schedule=None, start_date=datetime.datetime(2024, 1, 1), catchup=False)
def e2e_loop_mapped():
    @task_group
    def batch():
        @task
        def items(*, loop):
            return [loop.index * 10 + i for i in range(3)]

        @task
        def square(value, *, loop):
            return {"iteration": loop.index, "value": value, "square": value * value}

        square.expand(value=items())

    batch.loop(max_iterations=2)


e2e_loop_consumer()
e2e_loop_mapped()
