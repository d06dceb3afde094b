"""Start, stop and restart real redis-server processes on free loopback ports for the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

REDIS_SERVER = shutil.which("redis-server")
MISSING_REASON = "redis-server binary not found (apt-get install -y redis-server); CI installs it"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server of the suite's own; never a server the suite did not start."""

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
        raise RuntimeError(f"redis-server on port {self.port} did not start; see {self.dir}/redis.log")

    def ping(self) -> bool:
        """Whether the server answers (servers without a plain port, or with a password, override it)."""
        return bool(self.client(socket_connect_timeout=0.2).ping())

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
