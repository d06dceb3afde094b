"""`airflow dags test` for several DAG runs, one after the other, in one interpreter.

Usage: python -m tests.dags_test_many RUN [RUN ...], where a RUN is a DAG id or a JSON object
``{"dag_id": ..., "logical_date": ..., "conf": {...}}`` (the environment says which AIRFLOW_HOME
and backends). Each run goes through Airflow's own CLI parser and `dags test` command, exactly as
`airflow dags test DAG_ID [DATE] [--conf JSON]` would, but Airflow is imported once for all of
them: the import is most of a short `dags test`'s wall time. Prints one line
`RESULT <dag_id> <exit code>` per run, in order.

`dags_test_many(home, runs)` runs that in a subprocess and gives one CommandResult per run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class DagTest:
    """One `airflow dags test` run."""

    dag_id: str
    logical_date: str | None = None
    conf: Mapping[str, Any] | None = field(default=None, hash=False)

    def cli_args(self) -> list[str]:
        args = ["dags", "test", self.dag_id]
        if self.logical_date is not None:
            args.append(self.logical_date)
        if self.conf is not None:
            args += ["--conf", json.dumps(dict(self.conf))]
        return args

    @classmethod
    def parse(cls, text: str) -> DagTest:
        if not text.startswith("{"):
            return cls(text)
        spec = json.loads(text)
        return cls(spec["dag_id"], spec.get("logical_date"), spec.get("conf"))

    def spec(self) -> str:
        return json.dumps({"dag_id": self.dag_id, "logical_date": self.logical_date, "conf": self.conf})


def dags_test_many(home: Any, runs: Sequence[DagTest | str], timeout: float = 600) -> list[Any]:
    """Run these in one interpreter against an AirflowHome; one CommandResult per run, in order
    (a run whose line is missing, because the process died or timed out, counts as failed)."""
    from redis_xcom.ops.airflow_run import CommandResult

    wanted = [DagTest(r) if isinstance(r, str) else r for r in runs]
    log_path = home.command_logs / f"dags-test-many-{'-'.join(r.dag_id for r in wanted)[:60]}.log"
    env = home.environ({"PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
    started = time.perf_counter()
    timed_out = False
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.dags_test_many", *(r.spec() for r in wanted)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=REPO,
        )
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
    seconds = time.perf_counter() - started
    codes = result_codes(log_path)
    return [
        CommandResult(tuple(run.cli_args()), codes[i] if i < len(codes) else 1, seconds, log_path, timed_out)
        for i, run in enumerate(wanted)
    ]


def result_codes(log_path: Path) -> list[int]:
    """The exit codes of the runs, in order, from the RESULT lines of a log."""
    lines = log_path.read_text(errors="replace").splitlines()
    return [int(line.split()[2]) for line in lines if line.startswith("RESULT ")]


def main(specs: list[str]) -> int:
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    failed = 0
    for run in map(DagTest.parse, specs):
        args = parser.parse_args(run.cli_args())
        code = 0
        try:
            args.func(args)
        except SystemExit as exc:  # `dags test` raises SystemExit("DagRun failed")
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        print(f"RESULT {run.dag_id} {code}", flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
