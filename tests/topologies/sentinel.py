"""A Redis master, its replica and 3 Sentinels on free loopback ports, each stopped by PID.

Every server requires a password (the master's and the Sentinels' differ), so the tests see the
two sets of credentials kept apart. Sentinels notice a dead master after 1 s and fail over at once.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer, free_port

SERVICE = "mymaster"
MASTER_PASSWORD = "master-pw-51c2"
SENTINEL_PASSWORD = "sentinel-pw-9d0e"
DOWN_AFTER_MS = 1000
FAILOVER_TIMEOUT_MS = 5000


class PasswordRedisServer(RedisServer):
    """A redis-server that requires MASTER_PASSWORD (and gives it to its own master, as a replica)."""

    def __init__(self, extra_args: list[str] | None = None) -> None:
        auth = ["--requirepass", MASTER_PASSWORD, "--masterauth", MASTER_PASSWORD]
        super().__init__([*auth, *(extra_args or [])])

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=self.port, password=MASTER_PASSWORD, **kwargs)


class SentinelProcess:
    """``redis-server sentinel.conf --sentinel`` with a writable config of its own (valkey-server on
    Valkey: Debian ships no valkey-sentinel binary, and the server's --sentinel is the same program)."""

    def __init__(self, master_port: int) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError(MISSING_REASON)
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="redis-xcom-sentinel-"))
        self.config = self.dir / "sentinel.conf"
        self.config.write_text(
            f"port {self.port}\n"
            "bind 127.0.0.1\n"
            f"dir {self.dir}\n"
            f"logfile {self.dir / 'sentinel.log'}\n"
            f"requirepass {SENTINEL_PASSWORD}\n"
            # Sentinels talk to each other with this password.
            f"sentinel sentinel-pass {SENTINEL_PASSWORD}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel auth-pass {SERVICE} {MASTER_PASSWORD}\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelProcess:
        args = [str(REDIS_SERVER), str(self.config), "--sentinel"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_until(
            lambda: bool(self.client(socket_connect_timeout=0.2).ping()), 10, f"Sentinel :{self.port}"
        )
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def client(self, **kwargs: Any) -> redis.Redis:
        return redis.Redis(port=self.port, password=SENTINEL_PASSWORD, decode_responses=True, **kwargs)

    def knows_everyone(self) -> bool:
        """It sees the master up, the replica linked, and the two other Sentinels."""
        client = self.client(socket_connect_timeout=0.5, socket_timeout=0.5)
        master = client.execute_command("SENTINEL", "MASTER", SERVICE)
        replicas = client.execute_command("SENTINEL", "REPLICAS", SERVICE)
        others = client.execute_command("SENTINEL", "SENTINELS", SERVICE)
        up = [
            r
            for r in replicas
            if "down" not in _fields(r)["flags"] and _fields(r)["master-link-status"] == "ok"
        ]
        return "down" not in _fields(master)["flags"] and len(up) >= 1 and len(others) == 2


def _fields(reply: Any) -> dict[str, str]:
    """SENTINEL MASTER/REPLICAS entries: a flat list or a dict, as the redis-py version parses it."""
    if isinstance(reply, dict):
        return {str(k): str(v) for k, v in reply.items()}
    return {str(reply[i]): str(reply[i + 1]) for i in range(0, len(reply), 2)}


def _wait_until(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (redis.RedisError, OSError, KeyError, IndexError) as exc:
            last = exc
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within {seconds}s (last error: {last!r})")


class SentinelDeployment:
    """Master + replica + 3 Sentinels; ready when every Sentinel knows the others and the replica."""

    def __init__(self) -> None:
        self.master = PasswordRedisServer()
        self.replica: PasswordRedisServer | None = None
        self.sentinels: list[SentinelProcess] = []

    def start(self) -> SentinelDeployment:
        self.master.start()
        self.replica = PasswordRedisServer(["--replicaof", "127.0.0.1", str(self.master.port)]).start()
        self.sentinels = [SentinelProcess(self.master.port).start() for _ in range(3)]
        _wait_until(lambda: all(s.knows_everyone() for s in self.sentinels), 30, "Sentinel deployment")
        return self

    def url(self, password: str = MASTER_PASSWORD) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in self.sentinels)
        return f"redis+sentinel://:{password}@{hosts}/{SERVICE}/0"

    def servers(self) -> list[PasswordRedisServer]:
        return [s for s in (self.master, self.replica) if s is not None]

    def master_port(self) -> int:
        """Where the running Sentinels say the master is now."""
        for sentinel in self.sentinels:
            if sentinel.proc is None:
                continue
            try:
                _host, port = sentinel.client(socket_timeout=1).execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
                )
                return int(port)
            except redis.RedisError:
                continue
        raise RuntimeError("no Sentinel answers")

    def current_master(self) -> PasswordRedisServer:
        port = self.master_port()
        return next(s for s in self.servers() if s.port == port)

    def wait_for_new_master(self, old_port: int, seconds: float = 30) -> PasswordRedisServer:
        """The replica promoted, as every running Sentinel and the server itself agree."""

        def promoted() -> bool:
            ports = {
                int(
                    s.client(socket_timeout=1).execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
                    )[1]
                )
                for s in self.sentinels
                if s.proc is not None
            }
            if len(ports) != 1 or old_port in ports:
                return False
            server = next(s for s in self.servers() if s.port in ports)
            return server.client(socket_timeout=1).info("replication")["role"] == "master"

        _wait_until(promoted, seconds, "failover")
        return self.current_master()

    def rejoin_as_replica(self, crashed: PasswordRedisServer, master: PasswordRedisServer) -> None:
        """Start a crashed server again as a replica of the promoted master, as Redis advises for
        servers without persistence: restarted as a master it would come back empty, and a
        Sentinel that still knew it as the master could make the promoted one resync from it.
        With replica-priority 0 it is never promoted: on a loaded machine a Sentinel can briefly
        see the new master as down and start another failover, and this replica may still be
        empty, mid initial sync; promoting it would wipe what the promoted master acknowledged."""
        crashed.extra_args = [
            *crashed.extra_args,
            "--replicaof",
            "127.0.0.1",
            str(master.port),
            "--replica-priority",
            "0",
        ]
        crashed.start()

    def roles(self) -> str:
        """Each server's role and key count, and where each Sentinel says the master is (for failures)."""
        seen = []
        for server in self.servers():
            try:
                info = server.client(socket_timeout=1).info()
                seen.append(f":{server.port} {info['role']} keys={info.get('db0', {}).get('keys', 0)}")
            except redis.RedisError as exc:
                seen.append(f":{server.port} {exc!r}")
        for sentinel in self.sentinels:
            try:
                addr = sentinel.client(socket_timeout=1).execute_command(
                    "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE
                )
                seen.append(f"sentinel :{sentinel.port} -> {addr[1]}")
            except redis.RedisError as exc:
                seen.append(f"sentinel :{sentinel.port} {exc!r}")
        return "; ".join(seen)

    def stop(self) -> None:
        for process in [*self.sentinels, *self.servers()]:
            process.stop()
        for directory in [s.dir for s in self.sentinels] + [s.dir for s in self.servers()]:
            shutil.rmtree(directory, ignore_errors=True)

    def __enter__(self) -> SentinelDeployment:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, *exc: object) -> None:
        self.stop()
