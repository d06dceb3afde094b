"""Run DAGs end to end with ``airflow dags test`` in a throwaway AIRFLOW_HOME, and read what they left.

Used by ``redis-xcom demo``, the end-to-end tests and the benchmarks. Generic on purpose: nothing here
knows about Redis; callers pass the ``AIRFLOW__...`` settings they want as ``env``.

    with AirflowHome.create(env={"AIRFLOW__CORE__XCOM_BACKEND": "..."}) as home:
        home.add_dags(Path("my_dag.py"))
        home.migrate()
        result = home.dags_test("my_dag")
        print(result.seconds, result.ok, home.xcoms(), home.db_size_bytes())

Isolation: every command runs in a subprocess whose environment keeps nothing Airflow-related from
the caller's (no ``AIRFLOW_HOME``, ``AIRFLOW_CONFIG`` or ``AIRFLOW__*``, so a user's production
database or Redis can never be reached by accident) and always points at this home's SQLite file.
Each command's output goes to a log file inside the home; ``CommandResult.output`` reads it back.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis_xcom.rows import XComRow

# Variables of the caller's environment that never reach an Airflow subprocess.
_DROPPED_VARIABLES = ("AIRFLOW_HOME", "AIRFLOW_CONFIG")
_DROPPED_PREFIXES = ("AIRFLOW__",)


class AirflowCommandError(RuntimeError):
    """An airflow command that had to succeed failed; the message names its log file."""

    def __init__(self, result: CommandResult) -> None:
        self.result = result
        super().__init__(
            f"`{result.command}` exited with {result.returncode} after {result.seconds:.1f}s; "
            f"its output is in {result.log_path}{result.tail()}"
        )


@dataclass(frozen=True)
class CommandResult:
    """One finished airflow command: exit code, wall time and where its output went."""

    args: tuple[str, ...]
    returncode: int
    seconds: float
    log_path: Path
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    @property
    def command(self) -> str:
        return "airflow " + " ".join(self.args)

    @property
    def output(self) -> str:
        """Everything the command printed (stdout and stderr interleaved)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def tail(self, lines: int = 15) -> str:
        """The last lines of the output, indented, for error messages ('' when there is none)."""
        try:
            text = self.output.rstrip().splitlines()[-lines:]
        except OSError:
            return ""
        return "".join("\n    " + line[:300] for line in text) if text else ""


@dataclass(frozen=True)
class TaskInstanceRow:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str | None
    try_number: int
    id: str | None = None  # the task instance id (every attempt its own from 3.4)
    archived: bool = False  # 3.4: an earlier attempt, kept as history


@dataclass(frozen=True)
class DagRunRow:
    dag_id: str
    run_id: str
    state: str | None
    logical_date: str | None
    conf: Any


class AirflowHome:
    """A private AIRFLOW_HOME with a SQLite metadata DB, a dags folder and a log per command."""

    def __init__(self, path: Path, env: Mapping[str, str] | None = None, owned: bool = False) -> None:
        self.path = Path(path).resolve()
        self.env: dict[str, str] = dict(env or {})
        self.owned = owned
        # Another metadata DB than this home's SQLite file (a PostgreSQL database the caller made).
        self.database_url: str | None = None
        self.dags_folder.mkdir(parents=True, exist_ok=True)
        self.command_logs.mkdir(parents=True, exist_ok=True)
        self._counter = 0

    # --- creation and lifetime -------------------------------------------------------------

    @classmethod
    def create(
        cls,
        env: Mapping[str, str] | None = None,
        parent: str | Path | None = None,
        prefix: str = "airflow-home-",
    ) -> AirflowHome:
        """A new empty home in a fresh temporary directory, removed by cleanup() / the with block."""
        path = Path(tempfile.mkdtemp(prefix=prefix, dir=None if parent is None else str(parent)))
        return cls(path, env, owned=True)

    def clone(
        self,
        env: Mapping[str, str] | None = None,
        parent: str | Path | None = None,
        prefix: str = "airflow-home-",
    ) -> AirflowHome:
        """A new home with a copy of this one's DB and DAG files: migrate once, clone per test.

        ``env`` is merged over this home's env.
        """
        other = AirflowHome.create({**self.env, **(env or {})}, parent, prefix)
        for dag_file in self.dags_folder.iterdir():
            if dag_file.is_file():
                shutil.copy2(dag_file, other.dags_folder / dag_file.name)
        if self.db_path.exists():
            with (
                closing(sqlite3.connect(self.db_path)) as src,
                closing(sqlite3.connect(other.db_path)) as dst,
            ):
                src.backup(dst)
        return other

    def cleanup(self) -> None:
        """Remove the directory (only when this object created it)."""
        if self.owned:
            shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> AirflowHome:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    # --- layout -------------------------------------------------------------------------------

    @property
    def dags_folder(self) -> Path:
        return self.path / "dags"

    @property
    def db_path(self) -> Path:
        return self.path / "airflow.db"

    @property
    def command_logs(self) -> Path:
        """Where the output of every command run through this home is written."""
        return self.path / "command-logs"

    def db_size_bytes(self) -> int:
        """Size of the SQLite DB file (and its WAL/journal, if any) in bytes."""
        return sum(
            p.stat().st_size
            for p in (self.db_path, self.path / "airflow.db-wal", self.path / "airflow.db-journal")
            if p.exists()
        )

    def add_dags(self, *files: str | Path) -> list[Path]:
        """Copy DAG files into the dags folder; returns their new paths."""
        copied = []
        for file in files:
            source = Path(file)
            target = self.dags_folder / source.name
            shutil.copy2(source, target)
            copied.append(target)
        return copied

    # --- commands -----------------------------------------------------------------------------

    def environ(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """The full environment of an airflow subprocess: caller's minus Airflow's, plus ours."""
        base = {
            name: value
            for name, value in os.environ.items()
            if name not in _DROPPED_VARIABLES and not name.startswith(_DROPPED_PREFIXES)
        }
        base.update(
            {
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
                "PYTHONUNBUFFERED": "1",
            }
        )
        base.update(self.env)
        base.update(env or {})
        # Whatever the caller asked for, this home's DB (or database_url) and folders it is.
        base.update(
            {
                "AIRFLOW_HOME": str(self.path),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.database_url or f"sqlite:///{self.db_path}",
            }
        )
        return base

    def run(
        self,
        args: Sequence[str],
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
        check: bool = False,
        log_name: str | None = None,
    ) -> CommandResult:
        """``airflow <args>`` in a subprocess of this venv's Python; output to a log file."""
        self._counter += 1
        name = log_name or "-".join(a for a in args[:3] if not a.startswith("-"))
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:80]
        log_path = self.command_logs / f"{self._counter:02d}-{safe}.log"
        command = [sys.executable, "-m", "airflow", *args]
        started = time.perf_counter()
        timed_out = False
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.environ(env),
                cwd=self.path,
            )
            try:
                returncode = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                timed_out = True
                proc.kill()
                returncode = proc.wait()
        result = CommandResult(tuple(args), returncode, time.perf_counter() - started, log_path, timed_out)
        if check and not result.ok:
            raise AirflowCommandError(result)
        return result

    def migrate(self, env: Mapping[str, str] | None = None, timeout: float = 600) -> CommandResult:
        """``airflow db migrate``: creates the SQLite DB; raises AirflowCommandError if it fails."""
        return self.run(["db", "migrate"], env=env, timeout=timeout, check=True)

    def dags_test(
        self,
        dag_id: str,
        logical_date: str | None = None,
        conf: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 600,
        check: bool = False,
        extra_args: Sequence[str] = (),
    ) -> CommandResult:
        """``airflow dags test``; returncode is non-zero when the DAG run failed (not raised
        unless ``check``)."""
        args = ["dags", "test", dag_id]
        if logical_date is not None:
            args.append(logical_date)
        if conf is not None:
            args += ["--conf", json.dumps(dict(conf))]
        args += list(extra_args)
        return self.run(args, env=env, timeout=timeout, check=check, log_name=f"dags-test-{dag_id}")

    # --- reading the metadata DB ---------------------------------------------------------------

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of a read-only query on the SQLite metadata DB."""
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as db:
            db.row_factory = sqlite3.Row
            return list(db.execute(sql, tuple(params)))

    def has_table(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [name]))

    def per_attempt(self) -> bool:
        """Whether this Airflow keeps rows per attempt (3.4: xcom_v2 and archived task instances)."""
        return self.has_table("xcom_v2")

    def xcoms(self, dag_id: str | None = None, run_id: str | None = None) -> list[XComRow]:
        """Every xcom row (optionally one DAG / run), every attempt's on 3.4, ordered by task, map
        index, key and try."""
        where, params = _filters(dag_id=dag_id, run_id=run_id)
        if self.per_attempt():
            # Rows from before the upgrade (xcom_v1) and those of every task instance (xcom_v2).
            table = (
                "(SELECT ti.dag_id, ti.run_id, ti.task_id, ti.region_index AS map_index, x.key, x.value, "
                "ti.id AS ti_id, ti.try_number FROM xcom_v2 x JOIN task_instance ti "
                "ON x.task_instance_id = ti.id UNION ALL SELECT dag_id, run_id, task_id, map_index, key, "
                "value, NULL, NULL FROM xcom_v1)"
            )
        else:
            table = "(SELECT *, NULL AS ti_id, NULL AS try_number FROM xcom)"
        rows = self.query(
            f"SELECT dag_id, run_id, task_id, map_index, key, value, ti_id, try_number FROM {table}{where} "
            "ORDER BY dag_id, run_id, task_id, map_index, key, try_number",
            params,
        )
        return [
            XComRow(
                r["dag_id"],
                r["run_id"],
                r["task_id"],
                r["map_index"],
                r["key"],
                _json(r["value"]),
                r["value"],
                _uuid_text(r["ti_id"]),
                r["try_number"],
            )
            for r in rows
        ]

    def task_instances(
        self, dag_id: str | None = None, run_id: str | None = None, *, attempts: bool = False
    ) -> list[TaskInstanceRow]:
        """Task instances, the live attempt of each (with ``attempts``, the archived ones too on 3.4)."""
        where, params = _filters(dag_id=dag_id, run_id=run_id)
        if self.per_attempt():
            live = "" if attempts else (" AND" if where else " WHERE") + " working_set = 1"
            columns = "region_index AS map_index, id, working_set IS NULL AS archived"
        else:
            live, columns = "", "map_index, NULL AS id, 0 AS archived"
        rows = self.query(
            f"SELECT dag_id, run_id, task_id, state, try_number, {columns} FROM task_instance"
            f"{where}{live} ORDER BY dag_id, run_id, task_id, map_index, try_number",
            params,
        )
        return [
            TaskInstanceRow(
                r["dag_id"],
                r["run_id"],
                r["task_id"],
                r["map_index"],
                r["state"],
                r["try_number"],
                _uuid_text(r["id"]),
                bool(r["archived"]),
            )
            for r in rows
        ]

    def dag_runs(self, dag_id: str | None = None) -> list[DagRunRow]:
        """DAG runs, oldest first."""
        where, params = _filters(dag_id=dag_id)
        rows = self.query(
            f"SELECT dag_id, run_id, state, logical_date, conf FROM dag_run{where} ORDER BY id", params
        )
        return [
            DagRunRow(r["dag_id"], r["run_id"], r["state"], r["logical_date"], _conf(r["conf"])) for r in rows
        ]

    def latest_run(self, dag_id: str) -> DagRunRow:
        runs = self.dag_runs(dag_id)
        if not runs:
            raise LookupError(f"no run of DAG {dag_id!r} in {self.db_path}")
        return runs[-1]

    def task_states(self, dag_id: str, run_id: str) -> dict[str, str | None]:
        """``task_id`` (``task_id[i]`` for mapped ones) -> final state."""
        return {
            ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": ti.state
            for ti in self.task_instances(dag_id, run_id)
        }


def _filters(**wanted: str | None) -> tuple[str, list[str]]:
    chosen = [(column, value) for column, value in wanted.items() if value is not None]
    if not chosen:
        return "", []
    return " WHERE " + " AND ".join(f"{column} = ?" for column, _ in chosen), [v for _, v in chosen]


def _uuid_text(raw: Any) -> str | None:
    """A task instance id as its canonical text (SQLite stores Airflow's UUIDs as 32 hex digits)."""
    if raw is None:
        return None
    return str(uuid.UUID(raw.hex() if isinstance(raw, bytes) else str(raw)))


def _json(raw: Any) -> Any:
    if raw is None or isinstance(raw, int | float):  # SQLite hands a JSON number back as one
        return raw
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _conf(raw: Any) -> Any:
    # dag_run.conf is JSON on Airflow 3 (it was a pickle before); anything else is shown as is.
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return _json(raw)


def iter_files(folder: str | Path, pattern: str = "*.py") -> Iterator[Path]:
    """DAG files of a folder (not recursive), sorted, skipping __init__.py."""
    yield from sorted(p for p in Path(folder).glob(pattern) if p.name != "__init__.py")
