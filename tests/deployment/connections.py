"""Watch how many clients connect to the XCom Redis while DAGs run (a leak shows as growth).

The test's own connections carry a client name and are left out of every count, so the counts
are the deployment's alone: 0 before the runs, and 0 again after them when nothing leaks.
"""

from __future__ import annotations

import threading
import time

import redis

OWN_CLIENT_NAME = "redis-xcom-deployment-test"


def own_client(url: str) -> redis.Redis:
    """A client of the test's whose connections never count as the deployment's."""
    return redis.Redis.from_url(url, client_name=OWN_CLIENT_NAME)


def connections_received(client: redis.Redis) -> int:
    """Connections the server has accepted since it started (whoever opened them)."""
    return int(client.info("stats")["total_connections_received"])


def deployment_clients(client: redis.Redis) -> int:
    """Connections to the Redis that are not the test's own (CLIENT LIST, by client name)."""
    return len(deployment_client_list(client))


def deployment_client_list(client: redis.Redis) -> list[str]:
    """Who those connections are (address, name, age, last command): what a failure shows."""
    return [
        f"{c.get('addr')} name={c.get('name')!r} age={c.get('age')}s cmd={c.get('cmd')}"
        for c in client.client_list()
        if c.get("name") != OWN_CLIENT_NAME
    ]


def clients_of_processes(client: redis.Redis, pids: set[int]) -> int:
    """The deployment's connections opened by these processes (matched by their local TCP ports)."""
    import psutil

    ports: set[int] = set()
    for pid in pids:
        try:
            ports |= {c.laddr.port for c in psutil.Process(pid).net_connections(kind="tcp") if c.raddr}
        except psutil.Error:  # exited meanwhile
            continue
    return sum(
        1
        for c in client.client_list()
        if c.get("name") != OWN_CLIENT_NAME and int(str(c["addr"]).rsplit(":", 1)[1]) in ports
    )


def process_tree(pid: int) -> set[int]:
    """pid and all its descendants (the api-server's uvicorn workers)."""
    import psutil

    try:
        return {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}
    except psutil.Error:
        return {pid}


class ClientSampler:
    """Counts the deployment's connections on a thread of its own; `peak` is the most at once."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        self.client = own_client(url)
        self.interval = interval
        self.baseline_clients = deployment_client_list(self.client)
        self.baseline = len(self.baseline_clients)
        self.peak = self.baseline
        self.samples = 0
        self.opened = 0  # connections accepted while sampling: one per task process if none leaks
        self._received_at_start = connections_received(self.client)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-client-sampler", daemon=True)

    def __enter__(self) -> ClientSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.opened = connections_received(self.client) - self._received_at_start

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, deployment_clients(self.client))
            self.samples += 1

    def settle(self, timeout: float = 30, kept: int = 0) -> int:
        """The count once it is back at the baseline (plus ``kept``, connections a long-running
        component holds on purpose), or its last value after timeout (task processes close their
        connection as they exit, a moment after their run is marked done)."""
        deadline = time.monotonic() + timeout
        now = deployment_clients(self.client)
        while now > self.baseline + kept and time.monotonic() < deadline:
            time.sleep(0.2)
            now = deployment_clients(self.client)
        return now
