"""The plugin as Airflow finds it: entry point, provider info, cheap import, the app it mounts."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.testclient import TestClient

from redis_xcom.provider_info import get_provider_info
from redis_xcom.ui.plugin import URL_PREFIX, RedisXComPlugin
from tests.ui.conftest import DAG, RUN, UI


def test_installing_the_package_registers_the_plugin() -> None:
    points = {e.name: e.value for e in importlib.metadata.entry_points(group="airflow.plugins")}
    assert points.get("redis_xcom") == "redis_xcom.ui.plugin:RedisXComPlugin"
    assert get_provider_info()["plugins"] == [
        {"name": "redis_xcom", "plugin-class": "redis_xcom.ui.plugin.RedisXComPlugin"}
    ]


def _last_line_printed_by(code: str) -> str:
    """Run code in a fresh interpreter (nothing imported yet) and return its last line of output."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def test_airflows_plugin_manager_mounts_the_app_and_the_task_instance_tab() -> None:
    code = (
        "from airflow import plugins_manager as pm\n"
        "apps = pm.get_fastapi_plugins()[0] if hasattr(pm, 'get_fastapi_plugins') else None\n"
        "if apps is None:\n"
        "    pm.initialize_fastapi_plugins(); apps = pm.fastapi_apps\n"
        "print(sorted(a['url_prefix'] for a in apps))\n"
    )
    assert URL_PREFIX in _last_line_printed_by(code)
    (view,) = RedisXComPlugin.external_views
    assert view["destination"] == "task_instance"
    for placeholder in ("{DAG_ID}", "{RUN_ID}", "{TASK_ID}", "{MAP_INDEX}"):
        assert placeholder in view["href"]


def test_importing_the_plugin_builds_no_app_and_touches_no_redis() -> None:
    """What the plugin adds to Airflow's own plugin base (which imports fastapi itself on 3.0)."""
    code = (
        "import sys, airflow.plugins_manager\n"
        "before = set(sys.modules)\n"
        "import redis_xcom.ui.plugin\n"
        "heavy = ('redis_xcom.ui.app', 'redis_xcom.backend', 'redis', 'fastapi', 'jinja2', 'pandas')\n"
        "print(','.join(m for m in heavy if m in sys.modules and m not in before))\n"
    )
    assert _last_line_printed_by(code) == ""


def test_the_mounted_app_serves_the_page_under_the_plugins_prefix(ui: UI) -> None:
    ui.push("return_value", {"answer": 42})
    parent = FastAPI()
    (entry,) = RedisXComPlugin.fastapi_apps
    parent.mount(entry["url_prefix"], entry["app"])
    client = TestClient(parent)
    url = f"{URL_PREFIX}/dags/{DAG}/runs/{RUN}/tasks/extract"
    assert client.get(url).status_code == 401  # the first request builds the app
    assert client.get(f"{URL_PREFIX}/docs").status_code == 404  # nothing is served without the check
    from redis_xcom.ui.app import TaskXComs, task_xcoms

    # The lazily built app is a fresh one: give it the test's rows as well.
    entry["app"]._app.dependency_overrides[task_xcoms] = lambda: TaskXComs(ui.rows)
    response = client.get(url, headers=ui.auth())
    assert response.status_code == 200, response.text
    assert "&#34;answer&#34;: 42" in response.text
    run = quote(RUN, safe="")
    assert (
        f'href="{URL_PREFIX}/api/dags/{DAG}/runs/{run}/tasks/extract/value?key=return_value' in response.text
    )
