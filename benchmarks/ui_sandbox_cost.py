"""UI plugin: what showing a value costs now that it is decoded and rendered in a sandbox worker,
against the UI code of a git revision that decoded it in the API server, side by side.

    python -m benchmarks.ui_sandbox_cost --baseline REV [--rounds N] [--smoke] [--out DIR]

Both apps (this tree's redis_xcom.ui, and REV's copied into a private package) run in one process
under FastAPI's TestClient with a real auth manager and JWT, over the same rows and the same
redis-server (started here), and are timed in interleaved rounds (benchmarks.harness): a GET of
the JSON API (every XCom previewed) and of the download route, per value. The ratio is the median
of per-round ratios, new over old (above 1: the sandbox costs more). Standalone, not part of
`python -m benchmarks`: it compares two versions of the code, not the backend against others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.harness import compare, format_seconds, markdown_table, write_json

REPO = Path(__file__).resolve().parent.parent
UI_FILES = (
    "app.py",
    "values.py",
    "preview.py",
    "export.py",
    "auth.py",
    "templates/xcoms.html",
    "templates/error.html",
)
DAG, RUN, TASK = "bench", "manual__2024-01-01T00:00:00+00:00", "extract"


def baseline_package(rev: str, into: Path) -> ModuleType:
    """REV's redis_xcom/ui as the package ui_baseline (its imports of redis_xcom.ui rewritten)."""
    package = into / "ui_baseline"
    (package / "templates").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    for name in UI_FILES:
        text = subprocess.run(
            ["git", "show", f"{rev}:redis_xcom/ui/{name}"],
            cwd=REPO,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        text = text.replace("from redis_xcom.ui import ", "from ui_baseline import ")
        text = text.replace("redis_xcom.ui.", "ui_baseline.")
        (package / name).write_text(text)
    sys.path.insert(0, str(into))
    return importlib.import_module("ui_baseline.app")


def values(small_only: bool) -> dict[str, Any]:
    shapes: dict[str, Any] = {"small dict": {"status": "ok", "rows": 3, "ids": [1, 2, 3]}}
    if not small_only:
        shapes["1 MB str"] = "x" * (1 << 20)
        shapes["1 MB records"] = [{"id": i, "name": f"row-{i}", "score": i / 7} for i in range(22_000)]
    return shapes


def token() -> str:
    """A viewer's JWT from the tests' auth manager (the simple one), as the UI's unit tests make it."""
    from airflow.api_fastapi import app as airflow_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.dag import DagModel

    # The two DB lookups of Airflow's auth path: no metadata DB here (tests/ui/conftest.py does the same).
    DagModel.get_team_name = staticmethod(lambda *a, **k: None)  # type: ignore[method-assign]
    try:
        from airflow.models.revoked_token import RevokedToken

        RevokedToken.is_revoked = classmethod(lambda cls, *a, **k: False)  # type: ignore[method-assign,assignment]
    except ImportError:
        pass
    manager = airflow_app.create_auth_manager()
    return str(manager.generate_jwt(SimpleAuthManagerUser(username="bench", role="viewer")))


def client_of(app_module: ModuleType, rows: list[Any]) -> Any:
    from fastapi.testclient import TestClient

    app = app_module.create_app()
    # The DB read is Airflow's ORM query; here both apps get the same rows.
    app.dependency_overrides[app_module.task_xcoms] = lambda: app_module.TaskXComs(rows)
    return TestClient(app)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.ui_sandbox_cost", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--baseline", required=True, help="the git revision whose UI decoded in the API server"
    )
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--smoke", action="store_true", help="the small value only, 3 rounds")
    parser.add_argument("--out", type=Path, help="write ui_sandbox_cost.json there (default: print only)")
    args = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="redis-xcom-ui-bench-"))
    os.environ.update(
        {
            "AIRFLOW_HOME": str(scratch / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__AUTH_MANAGER": "tests.ui.auth_manager.DenyOneDagAuthManager",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__REDIS_XCOM__KEY_PREFIX": f"ui-bench-{secrets.token_hex(4)}",
        }
    )
    from benchmarks._common import provide_redis

    with provide_redis(None) as (url, kind, _owned):
        os.environ["AIRFLOW__REDIS_XCOM__URL"] = url
        return _run(args, scratch, kind)


def _run(args: argparse.Namespace, scratch: Path, kind: str) -> int:
    from redis_xcom import ExclusiveRedisXCom
    from redis_xcom.ui import app as new_app
    from redis_xcom.ui import values as new_values

    old_app = baseline_package(args.baseline, scratch)
    headers = {"Authorization": f"Bearer {token()}"}
    url = f"/api/dags/{DAG}/runs/{RUN}/tasks/{TASK}"
    table, results = [], []
    for name, value in values(args.smoke).items():
        reference = str(
            ExclusiveRedisXCom.serialize_value(value, key="v", task_id=TASK, dag_id=DAG, run_id=RUN)
        )
        rows = [new_values.XComRow(DAG, RUN, TASK, -1, "v", reference)]
        clients = {"old": client_of(old_app, rows), "new": client_of(new_app, rows)}
        for route, path, params in (("JSON API", url, {}), ("download", url + "/value", {"key": "v"})):

            def get(
                client: Any = None, path: str = path, params: dict[str, str] = params
            ) -> Callable[[], Any]:
                def once() -> Any:
                    response = client.get(path, params=params, headers=headers)
                    assert response.status_code == 200, response.text[:300]
                    return response

                return once

            stats = compare(
                {label: get(client) for label, client in clients.items()},
                baseline="old",
                rounds=3 if args.smoke else args.rounds,
                min_sample_time=0.05 if args.smoke else 0.2,
            )
            old, new = stats["old"], stats["new"]
            table.append(
                [name, route, format_seconds(old.median), format_seconds(new.median), f"{new.ratio:.2f}"]
            )
            results.append({"value": name, "route": route, "old": old.as_dict(), "new": new.as_dict()})
    rounds = 3 if args.smoke else args.rounds
    print(f"Redis: {kind}; baseline {args.baseline}; {rounds} rounds, medians of per-round samples")
    print(markdown_table(["value", "route", "old (in the API server)", "new (sandbox)", "new / old"], table))
    if args.out is not None:  # not into benchmarks/results by default: the suite's report does not read it
        args.out.mkdir(parents=True, exist_ok=True)
        write_json(args.out / "ui_sandbox_cost.json", {"baseline": args.baseline, "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
