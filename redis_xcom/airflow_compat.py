"""The Airflow APIs that moved between 3.0 and 3.3, found by what each installed Airflow has.

Every import of an Airflow module that is not the same in all Airflow 3 minors goes through here,
so the rest of the package reads as if there were one Airflow. Features are detected (an import
or an attribute), never inferred from a version number.
"""

from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any


def _first_module(*names: str) -> ModuleType:
    """The first of these modules that imports; the last one's ImportError if none does."""
    for name in names[:-1]:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    return importlib.import_module(names[-1])


# Cached: on 3.0/3.1 the first name fails, and a failed import searches sys.path on every call.
@functools.cache
def airflow_conf() -> Any:
    """Airflow's configuration: the task SDK's own from 3.2 (workers may lack airflow-core), core's before."""
    return _first_module("airflow.sdk.configuration", "airflow.configuration").conf


@functools.cache
def airflow_serde() -> ModuleType:
    """Airflow's serde (serialize / deserialize with the allow-list): in the SDK from 3.2, in core before."""
    return _first_module("airflow.sdk.serde", "airflow.serialization.serde")


async def send_to_supervisor_async(message: Any) -> Any:
    """Send a message to the task's supervisor from async code.

    The SDK's comms gained ``asend`` in 3.1; 3.0 has only the blocking ``send``, which is what
    3.0's own XCom methods call from async operators too.
    """
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    asend = getattr(SUPERVISOR_COMMS, "asend", None)
    if asend is None:
        return SUPERVISOR_COMMS.send(message)
    return await asend(message)


def send_to_supervisor(message: Any) -> Any:
    """Send a message to the task's supervisor and return its answer (every Airflow 3)."""
    from airflow.sdk.execution_time.task_runner import SUPERVISOR_COMMS

    return SUPERVISOR_COMMS.send(message)


@functools.cache
def airflow_stats() -> Any:
    """Airflow's Stats (incr / timing): the SDK's from 3.2 (``airflow.stats`` is a deprecated shim
    there), core's self-configuring class before.

    The SDK's Stats stays a no-op until the process initializes it (the task runner does;
    ``airflow dags test`` and scripts do not): it is initialized here from [metrics] as the task
    runner does, so metrics reach statsd / Datadog / OpenTelemetry from any process. 3.3 keeps the
    backend in its module (``initialize(factory=, export_legacy_names=)``), 3.2 in the class.
    """
    try:
        module = importlib.import_module("airflow.sdk.observability.stats")
    except ImportError:
        return importlib.import_module("airflow.stats").Stats
    stats = module.Stats
    from airflow.sdk.observability.metrics import stats_utils

    if hasattr(module, "initialize"):
        shared = importlib.import_module(module.initialize.__module__)
        if getattr(shared, "_factory", "unknown") is None:
            module.initialize(
                factory=stats_utils.get_stats_factory(),
                export_legacy_names=airflow_conf().getboolean("metrics", "legacy_names_on", fallback=True),
            )
    elif getattr(stats, "factory", "unknown") is None:
        factory_for: Any = stats_utils.get_stats_factory  # 3.2's takes the Stats class
        stats.initialize(factory=factory_for(stats))
    return stats


def metrics_enabled() -> bool:
    """Whether [metrics] sends metrics anywhere (statsd, Datadog or OpenTelemetry)."""
    conf = airflow_conf()
    return any(
        conf.getboolean("metrics", option, fallback=False)
        for option in ("statsd_on", "statsd_datadog_enabled", "otel_on")
    )


def get_connection(conn_id: str) -> Any:
    """An Airflow connection through Airflow's own lookup: the task's supervisor, environment
    variables (AIRFLOW_CONN_*, URI or JSON), secrets backends, the metadata DB.

    The task SDK's BaseHook from 3.1; 3.0's core BaseHook, which itself asks the task's supervisor
    when it runs inside a task.
    """
    hook = _first_module("airflow.sdk.bases.hook", "airflow.hooks.base").BaseHook
    return hook.get_connection(conn_id)


def load_xcom_machinery() -> None:
    """Import the SDK's XCom module before redis_xcom.backend in a process that has not loaded Airflow.

    That module resolves [core] xcom_backend when it is imported; reached from inside our backend's
    own import, it would find redis_xcom.backend half-imported and log a warning per attempt.
    """
    importlib.import_module("airflow.sdk.execution_time.xcom")


@functools.cache
def per_attempt_xcoms() -> bool:
    """Whether this Airflow drives backends through store_value / load_value (3.4+), whose rows hold
    references naming the writer's task instance."""
    return hasattr(importlib.import_module("airflow.sdk.bases.xcom"), "XComCoordinate")


def per_attempt_rows() -> bool:
    """Airflow 3.4+: XComModel (the API server's) reads every attempt's rows and names each row's
    task instance."""
    return hasattr(importlib.import_module("airflow.models.xcom").XComModel, "task_instance_id")


def xcom_value_wrapper() -> Any:
    """The task SDK's wrapper giving a stored value the ``.value`` that deserialize_value reads
    (private in every Airflow 3 minor: looked up here only)."""
    return importlib.import_module("airflow.sdk.bases.xcom")._XComValueWrapper


def running_task_instance() -> Any | None:
    """The task instance whose code runs now: a deferred task's, in its trigger (3.4), else the one
    whose context the task runner has set (during a task's templates and execute); None outside both."""
    trigger, get_current_context, contexts = _task_instance_sources()
    if trigger is not None and (ti := trigger.get()) is not None:
        return ti
    if contexts is not None:
        # The stack get_current_context reads, read without its RuntimeError when empty (every pull
        # of the API server, which runs no task, would pay for raising one).
        return contexts[-1].get("ti") if contexts else None
    try:
        return get_current_context().get("ti")
    except RuntimeError:  # no task is running in this process (the API server, a script, a test)
        return None


# Looked up once: a mapped sequence's every item asks.
@functools.cache
def _task_instance_sources() -> tuple[Any, Any, list[Any] | None]:
    """3.4's context variable of a trigger's task instance (None before), get_current_context, and
    the task runner's context stack behind it (private, in every task SDK 1.0 to 1.4; None if gone)."""
    from airflow.sdk import get_current_context

    trigger = getattr(importlib.import_module("airflow.sdk.bases.xcom"), "_current_trigger_ti", None)
    try:
        internal = importlib.import_module("airflow.sdk.definitions._internal.contextmanager")
    except ImportError:  # moved in a later task SDK: get_current_context alone still answers
        internal = None
    return trigger, get_current_context, getattr(internal, "_CURRENT_CONTEXT", None)
