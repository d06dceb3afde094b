"""Every touch of redis-py's private attributes and version differences, in one place.

redis-py 5.2.1 (pinned by Airflow 3.0-3.2's celery extra, through kombu) up to 8.x: each function
here names what it relies on, and tests/test_redispy_compat.py checks it against the installed
redis-py (every matrix leg, so 5.2.1 and the lock). Nothing else in the package reads a ``_``
attribute of a redis-py object or imports redis-py's internals (tests/test_layout.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import redis.backoff
import redis.cluster
from redis.backoff import AbstractBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.connection import Encoder, PythonRespSerializer


class _ExponentialWithJitterBackoff(AbstractBackoff):
    """redis-py's ExponentialWithJitterBackoff, for redis-py before 5.3, which lacks it (kombu caps
    redis-py at 5.2.1 in the celery extra of Airflow 3.0 to 3.2)."""

    def __init__(self, cap: float, base: float) -> None:
        self._cap = cap
        self._base = base

    def compute(self, failures: int) -> float:
        return min(self._cap, random.random() * self._base * 2**failures)


# redis-py's own where it has one (5.3+), so its equality and hashing come along.
JITTER_BACKOFF: Callable[..., AbstractBackoff] = getattr(
    redis.backoff, "ExponentialWithJitterBackoff", _ExponentialWithJitterBackoff
)


def cluster_retries_apart() -> bool:
    """redis-py before 6 counts cluster-level retries (MOVED, ASK, a node down) in a keyword of its
    own, cluster_error_retry_attempts; 6+ takes them from ``retry`` alone."""
    return "retry" not in getattr(redis.cluster, "KWARGS_DISABLED_KEYS", ())


def retry_schedule(retry: object) -> tuple[int | None, Any, float | None]:
    """(attempts, backoff, backoff cap) of a redis-py Retry: Retry keeps them private
    (``_retries``, ``_backoff``; the backoff's ``_cap``). None for what it does not have."""
    attempts = getattr(retry, "_retries", None)
    backoff = getattr(retry, "_backoff", None)
    cap = getattr(backoff, "_cap", None)
    return (
        attempts if isinstance(attempts, int) else None,
        backoff,
        float(cap) if isinstance(cap, int | float) else None,
    )


def drop_node_connection(node: ClusterNode) -> None:
    """Forget a cluster node's client, as RedisCluster itself does after a connection error: the
    next get_redis_connection builds a fresh one."""
    node.redis_connection = None


def pack_cluster_with(cluster: RedisCluster, packer: object) -> None:
    """packer on every node connection of cluster, now and after a refresh of the slot map:
    RedisCluster drops command_packer from its keyword arguments.

    Relies on NodesManager's ``from_url`` (nodes then built as a ConnectionPool of the kwargs, which
    passes the packer on to each connection; Redis(host, port, **kwargs) would refuse it) and on its
    ``connection_kwargs`` dict, both unlisted in redis-py's API.
    """
    nodes_manager = getattr(cluster, "nodes_manager", None)
    if not isinstance(getattr(nodes_manager, "connection_kwargs", None), dict):
        return
    nodes_manager.from_url = True  # type: ignore[union-attr]
    nodes_manager.connection_kwargs["command_packer"] = packer  # type: ignore[union-attr]
    for node in cluster.get_nodes():
        if node.redis_connection is not None:
            pool = node.redis_connection.connection_pool
            pool.connection_kwargs["command_packer"] = packer
            pool.disconnect()  # the slot map was read on a connection without it
            pool.reset()


class RespSerializer(PythonRespSerializer):
    """redis-py's Python command packer (redis.connection.PythonRespSerializer: no public API), with
    the size above which it sends an argument as it is named ``buffer_cutoff`` (redis-py keeps it
    as ``_buffer_cutoff``); a plain attribute, read on every command."""

    def __init__(self, buffer_cutoff: int, encode: Callable[[Any], bytes]) -> None:
        super().__init__(buffer_cutoff, encode)
        self.buffer_cutoff = buffer_cutoff


def utf8_encoder() -> Callable[[Any], bytes]:
    """redis-py's own argument encoder (str as UTF-8, numbers as their text), as its clients use it."""
    return Encoder("utf-8", "strict", False).encode
