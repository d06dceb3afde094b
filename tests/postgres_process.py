"""Start and stop a PostgreSQL server of the suite's own on a free loopback port, in a temp dir.

Never touches another server: initdb makes a fresh cluster, the server listens only on 127.0.0.1
at a port nobody held a moment before, with no Unix socket, and is killed by its own pid.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg2

from tests.process_group import stop_group
from tests.redis_process import free_port

MISSING_REASON = (
    "PostgreSQL binaries (initdb, postgres) not found on PATH or under /usr/lib/postgresql/*/bin "
    "(scripts/ensure-postgresql.sh installs them as root); CI installs them"
)
SUPERUSER = "redis_xcom_test"
# initdb refuses to run as root: as root, the cluster belongs to the user Debian's package creates.
UNPRIVILEGED_USER = "postgres"


def find_binary(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH first, else Debian's versioned dir (newest version)."""
    on_path = shutil.which(name)
    if on_path:
        return on_path
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version_of_path)
    return candidates[-1] if candidates else None


def _version_of_path(path: str) -> tuple[int, ...]:
    version = Path(path).parent.parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def missing_reason() -> str | None:
    """Why a PostgreSQL server cannot be started here, or None when it can."""
    if find_binary("initdb") is None or find_binary("postgres") is None:
        return MISSING_REASON
    if os.geteuid() == 0 and not _user_exists(UNPRIVILEGED_USER):
        return f"running as root and no {UNPRIVILEGED_USER!r} user to own the cluster (initdb refuses root)"
    return None


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


class PostgresServer:
    """One PostgreSQL cluster and server of the suite's own; password auth, loopback only."""

    def __init__(self) -> None:
        reason = missing_reason()
        if reason is not None:
            raise RuntimeError(reason)
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.dir = Path(tempfile.mkdtemp(prefix="redis-xcom-pg-"))
        self.data = self.dir / "data"
        self.log_path = self.dir / "postgres.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._owner = pwd.getpwnam(UNPRIVILEGED_USER) if os.geteuid() == 0 else None

    # --- lifetime -------------------------------------------------------------------------------

    def start(self) -> PostgresServer:
        self._initdb()
        self._launch()
        self._wait_ready()
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster's process group), SIGKILL if it lingers."""
        if self.proc is not None:
            stop_group(self.proc, signal.SIGINT)
            self.proc = None

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.__exit__()
            raise

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    # --- use ------------------------------------------------------------------------------------

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} password={self.password} dbname={database}"

    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+psycopg2://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> Any:
        """A psycopg2 connection in autocommit mode (every read sees the latest commits)."""
        conn = psycopg2.connect(self.dsn(database), connect_timeout=5)
        conn.autocommit = True
        return conn

    def create_database(self, name: str) -> str:
        """A new empty database in this cluster; returns its name."""
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return name

    # --- internals ------------------------------------------------------------------------------

    def _initdb(self) -> None:
        pwfile = self.dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        self._give_to_owner(self.dir, pwfile)
        args = [
            str(find_binary("initdb")),
            "-D", str(self.data),
            "-U", SUPERUSER,
            "--pwfile", str(pwfile),
            "--auth", "scram-sha-256",
            "--encoding", "UTF8",
            "--no-instructions",
        ]  # fmt: skip
        result = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=120,
            **self._as_owner(),
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")

    def _launch(self) -> None:
        args = [
            str(find_binary("postgres")),
            "-D", str(self.data),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            "-c", "max_connections=200",
            # A throwaway cluster: durability buys nothing and costs time on a small machine.
            "-c", "fsync=off",
            "-c", "synchronous_commit=off",
            "-c", "full_page_writes=off",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **self._as_owner(),
            )

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                self.connect().close()
                return
            except psycopg2.OperationalError:
                time.sleep(0.1)
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.stop()
        raise RuntimeError(f"PostgreSQL on port {self.port} did not start; {self.log_path}:\n{tail}")

    def _as_owner(self) -> dict[str, Any]:
        """Popen arguments that run a command as the cluster's owner (only needed as root)."""
        if self._owner is None:
            return {}
        return {
            "user": self._owner.pw_uid,
            "group": self._owner.pw_gid,
            "extra_groups": [],
            "env": {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "HOME": str(self.dir)},
        }

    def _give_to_owner(self, *paths: Path) -> None:
        if self._owner is not None:
            for path in paths:
                os.chown(path, self._owner.pw_uid, self._owner.pw_gid)
