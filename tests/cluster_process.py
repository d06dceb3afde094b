"""A real Redis Cluster of the suite's own: 3 masters with 1 replica each on free loopback ports."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster

from tests.redis_process import ENGINES, REDIS_CLI, TEST_SERVER, RedisServer, bindable, free_port

# Short, so that a killed master's replica takes over in about two seconds.
NODE_TIMEOUT_MS = 1000


def free_cluster_ports(count: int) -> list[int]:
    """Ports that are free together with their cluster bus port (port + 10000)."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports and bindable(port + 10000):
            ports.append(port)
    return ports


class RedisClusterProcesses:
    """Six servers (3 masters, 3 replicas) joined with ``redis-cli --cluster create`` (valkey-cli on
    Valkey)."""

    def __init__(self, masters: int = 3, replicas: int = 1) -> None:
        if REDIS_CLI is None:
            cli, script = ENGINES[TEST_SERVER]
            raise RuntimeError(f"{cli} not found ({script} installs it); CI installs it")
        self.masters = masters
        self.replicas = replicas
        self.servers: list[RedisServer] = []

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]

    @property
    def url(self) -> str:
        """A redis+cluster:// URL naming every node as a seed."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports) + "/0"

    @property
    def seed_url(self) -> str:
        return f"redis://127.0.0.1:{self.ports[0]}/0"

    def start(self) -> RedisClusterProcesses:
        args = [
            "--cluster-enabled", "yes",
            "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
            "--cluster-replica-validity-factor", "0",  # a replica may always take over
            "--cluster-require-full-coverage", "no",  # other slots stay served while one fails over
            "--repl-diskless-sync-delay", "0",  # replicas sync at once
        ]  # fmt: skip
        ports = free_cluster_ports(self.masters * (1 + self.replicas))
        try:
            for port in ports:
                server = RedisServer([*args, "--cluster-config-file", "nodes.conf"], port=port)
                self.servers.append(server)
                server.start()
            subprocess.run(
                [str(REDIS_CLI), "--cluster", "create"]
                + [f"127.0.0.1:{port}" for port in ports]
                + ["--cluster-replicas", str(self.replicas), "--cluster-yes"],
                check=True,
                capture_output=True,
                timeout=60,
            )
            self.wait_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ok(self, timeout: float = 30) -> None:
        """Until every live node reports cluster_state:ok and agrees on the slot map's masters."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (
                all(self._node_ok(s.port) for s in self.servers if s.proc is not None)
                and self._replicas_synced()
            ):
                return
            time.sleep(0.1)
        raise RuntimeError(f"cluster on ports {self.ports} did not reach cluster_state:ok in {timeout}s")

    def _node_ok(self, port: int) -> bool:
        try:
            node = redis.Redis(port=port, socket_timeout=1)
            info = node.cluster("INFO")
            if isinstance(info, bytes | str):
                text = info.decode() if isinstance(info, bytes) else info
                ok = "cluster_state:ok" in text
            else:
                ok = info.get("cluster_state") == "ok"
            return ok and len(node.cluster("SLOTS")) >= self.masters
        except redis.RedisError:
            return False

    def _replicas_synced(self) -> bool:
        """With every node up, each master has its replicas attached (a killed one is not waited for)."""
        if any(s.proc is None for s in self.servers):
            return True
        for master in self.master_ports():
            info = redis.Redis(port=master, socket_timeout=1).info("replication")
            if info.get("connected_slaves", 0) < self.replicas:
                return False
        return True

    def live_masters(self) -> int:
        return len(self.master_ports())

    def master_ports(self) -> list[int]:
        """Ports of the live nodes that are masters now."""
        found = []
        for server in self.servers:
            if server.proc is None:
                continue
            try:
                if redis.Redis(port=server.port, socket_timeout=1).info("replication")["role"] == "master":
                    found.append(server.port)
            except redis.RedisError:
                continue
        return found

    def server(self, port: int) -> RedisServer:
        return next(s for s in self.servers if s.port == port)

    def client(self, **kwargs: object) -> RedisCluster:
        """A bare redis-py RedisCluster on these nodes (for setup, checks and baselines)."""
        nodes = [ClusterNode("127.0.0.1", port) for port in self.ports]
        return RedisCluster(startup_nodes=nodes, **kwargs)  # type: ignore[arg-type]

    def stop(self, servers: Sequence[RedisServer] | None = None) -> None:
        for server in servers if servers is not None else self.servers:
            server.stop()

    def __enter__(self) -> RedisClusterProcesses:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.__exit__()


def use_cluster(cluster: RedisClusterProcesses, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the backend at the cluster through [redis_xcom] url = redis+cluster://..."""
    monkeypatch.setenv("AIRFLOW__REDIS_XCOM__URL", cluster.url)


def flush_cluster(cluster: RedisClusterProcesses) -> None:
    """Empty every master of the suite's own cluster (between tests sharing it)."""
    for port in cluster.master_ports():
        redis.Redis(port=port).flushall()
