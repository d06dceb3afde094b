"""Each touch of redis-py's private attributes (storage/redispy_compat.py) against the installed
redis-py: the main venv's and every matrix leg's (3.0's lock pins 5.2.1). A redis-py release that
renames one of them fails here, not in a failover."""

from __future__ import annotations

import random

import pytest
import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry

from redis_xcom.config import Settings
from redis_xcom.storage import redispy_compat
from redis_xcom.storage.client import build_client
from redis_xcom.storage.cluster import _schedule
from redis_xcom.storage.packer import COMMAND_PACKER, BufferList
from tests.cluster_process import RedisClusterProcesses

BIG = b"x" * 10_000


def test_retry_schedule_reads_what_the_settings_put_in_the_retry() -> None:
    retry = Retry(ExponentialBackoff(cap=3.0, base=0.1), retries=5)
    attempts, backoff, cap = redispy_compat.retry_schedule(retry)
    assert (attempts, cap) == (5, 3.0) and backoff.compute(10) == 3.0


def test_retry_schedule_of_a_built_client_follows_the_settings() -> None:
    built = build_client(Settings(retry_attempts=6, retry_backoff_base=0.1, retry_backoff_cap=1.5))
    retry = built.connection_pool.connection_kwargs["retry"]
    attempts, backoff, cap = redispy_compat.retry_schedule(retry)
    assert (attempts, cap) == (6, 1.5)
    random.seed(1)
    assert 0 <= backoff.compute(20) <= 1.5


def test_retry_schedule_says_none_for_what_it_cannot_read() -> None:
    assert redispy_compat.retry_schedule(object()) == (None, None, None)


def test_jitter_backoff_is_redis_pys_own_where_it_has_one() -> None:
    own = getattr(redis.backoff, "ExponentialWithJitterBackoff", None)
    expected = own if own is not None else redispy_compat._ExponentialWithJitterBackoff
    assert redispy_compat.JITTER_BACKOFF is expected


def test_dropping_a_node_connection_makes_the_cluster_client_build_a_new_one() -> None:
    node = ClusterNode("127.0.0.1", 7000, redis_connection=redis.Redis())
    redispy_compat.drop_node_connection(node)
    assert node.redis_connection is None


def test_serializer_sends_large_arguments_uncopied_above_the_cutoff() -> None:
    # PythonRespSerializer must still decide by the cutoff it was built with.
    serializer = redispy_compat.RespSerializer(6000, redispy_compat.utf8_encoder())
    assert serializer.buffer_cutoff == 6000
    assert any(chunk is BIG for chunk in serializer.pack("SET", "k", BIG))
    assert all(
        chunk is not BIG
        for chunk in redispy_compat.RespSerializer(20_000, serializer.encode).pack("SET", "k", BIG)
    )


def test_the_command_packer_still_writes_buffer_lists_part_by_part() -> None:
    chunks = COMMAND_PACKER.pack("SET", "k", BufferList([b"head", BIG]))
    assert any(chunk is BIG for chunk in chunks)


def test_cluster_retries_apart_matches_redis_py_major_version() -> None:
    major = int(redis.__version__.split(".")[0])
    assert redispy_compat.cluster_retries_apart() is (major < 6)


def test_a_cluster_client_packs_with_ours_on_every_node(redis_cluster: RedisClusterProcesses) -> None:
    built = build_client(Settings(url=redis_cluster.url))
    assert isinstance(built, RedisCluster)
    try:
        assert built.nodes_manager.connection_kwargs["command_packer"] is COMMAND_PACKER
        for node in built.get_primaries():
            connection = built.get_redis_connection(node).connection_pool.make_connection()
            assert connection._command_packer is COMMAND_PACKER
        # A refreshed slot map builds its nodes with our packer too.
        built.nodes_manager.initialize()
        node = built.get_primaries()[0]
        assert (
            built.get_redis_connection(node).connection_pool.connection_kwargs["command_packer"]
            is COMMAND_PACKER
        )
        assert _schedule(built)[0] >= 3
    finally:
        built.close()


@pytest.mark.parametrize("attempts", [0, 2])
def test_cluster_schedule_keeps_at_least_three_attempts(attempts: int) -> None:
    retry = Retry(ExponentialBackoff(cap=0.5, base=0.1), retries=attempts)

    class Client:
        pass

    client = Client()
    client.retry = retry  # type: ignore[attr-defined]
    tries, _, budget = _schedule(client)  # type: ignore[arg-type]
    assert tries == 3 and budget == 1.5
