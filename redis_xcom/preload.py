"""Import redis-py and the codec early in the long-lived Airflow processes of a deployment that uses
the backend, so that the processes they fork inherit them.

A LocalExecutor worker is forked from the scheduler and forks a process per task; a task process
that imports redis-py itself spends about 0.5 s of CPU on it (redis-py 8 also loads its asyncio
client and OpenTelemetry instruments), every task, where the default backend spends nothing. Airflow
loads plugins in the scheduler before its executor forks the workers, and the plugin module calls
``preload()``: the workers and their tasks then start with these modules already imported. Only the
modules are imported (no connection is made: a forked child builds its own pool), and nothing at all
when ``[core] xcom_backend`` is not this backend.
"""

from __future__ import annotations

import importlib
import logging
import os

from redis_xcom import airflow_compat

log = logging.getLogger(__name__)

# What a push or pull imports that is slow to import; the backend's own modules are quick after these.
MODULES = ("redis_xcom.storage.client", "redis_xcom.storage.store", "redis_xcom.codec")
# The process that preloaded them: in a forked task process, an ancestor's pid (inherited).
preloaded_by: int | None = None


def uses_backend() -> bool:
    """Whether [core] xcom_backend names this package's backend."""
    backend = airflow_compat.airflow_conf().get("core", "xcom_backend", fallback="") or ""
    return backend.strip().startswith("redis_xcom.")


def preload() -> bool:
    """Import MODULES when this deployment uses the backend; True if they were imported.

    Never fails the process that loads the plugin: a problem here shows up, with its real error, at
    the first push instead.
    """
    try:
        if not uses_backend():
            return False
        for name in MODULES:
            importlib.import_module(name)
    except Exception as exc:  # a plugin must not break the scheduler or the api-server
        log.debug("redis-xcom: preloading redis-py failed (%s); each task will import it itself", exc)
        return False
    global preloaded_by
    preloaded_by = os.getpid()
    return True
