"""A connection that knows its topology: one node (directly or a Sentinel's master) or a cluster.

The kind is chosen once, when the client is built (client.build_connection, from the URL's
scheme), and each kind answers the few operations that differ between them: how one command is
sent (a cluster retries through resharding and failover), which connection owns a key (a
MULTI/EXEC runs there), how keys are unlinked (a cluster: one UNLINK per slot), scanned (a
cluster: every primary) and which nodes hold keys. Nothing else in the package asks a client
which kind it is.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any, ClassVar, TypeAlias, TypeVar

import redis
from redis.cluster import RedisCluster
from redis.sentinel import SentinelConnectionPool

from redis_xcom.config import DEFAULT_PORT
from redis_xcom.storage import cluster, errors

# What build_client returns: one node (directly or through Sentinel), or a cluster.
Client: TypeAlias = "redis.Redis | RedisCluster"

NODE, SENTINEL, CLUSTER = "node", "sentinel", "cluster"
SCAN_BATCH = 1000
T = TypeVar("T")


def _decoded(found: Sequence[Any]) -> list[str]:
    return [k.decode() if isinstance(k, bytes) else k for k in found]


def join_hosts(hosts: Any) -> str:
    return ",".join(f"{host}:{port}" for host, port in hosts)


class Connection:
    """A redis-py client and its kind; ``where`` names it in messages (never credentials)."""

    kind: str
    # One server holds every key: a script may go straight through the client.
    one_node: ClassVar[bool]
    client: Any

    def __init__(self, client: Client, kind: str, where: str | None = None) -> None:
        self.client = client
        self.kind = kind
        if where is not None:
            self.where = where

    @functools.cached_property
    def where(self) -> str:
        """The node(s) the client talks to, read from it on first use (never credentials)."""
        return self.describe()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where})"

    def describe(self) -> str:
        raise NotImplementedError

    # Set per instance by each kind, as the fastest callable it has (every push and pull).
    get: Callable[[str], Any]
    execute: Callable[..., Any]

    def retrying(self, action: Callable[[], T]) -> T:
        """action(), retried where the topology needs more than redis-py's own retry."""
        raise NotImplementedError

    def on_owner(self, key: str, run: Callable[[redis.Redis], list[Any]]) -> list[Any]:
        """run(a connection to the node holding key)."""
        raise NotImplementedError

    def owner_name(self, key: str) -> str:
        """The node holding key, for messages."""
        raise NotImplementedError

    def raise_redirected(self, replies: Sequence[Any]) -> None:
        """Raise a reply of a pipeline that says the keys moved (a cluster's resharding or failover)."""

    def unlink(self, keys: Sequence[str]) -> int:
        raise NotImplementedError

    def scan(self, pattern: str) -> Iterator[list[str]]:
        """Batches of keys matching a glob pattern, walking every key-holding node with SCAN."""
        raise NotImplementedError

    def nodes(self) -> dict[str, Any]:
        """A client per server holding keys."""
        raise NotImplementedError


class NodeConnection(Connection):
    """One server: a node, or the master a Sentinel service names (redis-py follows its failover)."""

    one_node = True

    def __init__(self, client: redis.Redis, kind: str = NODE, where: str | None = None) -> None:
        super().__init__(client, kind, where)
        self.get = client.get
        self.execute = client.execute_command

    def describe(self) -> str:
        pool = getattr(self.client, "connection_pool", None)
        if isinstance(pool, SentinelConnectionPool):
            sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
            where = join_hosts((s.get("host", "?"), s.get("port", DEFAULT_PORT)) for s in sentinels)
            return f"the master of Sentinel service {pool.service_name!r} via Sentinels {where}"
        kwargs = getattr(pool, "connection_kwargs", {})
        if kwargs.get("path"):
            return str(kwargs["path"])
        return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', DEFAULT_PORT)}"

    def retrying(self, action: Callable[[], T]) -> T:
        return action()  # redis-py's own Retry suffices on one node

    def on_owner(self, key: str, run: Callable[[redis.Redis], list[Any]]) -> list[Any]:
        return run(self.client)

    def owner_name(self, key: str) -> str:
        return self.where

    def unlink(self, keys: Sequence[str]) -> int:
        return int(self.client.unlink(*keys))

    def scan(self, pattern: str) -> Iterator[list[str]]:
        cursor = 0
        while True:
            cursor, found = self.client.scan(cursor=cursor, match=pattern, count=SCAN_BATCH)
            if found:
                yield _decoded(found)
            if cursor == 0:
                return

    def nodes(self) -> dict[str, Any]:
        return {self.where: self.client}


class ClusterConnection(Connection):
    """A Redis Cluster: commands routed by slot, retried through resharding and failover."""

    one_node = False

    def __init__(self, client: RedisCluster, where: str | None = None) -> None:
        super().__init__(client, CLUSTER, where)
        self.get = self._get
        self.execute = self._execute

    def describe(self) -> str:
        nodes = sorted(self.client.nodes_manager.startup_nodes)
        return f"{','.join(nodes)} (Redis Cluster)"

    def _get(self, key: str) -> Any:
        return cluster.retrying(self.client, lambda: self.client.get(key))

    def _execute(self, *command: Any) -> Any:
        # One command: RedisCluster routes it by its keys and follows MOVED/ASK itself.
        return cluster.retrying(self.client, lambda: self.client.execute_command(*command))

    def retrying(self, action: Callable[[], T]) -> T:
        return cluster.retrying(self.client, action)

    def on_owner(self, key: str, run: Callable[[redis.Redis], list[Any]]) -> list[Any]:
        return cluster.on_slot_owner(self.client, key, run)

    def owner_name(self, key: str) -> str:
        return str(self.client.get_node_from_key(key).name)

    def raise_redirected(self, replies: Sequence[Any]) -> None:
        transient = next((r for r in replies if isinstance(r, errors.TRANSIENT)), None)
        if transient is not None:
            raise transient

    def unlink(self, keys: Sequence[str]) -> int:
        """One UNLINK per hash slot (never cross-slot), pipelined per node."""
        groups = list(cluster.group_by_slot(keys).values())

        def unlink_per_slot() -> int:
            pipe = self.client.pipeline(transaction=False)
            for group in groups:
                pipe.execute_command("UNLINK", *group)  # ClusterPipeline.unlink takes one key only
            return sum(int(n) for n in pipe.execute())

        return int(self.retrying(unlink_per_slot))

    def scan(self, pattern: str) -> Iterator[list[str]]:
        batch: list[str] = []
        found = self.client.scan_iter(match=pattern, count=SCAN_BATCH, target_nodes=RedisCluster.PRIMARIES)
        for k in found:
            batch.append(k.decode() if isinstance(k, bytes) else k)
            if len(batch) >= SCAN_BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def nodes(self) -> dict[str, Any]:
        return {f"{node.host}:{node.port}": node.redis_connection for node in self.client.get_primaries()}


def connection_of(
    client: Client | Connection, kind: str | None = None, where: str | None = None
) -> Connection:
    """The connection for a client: of the kind given (build_connection knows it from the URL), or
    found once from the client's class (a client built elsewhere: tests, benchmarks)."""
    if isinstance(client, Connection):
        if where is None:
            return client
        named = copy.copy(client)  # the same client, named otherwise in messages
        named.where = where
        return named
    if kind is None:
        if isinstance(client, RedisCluster):
            kind = CLUSTER
        elif isinstance(getattr(client, "connection_pool", None), SentinelConnectionPool):
            kind = SENTINEL
        else:
            kind = NODE
    if kind == CLUSTER:
        return ClusterConnection(client, where)  # type: ignore[arg-type]
    return NodeConnection(client, kind, where)  # type: ignore[arg-type]
