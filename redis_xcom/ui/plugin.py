"""The Airflow plugin: registered by the `airflow.plugins` entry point and the provider info.

Airflow imports plugins in every process (scheduler, workers, DAG processor), so this module only
imports AirflowPlugin: the FastAPI app is built by the api-server on its first request to it. It
also preloads redis-py where the backend is in use (redis_xcom/preload.py says why).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from redis_xcom import preload

# Before the scheduler's executor forks its workers: their task processes inherit redis-py.
preload.preload()

URL_PREFIX = "/redis-xcom"


class LazyApp:
    """An ASGI app that builds the real one (redis_xcom.ui.app) when the first request arrives."""

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from redis_xcom.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class RedisXComPlugin(AirflowPlugin):
    """Shows the values behind redis-xcom references, with the reader's access to the DAG checked."""

    name = "redis_xcom"
    fastapi_apps = [{"app": LazyApp(), "url_prefix": URL_PREFIX, "name": "redis-xcom values"}]
    # Airflow 3.1+: a tab on the task-instance view; the UI fills the placeholders (3.0 ignores it).
    external_views = [
        {
            "name": "XCom values",
            "href": URL_PREFIX + "/dags/{DAG_ID}/runs/{RUN_ID}/tasks/{TASK_ID}?map_index={MAP_INDEX}",
            "destination": "task_instance",
            "url_route": "redis-xcom-values",
        }
    ]
