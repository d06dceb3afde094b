"""Start, stop and restart real redis-server processes on free loopback ports for the tests.

The engine is redis-server unless REDIS_XCOM_TEST_SERVER=valkey-server (`make test-valkey`): every
fixture, cluster and Sentinel included, then runs Valkey's binaries instead."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

TEST_SERVER_ENV = "REDIS_XCOM_TEST_SERVER"
# Each engine's server binary and the CLI that joins a cluster, and the script that installs them.
ENGINES = {
    "redis-server": ("redis-cli", "scripts/ensure-redis-server.sh"),
    "valkey-server": ("valkey-cli", "scripts/ensure-valkey-server.sh"),
}
TEST_SERVER = os.environ.get(TEST_SERVER_ENV) or "redis-server"
if TEST_SERVER not in ENGINES:
    raise RuntimeError(f"{TEST_SERVER_ENV}={TEST_SERVER!r}: use one of {', '.join(ENGINES)}")
IS_VALKEY = TEST_SERVER == "valkey-server"
REDIS_SERVER = shutil.which(TEST_SERVER)
REDIS_CLI = shutil.which(ENGINES[TEST_SERVER][0])
MISSING_REASON = f"{TEST_SERVER} binary not found ({ENGINES[TEST_SERVER][1]} installs it); CI installs it"


def engine_shown() -> str:
    """What doctor and stats must call the suite's server: "Redis 7.0.15", "Valkey 8.0.1" (from
    the binary's --version, not from INFO)."""
    if REDIS_SERVER is None:
        raise RuntimeError(MISSING_REASON)
    out = subprocess.run([REDIS_SERVER, "--version"], capture_output=True, text=True, check=True).stdout
    version = next(word[2:] for word in out.split() if word.startswith("v="))
    return f"{'Valkey' if IS_VALKEY else 'Redis'} {version}"


# Each pytest-xdist worker takes its ports from a window of its own, below the kernel's ephemeral
# range (32768+): two workers never pick the same free port, and a server that failed to bind can
# never be mistaken for another worker's server answering on that port. A cluster node's bus port
# (port + 10000) falls in 30000-39999, outside every window.
PORT_WINDOWS_START, PORT_WINDOW, PORT_WINDOWS = 20000, 1250, 8
# A port no window hands out: nothing of the suite's listens there, and it is the same in every
# worker (test ids built from it must be, or xdist refuses the collection).
UNUSED_PORT = PORT_WINDOWS_START - 1
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
_WINDOW_INDEX = int(_WORKER[2:]) % PORT_WINDOWS if _WORKER[2:].isdigit() else 0
_next_port = itertools.count()


def bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A loopback port nobody listens on, from this worker's window; never the same one twice in a
    row (a server just stopped may still hold it)."""
    start = PORT_WINDOWS_START + _WINDOW_INDEX * PORT_WINDOW
    for _ in range(PORT_WINDOW):
        port = start + next(_next_port) % PORT_WINDOW
        if bindable(port):
            return port
    raise RuntimeError(f"no free loopback port in {start}-{start + PORT_WINDOW - 1}")


class RedisServer:
    """One redis-server (or valkey-server) of the suite's own; never a server the suite did not start."""

    def __init__(self, extra_args: Sequence[str] = (), port: int | None = None) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError(MISSING_REASON)
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.dir = Path(tempfile.mkdtemp(prefix="redis-xcom-test-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        args = [
            str(REDIS_SERVER),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--logfile", str(self.dir / "redis.log"),
            *self.extra_args,
        ]  # fmt: skip
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.ping():
                    return self
            except redis.ConnectionError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{TEST_SERVER} on port {self.port} did not start; see {self.dir}/redis.log")

    def ping(self) -> bool:
        """Whether the server answers (servers without a plain port, or with a password, override it)."""
        # Closed at once: a probe's connection left to the garbage collector lingers in CLIENT
        # LIST, where the deployment tests count every connection that is not theirs.
        with self.client(socket_connect_timeout=0.2) as probe:
            return bool(probe.ping())

    def stop(self) -> None:
        """Kill the server at once (SIGKILL): nothing is saved, like a crash."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self, **kwargs: Any) -> redis.Redis:
        """An unrestricted client of the test's own (never the backend's)."""
        return redis.Redis(port=self.port, **kwargs)

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)
