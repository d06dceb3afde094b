"""Limits of older Airflow 3 minors (and of the redis-py their celery extra pins) that tests meet.

Each limit is found by what the installed packages do or have, never by Airflow's version number,
and comes with the reason a test gives when it skips or changes its expectation because of it.
The version named in a reason is where the limit was seen (`make test-matrix`).
"""

from __future__ import annotations

import ast
import functools
import inspect
import re

import redis

SLASH_KEY_REASON = (
    "Airflow 3.0's execution API routes XCom keys as {key}, not {key:path}: pushing or pulling a key "
    "holding '/' gets '404 Not Found' with any XCom backend (3.1 takes them)"
)
PYDANTIC_REASON = (
    "Airflow 3.0's serde has no pydantic support (added in 3.1): it refuses a pydantic model with "
    '"cannot serialize object of type <class ...>", so no backend built on it can store one'
)
MAPPED_RETRY_REASON = (
    "Airflow 3.0's task runner clears a retried task's XComs with XCom.delete(key, dag_id, task_id, "
    "run_id), without map_index: for a mapped task the server looks up and deletes map_index -1 only, "
    "so the first try's rows (and their values) survive the retry (3.1 passes map_index)"
)
# redis-py before 6 is what the celery extra of Airflow 3.0 to 3.2 installs (kombu caps it at 5.2.1).
OLD_REDIS_PY = int(redis.__version__.split(".")[0]) < 6
CONNECT_AT_START_REASON = (
    f"redis-py {redis.__version__} (kombu's cap in the celery extra of Airflow 3.0-3.2) connects a "
    "pooled connection before a command's retry loop: a server that is down when the command "
    "starts fails it at once ('Connection refused'); redis-py 6 retries it"
)
NOAUTH_RECURSION_REASON = (
    f"redis-py {redis.__version__} health-checks inside its own handshake: against a server that "
    "wants a password and gets none, CLIENT SETNAME's NOAUTH reconnects recursively until "
    "RecursionError; redis-py 6 skips that check"
)

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@functools.cache
def execution_api_takes_slash_keys() -> bool:
    """Whether the execution API's XCom routes end in {key:path} (3.1+), so keys may hold '/'."""
    from airflow.api_fastapi.execution_api.routes import xcoms

    paths = {getattr(route, "path", "") for route in xcoms.router.routes}
    return any("{key:path}" in path for path in paths)


@functools.cache
def serde_takes_pydantic() -> bool:
    """Whether Airflow's serde serializes a pydantic model (3.1+)."""
    import pydantic

    from redis_xcom.airflow_compat import airflow_serde

    class Probe(pydantic.BaseModel):
        n: int = 1

    try:
        airflow_serde().serialize(Probe())
    except TypeError:
        return False
    return True


@functools.cache
def retry_clears_mapped_xcoms() -> bool:
    """Whether the task runner passes map_index to every XCom.delete it makes (3.1+): read from its
    source, since the difference only shows on a retry of a mapped task."""
    from airflow.sdk.execution_time import task_runner

    calls = [
        node
        for node in ast.walk(ast.parse(inspect.getsource(task_runner)))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "delete"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "XCom"
    ]
    assert calls, "the task runner no longer calls XCom.delete: re-read how it clears XComs on a retry"
    return all(any(k.arg == "map_index" for k in call.keywords) for call in calls)


def plain_text(log: str) -> str:
    """A command's output without colours and with whitespace runs as single spaces.

    Airflow 3.0's `airflow dags test` prints a task's exception as a rich traceback, coloured and
    wrapped at the terminal's width, so a message is searched for in this form.
    """
    return " ".join(_ANSI.sub("", log).split())


PER_ATTEMPT_REASON = (
    "task loops and per-attempt XCom rows (store_value) are Airflow 3.4's; the matrix runs these tests "
    "on its 3.4 leg"
)


def per_attempt_xcoms() -> bool:
    """Whether this Airflow drives backends through store_value, with a task instance id (3.4+)."""
    import airflow.sdk.bases.xcom as xcom

    return hasattr(xcom, "XComCoordinate")


DAG_RESULT_REASON = (
    "a DAG's result (@result) and its values in the REST API's /dags/{dag_id}/dagRuns/{run_id}/wait "
    "are Airflow 3.3's"
)


def dag_results() -> bool:
    """Whether this Airflow has DAG results (`airflow.sdk.result`, 3.3+)."""
    import airflow.sdk

    return hasattr(airflow.sdk, "result")
