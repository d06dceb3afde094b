"""The plugin preloads redis-py in processes of a deployment that uses the backend, and only there."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PROBE = (
    "import json, sys\n"
    "import redis_xcom.ui.plugin\n"
    "from redis_xcom import preload\n"
    "print(json.dumps({'redis': 'redis' in sys.modules, 'by': preload.preloaded_by}))\n"
)


def _probe(tmp_path: object, backend: str | None) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__CORE__XCOM_BACKEND")}
    env["AIRFLOW_HOME"] = str(tmp_path)
    if backend is not None:
        env["AIRFLOW__CORE__XCOM_BACKEND"] = backend
    done = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_loading_the_plugin_preloads_redis_py_when_the_backend_is_configured(tmp_path: object) -> None:
    seen = _probe(tmp_path, "redis_xcom.ExclusiveRedisXCom")
    assert seen["redis"] is True
    assert isinstance(seen["by"], int)


OBJECT_STORAGE = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"


@pytest.mark.parametrize("backend", [None, OBJECT_STORAGE])
def test_other_backends_pay_nothing_for_the_plugin(tmp_path: object, backend: str | None) -> None:
    seen = _probe(tmp_path, backend)
    assert seen == {"redis": False, "by": None}
