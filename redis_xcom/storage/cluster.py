"""Redis Cluster specifics: the node that owns a key's slot, and retrying through resharding and failover.

redis-py's RedisCluster routes single-key commands and pipelines by slot and follows MOVED and ASK
itself. What it leaves to us:

* transactions: ClusterPipeline has them only from redis-py 6.1, and Airflow 3.0-3.2's celery extra
  pins 5.2.1; WAIT must also follow a write on the same connection. So a MULTI/EXEC (and its WAIT)
  runs on the slot owner's own connection (``on_slot_owner``), following MOVED/ASK/TRYAGAIN here;
* a bounded retry with backoff through a failover: redis-py 5.2.1 retries a lost node at once, 3
  times, before its replica has been elected (``retrying``).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.cluster import RedisCluster, key_slot
from redis.exceptions import AskError, ClusterDownError, MovedError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from redis_xcom.storage import errors, redispy_compat

T = TypeVar("T")

# When the client's own Retry is unknown: about 10 s of backoff, enough for a failover at the
# default cluster-node-timeout of a few seconds.
_DEFAULT_ATTEMPTS = 8
_DEFAULT_BACKOFF = ExponentialBackoff(cap=2.0, base=0.1)


def group_by_slot(keys: Iterable[str]) -> dict[int, list[str]]:
    """Keys per hash slot: a command with keys of one slot is never refused as cross-slot."""
    groups: dict[int, list[str]] = {}
    for key in keys:
        groups.setdefault(key_slot(key.encode()), []).append(key)
    return groups


def _schedule(client: RedisCluster) -> tuple[int, Any, float]:
    """Attempts, backoff and time budget of the client's Retry (built from [redis_xcom] retry_*)."""
    attempts, backoff, cap = redispy_compat.retry_schedule(getattr(client, "retry", None))
    if attempts is None or backoff is None:
        attempts, backoff, cap = _DEFAULT_ATTEMPTS, _DEFAULT_BACKOFF, None
    # At least a few: a failover takes several round trips of refreshing the slot map.
    attempts = max(attempts, 3)
    # redis-py 6+ retries inside each attempt too: the budget keeps the nested retries bounded.
    budget = attempts * (cap if cap is not None and cap > 0 else 2.0)
    return attempts, backoff, max(budget, 1.0)


def _refresh(client: RedisCluster, exc: Exception) -> None:
    """Update the slot map after a redirection or a lost node, so the next attempt goes where the slot is."""
    if isinstance(exc, AskError | TryAgainError) and not isinstance(exc, MovedError):
        return  # a migration in progress: the slot map is right, the keys are moving
    # A MOVED too reloads the whole map (redis-py's API to patch one slot differs between 5 and 8).
    # No node may answer yet; the next attempt tries again.
    with contextlib.suppress(*errors.TRANSIENT):
        client.nodes_manager.initialize()


def retrying(client: RedisCluster, action: Callable[[], T]) -> T:
    """action(), again with backoff while the cluster reshards or fails over: at most retry_attempts
    more times and retry_attempts x retry_backoff_cap seconds after the first failure, then its last
    error. The first attempt costs nothing more than action() itself (every push and pull)."""
    try:
        return action()
    except errors.TRANSIENT as exc:
        error: Exception = exc
    attempts, backoff, budget = _schedule(client)
    backoff.reset()
    deadline = time.monotonic() + budget
    failures = 1
    while True:
        pause = 0.0 if isinstance(error, MovedError) else backoff.compute(failures)
        if failures > attempts or time.monotonic() + pause > deadline:
            raise error
        _refresh(client, error)
        time.sleep(pause)
        try:
            return action()
        except errors.TRANSIENT as exc:
            error = exc
            failures += 1


def on_slot_owner(client: RedisCluster, key: str, run: Callable[[redis.Redis], list[Any]]) -> list[Any]:
    """run(connection of the master owning key's slot); a MOVED, ASK or TRYAGAIN reply among its
    results (a pipeline's replies) is raised, so that ``retrying`` sends it again where the slot is."""

    def attempt() -> list[Any]:
        node = client.get_node_from_key(key)
        try:
            replies = run(client.get_redis_connection(node))
        except (RedisConnectionError, RedisTimeoutError) as exc:
            redispy_compat.drop_node_connection(node)
            _name_node(exc, node.name)
            raise
        for reply in replies:
            if isinstance(reply, AskError | TryAgainError | ClusterDownError):
                _name_node(reply, node.name)
                raise reply
        return replies

    return retrying(client, attempt)


def _name_node(exc: Exception, name: str) -> None:
    """Say which node failed, when redis-py's message does not."""
    if exc.args and isinstance(exc.args[0], str) and name not in exc.args[0]:
        exc.args = (f"{exc.args[0]} (node {name})", *exc.args[1:])
