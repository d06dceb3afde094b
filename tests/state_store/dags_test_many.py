"""`airflow dags test` for several DAGs, one after the other, in one interpreter.

Usage: python -m tests.state_store.dags_test_many DAG_ID [DAG_ID ...] (the environment says which
AIRFLOW_HOME and backends). Each DAG goes through Airflow's own CLI parser and `dags test` command,
exactly as `airflow dags test DAG_ID` would, but Airflow is imported once for all of them: the import
is most of a short `dags test`'s wall time. Prints one line `RESULT <dag_id> <exit code>` per DAG.
"""

from __future__ import annotations

import sys
import traceback


def main(dag_ids: list[str]) -> int:
    from airflow.cli import cli_parser

    parser = cli_parser.get_parser()
    failed = 0
    for dag_id in dag_ids:
        args = parser.parse_args(["dags", "test", dag_id])
        code = 0
        try:
            args.func(args)
        except SystemExit as exc:  # `dags test` raises SystemExit("DagRun failed")
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        print(f"RESULT {dag_id} {code}", flush=True)
        failed += code != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
