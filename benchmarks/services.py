"""The servers the end-to-end benchmarks compare against, each the suite's own on a free loopback port.

* ``MotoS3``: an S3 served by moto's server (PyPI ``moto[server]``), with one bucket, and the
  ``AIRFLOW_CONN_*`` + ``[common.io]`` settings that point ``XComObjectStorageBackend`` at it.
* ``Postgres``: a PostgreSQL cluster of our own (``tests/postgres_process.py``: initdb on a free
  port) or the server of ``--postgres-url``; either way only databases this process created are
  used and dropped. One migrated template database is copied per run (``CREATE DATABASE ...
  TEMPLATE``), so every run starts from the same empty schema in well under a second.

Everything is stopped by pid; nothing here ever connects to a server it was not given or did not start.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.process_group import stop_group
from tests.redis_process import free_port

OBJECT_STORAGE_BACKEND = "airflow.providers.common.io.xcom.backend.XComObjectStorageBackend"
S3_CONN_ID = "bench_s3"
# What the common.io docs show: values above 1 MB go to the object store, gzip-compressed.
S3_THRESHOLD = 1024 * 1024
S3_COMPRESSION = "gzip"


class MotoS3:
    """moto's S3 server in a session of its own; a context manager."""

    def __init__(self) -> None:
        self.port = free_port()
        self.bucket = f"redis-xcom-bench-{secrets.token_hex(4)}"
        self.dir = Path(tempfile.mkdtemp(prefix="redis-xcom-moto-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> MotoS3:
        binary = Path(sys.executable).with_name("moto_server")
        if not binary.exists():
            raise RuntimeError(f"{binary} missing: install the bench extra (pip install -e '.[bench]')")
        with open(self.dir / "moto.log", "wb") as log:
            self.proc = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_ready()
            self._create_bucket()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop_group(self.proc, signal.SIGTERM, grace=10)
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=2).close()
                return
            time.sleep(0.2)
        log = (self.dir / "moto.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"moto_server on port {self.port} did not start:\n{log}")

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # moto accepts any credentials
            region_name="us-east-1",
        )

    def _create_bucket(self) -> None:
        self.client().create_bucket(Bucket=self.bucket)

    def stored_bytes(self, prefix: str) -> int:
        """Bytes of every object under prefix (what the backend kept outside the DB)."""
        total = 0
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            total += sum(int(obj["Size"]) for obj in page.get("Contents", []))
        return total

    def airflow_settings(self, prefix: str) -> dict[str, str]:
        """XComObjectStorageBackend on s3://<conn>@<bucket>/<prefix>, 1 MB threshold, gzip."""
        conn = {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": self.endpoint, "region_name": "us-east-1"},
        }
        return {
            "AIRFLOW__CORE__XCOM_BACKEND": OBJECT_STORAGE_BACKEND,
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_PATH": f"s3://{S3_CONN_ID}@{self.bucket}/{prefix}",
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_THRESHOLD": str(S3_THRESHOLD),
            "AIRFLOW__COMMON_IO__XCOM_OBJECTSTORAGE_COMPRESSION": S3_COMPRESSION,
            f"AIRFLOW_CONN_{S3_CONN_ID.upper()}": json.dumps(conn),
        }


class Postgres:
    """Databases of our own on a PostgreSQL server: ours (started here) or the one of ``url``."""

    def __init__(self, url: str | None = None) -> None:
        self.given_url = url
        self._server: Any = None
        self.created: list[str] = []
        self.kind = ""

    def __enter__(self) -> Postgres:
        if self.given_url is None:
            from tests.postgres_process import PostgresServer, missing_reason

            reason = missing_reason()
            if reason is not None:
                raise RuntimeError(reason)
            self._server = PostgresServer().start()
            self.kind = f"PostgreSQL {self._version()} (started by the suite)"
        else:
            self.kind = f"PostgreSQL {self._version()} (given URL)"
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            for name in list(self.created):
                self.drop(name)
        finally:
            if self._server is not None:
                self._server.stop()
                shutil.rmtree(self._server.dir, ignore_errors=True)
                self._server = None

    def _version(self) -> str:
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute("SHOW server_version")
            return str(cur.fetchone()[0]).split()[0]

    def sqlalchemy_url(self, database: str) -> str:
        if self._server is not None:
            return str(self._server.sqlalchemy_url(database))
        parts = urlsplit(str(self.given_url))
        return urlunsplit(("postgresql+psycopg2", parts.netloc, f"/{database}", parts.query, ""))

    def connect(self, database: str = "postgres") -> Any:
        """An autocommit psycopg2 connection to one database."""
        import psycopg2

        if self._server is not None:
            conn = psycopg2.connect(self._server.dsn(database), connect_timeout=5)
        else:
            parts = urlsplit(str(self.given_url))
            conn = psycopg2.connect(
                urlunsplit(("postgresql", parts.netloc, f"/{database}", parts.query, "")), connect_timeout=5
            )
        conn.autocommit = True
        return conn

    def create(self, name: str, template: str | None = None) -> str:
        """A new database (a copy of template, when given) that __exit__ drops."""
        clause = f' TEMPLATE "{template}"' if template else ""
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"{clause}')
        self.created.append(name)
        return name

    def drop(self, name: str) -> None:
        """Drop a database this object created (never any other)."""
        if name not in self.created:
            raise ValueError(f"{name!r} was not created by this benchmark run")
        with contextlib.closing(self.connect()) as conn, conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.remove(name)

    def query(self, database: str, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with contextlib.closing(self.connect(database)) as conn, conn.cursor() as cur:
            cur.execute(sql, tuple(params))
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def xcom_table_bytes(self, database: str) -> int:
        """pg_total_relation_size('xcom'): the table, its TOAST (where large JSON goes) and indexes."""
        (row,) = self.query(database, "SELECT pg_total_relation_size('xcom') AS n")
        return int(row["n"])

    def server_pids(self) -> list[int]:
        """The postmaster and its backends (for CPU accounting); only for a server we started."""
        if self._server is None or self._server.proc is None:
            return []
        return [self._server.proc.pid]


@contextlib.contextmanager
def optional(enabled: bool, factory: Any) -> Iterator[Any]:
    """``with factory() as x`` when enabled, else yield None (a service a benchmark does not need)."""
    if not enabled:
        yield None
        return
    with factory() as service:
        yield service
