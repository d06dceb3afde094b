"""The FastAPI app the api-server mounts under /redis-xcom: a page and a JSON API per task instance.

    GET /dags/{dag_id}/runs/{run_id}/tasks/{task_id}?map_index=N             the page
    GET /api/dags/{dag_id}/runs/{run_id}/tasks/{task_id}?map_index=N         the same as JSON
    GET /api/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/value?key=K&map_index=N   one whole value as JSON

Every route needs read access to the DAG's XComs, checked by Airflow's own dependency
(`requires_access_dag("GET", DagAccessEntity.XCOM)`), fed by our token resolver (bearer or cookie).
`?decode=force` decodes values above [redis_xcom] ui_max_decode_bytes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api import security
from airflow.models.xcom import XComModel
from fastapi import Depends, FastAPI, HTTPException, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from redis_xcom import keys
from redis_xcom.errors import RedisXComError
from redis_xcom.ui import values
from redis_xcom.ui.auth import current_user
from redis_xcom.ui.export import NotRepresentable, to_json

TASK_PATH = "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"
_INTEGER = re.compile(r"-?[0-9]+")
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # every value is text on the page, never HTML
    undefined=jinja2.StrictUndefined,
)


def map_index_of(map_index: str | None = None) -> int:
    """-1 when absent, empty or the unfilled `{MAP_INDEX}` placeholder (Airflow 3.3's UI leaves it so
    for a task that is not mapped); otherwise an integer."""
    if map_index is None or map_index.strip() in ("", "{MAP_INDEX}"):
        return -1
    if not _INTEGER.fullmatch(map_index.strip()):
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"map_index must be an integer, got {map_index!r}")
    return int(map_index)


def forced(decode: str | None = None) -> bool:
    """?decode=force: decode values above ui_max_decode_bytes too."""
    return decode == "force"


MapIndex = Annotated[int, Depends(map_index_of)]
Force = Annotated[bool, Depends(forced)]


def xcom_rows(
    dag_id: str, run_id: str, task_id: str, map_index: MapIndex, session: SessionDep
) -> list[tuple[str, Any]]:
    """(key, value) of each XCom row of the task instance, as stored: a reference, or Airflow's own
    value for a row that did not come through the backend."""
    rows = session.execute(
        select(XComModel.key, XComModel.value)
        .where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == task_id,
            XComModel.map_index == map_index,
        )
        .order_by(XComModel.key)
    ).all()
    return [
        (row.key, row.value if keys.key_of_reference(row.value) else XComModel.deserialize_value(row))
        for row in rows
    ]


Rows = Annotated[list[tuple[str, Any]], Depends(xcom_rows)]


def _views(rows: list[tuple[str, Any]], force: bool) -> list[values.XComView]:
    return values.reader().views(rows, force)


def _value_path(request: Request, dag_id: str, run_id: str, task_id: str) -> str:
    """The download route's path (url_for cannot name a route of an app mounted without a name)."""
    ids = [quote(part, safe="") for part in (dag_id, run_id, task_id)]
    return (
        request.scope.get("root_path", "")
        + "/api"
        + TASK_PATH.format(dag_id=ids[0], run_id=ids[1], task_id=ids[2])
        + "/value"
    )


def create_app() -> FastAPI:
    """The app; built only by the api-server, on its first request to /redis-xcom."""
    access: Callable[..., None] = security.requires_access_dag("GET", DagAccessEntity.XCOM)
    app = FastAPI(
        title="redis-xcom",
        description="The values behind redis-xcom references",
        # No schema or docs pages: they would be the app's only routes without the access check.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        dependencies=[Depends(access)],
    )
    # Airflow's DAG-access check asks for the user through get_user: ours accepts the UI's cookie too.
    app.dependency_overrides[security.get_user] = current_user

    @app.exception_handler(HTTPException)
    async def _page_or_json(request: Request, exc: HTTPException) -> Response:
        """JSON for the API; for the page, a page saying what to do (on 3.0, after trying the UI's token)."""
        root, path = request.scope.get("root_path", ""), request.url.path
        if path.removeprefix(root).startswith("/api/"):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)
        html = _TEMPLATES.get_template("error.html").render(
            status=exc.status_code,
            detail=str(exc.detail),
            cookie_path=request.scope.get("root_path", "") or "/",
            retry_with_stored_token=exc.status_code == status.HTTP_401_UNAUTHORIZED,
        )
        return HTMLResponse(html, status_code=exc.status_code)

    @app.get("/api" + TASK_PATH)
    def task_xcoms_json(
        dag_id: str, run_id: str, task_id: str, map_index: MapIndex, rows: Rows, force: Force
    ) -> dict[str, Any]:
        """Every XCom of one task instance: reference, size in Redis, TTL left, type and a preview."""
        return {
            "dag_id": dag_id,
            "run_id": run_id,
            "task_id": task_id,
            "map_index": map_index,
            "xcoms": [view.as_json() for view in _views(rows, force)],
        }

    @app.get("/api" + TASK_PATH + "/value")
    def xcom_value(
        dag_id: str, run_id: str, task_id: str, key: str, map_index: MapIndex, rows: Rows, force: Force
    ) -> Response:
        """One whole value as a JSON file, where JSON can represent it."""
        stored = dict(rows)
        where = (
            f"dag_id={dag_id!r}, run_id={run_id!r}, task_id={task_id!r}, map_index={map_index}, key={key!r}"
        )
        if key not in stored:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No XCom with {where}")
        try:
            body = to_json(values.reader().value(stored[key], force))
        except values.ValueGone as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"XCom {where}: {exc}") from None
        except values.ValueTooLargeToDecode as exc:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE, f"XCom {where}: {exc}") from None
        except NotRepresentable as exc:
            raise HTTPException(
                status.HTTP_406_NOT_ACCEPTABLE, f"XCom {where} cannot be written as JSON: {exc}"
            ) from None
        except RedisXComError as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"XCom {where}: {exc}") from None
        filename = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{dag_id}.{task_id}.{map_index}.{key}") + ".json"
        return Response(
            body,
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @app.get(TASK_PATH, response_class=HTMLResponse)
    def task_xcoms_page(
        request: Request,
        dag_id: str,
        run_id: str,
        task_id: str,
        map_index: MapIndex,
        rows: Rows,
        force: Force,
    ) -> HTMLResponse:
        """The page Airflow's task-instance tab shows (or a browser opens by URL on Airflow 3.0)."""
        settings = values.reader().settings
        html = _TEMPLATES.get_template("xcoms.html").render(
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
            views=_views(rows, force),
            preview_bytes=settings.ui_preview_bytes,
            max_decode_bytes=settings.ui_max_decode_bytes,
            value_url=_value_path(request, dag_id, run_id, task_id),
        )
        return HTMLResponse(html)

    return app
