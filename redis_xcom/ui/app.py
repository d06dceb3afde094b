"""The FastAPI app the api-server mounts under /redis-xcom: a page and a JSON API per task instance.

    GET /dags/{dag_id}/runs/{run_id}/tasks/{task_id}?map_index=N             the page
    GET /api/dags/{dag_id}/runs/{run_id}/tasks/{task_id}?map_index=N         the same as JSON
    GET /api/dags/{dag_id}/runs/{run_id}/tasks/{task_id}/value?key=K&map_index=N   one whole value as JSON

Every route needs read access to the DAG's XComs, checked by Airflow's own dependency
(`requires_access_dag("GET", DagAccessEntity.XCOM)`), fed by our token resolver (bearer or cookie).
`?decode=force` decodes values above [redis_xcom] ui_max_decode_bytes.

On Airflow 3.4 every try is a task instance of its own and keeps its rows: every route shows the
latest try unless `?try_number=N` names another, and the page links each try that has XComs. Before
3.4 a task instance has one set of rows (a retry replaces them), and try_number is refused.

Rows are user input: XComRow.owned_key (keys.owned_key) decides whether a row's reference may be
followed at all.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api import security
from airflow.models.xcom import XComModel
from fastapi import Depends, FastAPI, HTTPException, Query, Request, status
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select

from redis_xcom import airflow_compat, keys
from redis_xcom.errors import RedisXComError, UntrustedReferenceError
from redis_xcom.ui import values
from redis_xcom.ui.auth import current_user
from redis_xcom.ui.export import NotRepresentable

TASK_PATH = "/dags/{dag_id}/runs/{run_id}/tasks/{task_id}"
_INTEGER = re.compile(r"-?[0-9]+")
_WHOLE = re.compile(r"[0-9]{1,10}")
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # every value is text on the page, never HTML
    undefined=jinja2.StrictUndefined,
)


# Documented in the schema, so that a client (or schemathesis) knows what is accepted; checked here,
# with a 400 naming the parameter (FastAPI's own check would answer 422).
_MAP_INDEX_PATTERN = r"^\s*(-?[0-9]{1,10}|\{MAP_INDEX\})?\s*$"
_TRY_NUMBER_PATTERN = r"^\s*([0-9]{1,10})?\s*$"


def map_index_of(
    map_index: Annotated[str | None, Query(json_schema_extra={"pattern": _MAP_INDEX_PATTERN})] = None,
) -> int:
    """-1 when absent, empty or the unfilled `{MAP_INDEX}` placeholder (Airflow 3.3's UI leaves it so
    for a task that is not mapped); otherwise an integer."""
    if map_index is None or map_index.strip() in ("", "{MAP_INDEX}"):
        return -1
    # At most 10 digits: Airflow's map_index is a 32-bit integer, and int() of thousands of digits raises.
    if not _INTEGER.fullmatch(map_index.strip()) or len(map_index.strip().lstrip("+-")) > 10:
        shown = map_index if len(map_index) <= 40 else map_index[:40] + "..."
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"map_index must be an integer, got {shown!r}")
    return int(map_index)


def forced(decode: str | None = None) -> bool:
    """?decode=force: decode values above ui_max_decode_bytes too."""
    return decode == "force"


def try_number_of(
    try_number: Annotated[str | None, Query(json_schema_extra={"pattern": _TRY_NUMBER_PATTERN})] = None,
) -> int | None:
    """The try asked for with ?try_number=N; None (absent or empty) means the latest."""
    if try_number is None or not try_number.strip():
        return None
    # ASCII digits only (isdigit() admits '²', which int() refuses), and at most 10 of them.
    if not _WHOLE.fullmatch(try_number.strip()):
        shown = try_number if len(try_number) <= 40 else try_number[:40] + "..."
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"try_number must be a whole number, got {shown!r}")
    return int(try_number)


MapIndex = Annotated[int, Depends(map_index_of)]
Force = Annotated[bool, Depends(forced)]
TryNumber = Annotated[int | None, Depends(try_number_of)]


@dataclass(frozen=True)
class Attempt:
    """One try of a task instance on Airflow 3.4, where every try is a task instance of its own."""

    try_number: int
    latest: bool
    has_xcoms: bool
    # Several only where one try number spans task instances (the loop iterations of a mapped body).
    task_instance_ids: tuple[uuid.UUID, ...] = field(default=(), repr=False)

    def as_json(self) -> dict[str, Any]:
        return {"try_number": self.try_number, "latest": self.latest, "has_xcoms": self.has_xcoms}


@dataclass(frozen=True)
class TaskXComs:
    """The rows of the try shown, and every try (Airflow 3.4); before 3.4 no try_number, no attempts."""

    rows: list[values.XComRow]
    try_number: int | None = None
    attempts: tuple[Attempt, ...] = ()


per_attempt_rows = airflow_compat.per_attempt_rows


def task_xcoms(
    dag_id: str, run_id: str, task_id: str, map_index: MapIndex, try_number: TryNumber, session: SessionDep
) -> TaskXComs:
    """The XCom rows of the task instance (of one of its tries on 3.4), as stored."""
    if per_attempt_rows():
        return _attempt_xcoms(session, dag_id, run_id, task_id, map_index, try_number)
    if try_number is not None:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "try_number needs Airflow 3.4, where each try keeps XComs of its own; before it a task "
            "instance has one set of XComs (a retry replaces the earlier try's): leave try_number out",
        )
    query = (
        select(*_row_columns())
        .where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == task_id,
            XComModel.map_index == map_index,
        )
        .order_by(XComModel.key)
    )
    return TaskXComs([_row_of(row) for row in session.execute(query)])


def _row_columns() -> list[Any]:
    """What every version's XComModel has of a row: whose it is, its key and its stored value."""
    return [
        XComModel.dag_id,
        XComModel.run_id,
        XComModel.task_id,
        XComModel.map_index,
        XComModel.key,
        XComModel.value,
    ]


def _row_of(row: Any, try_number: int | None = None) -> values.XComRow:
    """A DB row as stored: a reference stays as it is, Airflow's own value is decoded as Airflow does."""
    value = row.value if keys.key_of_reference(row.value) else XComModel.deserialize_value(row)
    return values.XComRow(
        row.dag_id,
        row.run_id,
        row.task_id,
        row.map_index,
        row.key,
        value,
        task_instance_id=getattr(row, "task_instance_id", None),
        try_number=try_number,
    )


def _attempt_xcoms(
    session: Any, dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int | None
) -> TaskXComs:
    """Airflow 3.4: the rows of one try (the latest unless try_number names another), and every try."""
    attempts = _attempts(session, dag_id, run_id, task_id, map_index)
    where = f"dag_id={dag_id!r}, run_id={run_id!r}, task_id={task_id!r}, map_index={map_index}"
    shown = choose_attempt(attempts, try_number, where)
    if shown is None:
        return TaskXComs([])
    query = (
        select(*_row_columns(), XComModel.task_instance_id)
        .where(XComModel.task_instance_id.in_(shown.task_instance_ids))
        .order_by(XComModel.key)
        # Archived tries' rows too: Airflow hides them from ORM queries unless asked.
        .execution_options(include_all_attempts=True)
    )
    rows = [_row_of(row, shown.try_number) for row in session.execute(query)]
    return TaskXComs(rows, shown.try_number, attempts)


def _attempts(session: Any, dag_id: str, run_id: str, task_id: str, map_index: int) -> tuple[Attempt, ...]:
    """Every try of the task instance, oldest first, each saying whether it has XCom rows."""
    from airflow.models.taskinstance import TaskInstance

    instances = session.execute(
        select(TaskInstance.id, TaskInstance.try_number, TaskInstance.working_set)
        .where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
        .execution_options(include_all_attempts=True)
    ).all()
    if not instances:
        return ()
    with_rows = set(
        session.scalars(
            select(XComModel.task_instance_id)
            .where(XComModel.task_instance_id.in_([ti.id for ti in instances]))
            .distinct()
            .execution_options(include_all_attempts=True)
        )
    )
    by_try: dict[int, list[Any]] = {}
    for ti in instances:
        by_try.setdefault(ti.try_number, []).append(ti)
    # The live try (working_set); archived tries have NULL there.
    live = [ti.try_number for ti in instances if ti.working_set]
    latest = max(live) if live else max(by_try)
    return tuple(
        Attempt(number, number == latest, any(ti.id in with_rows for ti in tis), tuple(ti.id for ti in tis))
        for number, tis in sorted(by_try.items())
    )


def choose_attempt(attempts: Sequence[Attempt], try_number: int | None, where: str) -> Attempt | None:
    """The try asked for, or the latest (None: no such task instance); 404 names the tries there are."""
    for attempt in attempts:
        if attempt.try_number == try_number or (try_number is None and attempt.latest):
            return attempt
    if try_number is None:
        return None
    tries = ", ".join(str(a.try_number) for a in attempts) or "none"
    raise HTTPException(
        status.HTTP_404_NOT_FOUND, f"The task instance {where} has no try {try_number} (its tries: {tries})"
    )


XComs = Annotated[TaskXComs, Depends(task_xcoms)]


def _views(xcoms: TaskXComs, force: bool) -> list[values.XComView]:
    return values.reader().views(xcoms.rows, force)


def _value_path(request: Request, dag_id: str, run_id: str, task_id: str) -> str:
    """The download route's path (url_for cannot name a route of an app mounted without a name)."""
    ids = [quote(part, safe="") for part in (dag_id, run_id, task_id)]
    return (
        request.scope.get("root_path", "")
        + "/api"
        + TASK_PATH.format(dag_id=ids[0], run_id=ids[1], task_id=ids[2])
        + "/value"
    )


_ERROR_RESPONSES: dict[int, str] = {
    400: "A parameter is malformed, or try_number was given before Airflow 3.4",
    401: "No valid token (bearer or the UI's cookie)",
    403: "The user may not read this DAG's XComs",
    404: "No such XCom, try, or value (expired, evicted or deleted)",
    406: "The value cannot be written as JSON",
    409: "The row's reference is not its own value: nothing was read",
    413: "Not given for what it would cost, as state says: not_decoded (above ui_max_decode_bytes: ask "
    "again with decode=force) or too_costly (decoding or rendering it breached a limit of the UI's "
    "sandbox: memory, CPU time, time or output size; forcing does not lift those)",
    502: "Redis could not be read, or the value there could not be decoded",
    503: "Every UI sandbox worker stayed busy with other values for ui_sandbox_timeout_seconds: ask again",
}
# The 413 body: why (the state the JSON API gives the row), and the value's sizes.
_REFUSAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["detail", "state", "size_bytes", "recorded_bytes"],
    "properties": {
        "detail": {"type": "string"},
        "state": {"type": "string", "enum": [values.NOT_DECODED, values.TOO_COSTLY]},
        "size_bytes": {"type": ["integer", "null"], "description": "bytes in Redis"},
        "recorded_bytes": {"type": ["integer", "null"], "description": "bytes once decompressed"},
    },
}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The error statuses a route answers with, for its OpenAPI schema ({"detail": ...} bodies)."""
    documented: dict[int | str, dict[str, Any]] = {
        code: {"description": _ERROR_RESPONSES[code]} for code in codes
    }
    if 413 in documented:
        documented[413]["content"] = {"application/json": {"schema": _REFUSAL_SCHEMA}}
    return documented


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

    @app.get("/api" + TASK_PATH, responses=_responses(400, 401, 403, 404))
    def task_xcoms_json(
        dag_id: str, run_id: str, task_id: str, map_index: MapIndex, xcoms: XComs, force: Force
    ) -> dict[str, Any]:
        """Every XCom of one task instance (one try on 3.4): reference, size in Redis, TTL left, type
        and a preview; a row whose reference is not its own shows as stored, with state untrusted."""
        return {
            "dag_id": dag_id,
            "run_id": run_id,
            "task_id": task_id,
            "map_index": map_index,
            "try_number": xcoms.try_number,
            "attempts": [attempt.as_json() for attempt in xcoms.attempts],
            "xcoms": [view.as_json() for view in _views(xcoms, force)],
        }

    @app.get("/api" + TASK_PATH + "/value", responses=_responses(400, 401, 403, 404, 406, 409, 413, 502, 503))
    def xcom_value(
        dag_id: str, run_id: str, task_id: str, key: str, map_index: MapIndex, xcoms: XComs, force: Force
    ) -> Response:
        """One whole value as a JSON file, where JSON can represent it."""
        stored = {row.key: row for row in xcoms.rows}
        where = (
            f"dag_id={dag_id!r}, run_id={run_id!r}, task_id={task_id!r}, map_index={map_index}, key={key!r}"
        )
        if xcoms.try_number is not None:
            where += f", try_number={xcoms.try_number}"
        if key not in stored:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"No XCom with {where}")
        try:
            body = values.reader().value_json(stored[key], force)
        except UntrustedReferenceError as exc:
            # Refused before anything is read: the row names a value that is not its own.
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
        except values.ValueGone as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"XCom {where}: {exc}") from None
        except values.ValueRefused as exc:
            refusal = {
                "detail": f"XCom {where}: {exc}",
                "state": exc.state,
                "size_bytes": exc.size_bytes,
                "recorded_bytes": exc.recorded_bytes,
            }
            return JSONResponse(refusal, status_code=413)
        except values.SandboxBusy as exc:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"XCom {where}: {exc}", headers={"Retry-After": "1"}
            ) from None
        except NotRepresentable as exc:
            raise HTTPException(
                status.HTTP_406_NOT_ACCEPTABLE, f"XCom {where} cannot be written as JSON: {exc}"
            ) from None
        except RedisXComError as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"XCom {where}: {exc}") from None
        name = f"{dag_id}.{task_id}.{map_index}.{key}"
        if xcoms.try_number is not None:
            name += f".try{xcoms.try_number}"
        filename = re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".json"
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
        xcoms: XComs,
        force: Force,
    ) -> HTMLResponse:
        """The page Airflow's task-instance tab shows (or a browser opens by URL on Airflow 3.0)."""
        settings = values.reader().settings
        html = _TEMPLATES.get_template("xcoms.html").render(
            dag_id=dag_id,
            run_id=run_id,
            task_id=task_id,
            map_index=map_index,
            try_number=xcoms.try_number,
            attempts=xcoms.attempts,
            views=_views(xcoms, force),
            preview_bytes=settings.ui_preview_bytes,
            max_decode_bytes=settings.ui_max_decode_bytes,
            value_url=_value_path(request, dag_id, run_id, task_id),
        )
        return HTMLResponse(html)

    return app
