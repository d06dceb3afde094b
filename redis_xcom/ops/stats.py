"""`redis-xcom stats`: what the XCom values cost Redis, by DAG, largest first, and each server's state.

One walk of the values under key_prefix (SCAN batches; MEMORY USAGE, TTL and TYPE pipelined per
batch); only the per-DAG totals and the N largest values are kept, never the keyspace.
"""

from __future__ import annotations

import heapq
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from redis_xcom import keys
from redis_xcom.ops import diagnosis, state_ops
from redis_xcom.ops.engine import engine_of
from redis_xcom.ops.output import OK, Output, human_bytes
from redis_xcom.ops.progress import progress
from redis_xcom.runtime import get_runtime

# Upper bounds (seconds) of the TTL histogram's buckets; the last one takes the rest.
TTL_BUCKETS: tuple[tuple[str, float], ...] = (
    ("< 1 hour", 3600),
    ("1 hour - 1 day", 86400),
    ("1 - 7 days", 7 * 86400),
    ("> 7 days", float("inf")),
)
NO_TTL = "no TTL"


@dataclass
class Usage:
    values: int = 0
    bytes: int = 0
    chunked: int = 0
    chunked_bytes: int = 0
    measured_by: str = "MEMORY USAGE"
    dag_keys: Counter[str] = field(default_factory=Counter)
    dag_bytes: Counter[str] = field(default_factory=Counter)
    ttls: Counter[str] = field(default_factory=Counter)
    largest: list[tuple[int, str]] = field(default_factory=list)  # a min-heap of the top N


def ttl_bucket(ttl: int) -> str:
    if ttl < 0:
        return NO_TTL
    return next(name for name, bound in TTL_BUCKETS if ttl <= bound)


def survey(top: int) -> Usage:
    runtime = get_runtime()
    store, info, prefix = runtime.store, runtime.info, runtime.settings.key_prefix
    head = prefix + ":{"
    usage = Usage()
    with progress("stats: walking values", info.key_count()) as bar:
        for batch in store.scan(head + "*"):
            values = [k for k in batch if keys.parse_key(k, prefix) is not None]
            for facts in info.describe(values):
                coords = keys.parse_key(facts.key, prefix)
                if not facts.exists or coords is None:
                    continue
                usage.values += 1
                usage.bytes += facts.bytes
                usage.measured_by = facts.measured_by
                usage.dag_keys[coords.dag_id] += 1
                usage.dag_bytes[coords.dag_id] += facts.bytes
                usage.ttls[ttl_bucket(facts.ttl)] += 1
                if facts.chunked:
                    usage.chunked += 1
                    usage.chunked_bytes += facts.bytes
                if top > 0:
                    if len(usage.largest) < top:
                        heapq.heappush(usage.largest, (facts.bytes, facts.key))
                    else:
                        heapq.heappushpop(usage.largest, (facts.bytes, facts.key))
            bar.advance(len(batch))
    return usage


def servers() -> dict[str, dict[str, Any]]:
    """Memory, limits, policy, persistence and version of each server holding keys."""
    found = {}
    for name, node in get_runtime().info.nodes().items():
        info = node.info()
        engine = engine_of(info)
        found[name] = {
            "engine": engine.name,
            "version": engine.version,
            # As INFO gives it: Valkey pins 7.2.4 here for old clients; "version" is the real one.
            "redis_version": info.get("redis_version"),
            "used_memory": info.get("used_memory"),
            "maxmemory": info.get("maxmemory"),
            "maxmemory_policy": info.get("maxmemory_policy"),
            "aof_enabled": bool(info.get("aof_enabled")),
            "rdb_last_save_time": info.get("rdb_last_save_time"),
            "keys": int(node.dbsize()),
        }
    return found


def run_stats(*, top: int, out: Output) -> int:
    settings, problem = diagnosis.reachable()
    if problem is not None:
        return diagnosis.report(out, "stats", problem)
    try:
        usage = survey(top)
        state = state_ops.survey()
        nodes = servers()
    except Exception as exc:  # the store's RedisXComError, or a server query outside it (INFO)
        return diagnosis.report(out, "stats", diagnosis.diagnose(exc, settings))
    largest = sorted(usage.largest, reverse=True)
    prefix = get_runtime().settings.key_prefix
    out.line(
        f"{usage.values} XCom values under key_prefix {prefix!r}: {human_bytes(usage.bytes)} "
        f"({usage.measured_by})"
    )
    out.line(f"Chunked values: {usage.chunked} ({human_bytes(usage.chunked_bytes)})")
    out.line("")
    out.line(f"{'DAG':<40} {'values':>8} {'bytes':>12}")
    for dag_id, size in usage.dag_bytes.most_common(top):
        out.line(f"{dag_id:<40} {usage.dag_keys[dag_id]:>8} {human_bytes(size):>12}")
    if len(usage.dag_bytes) > top:
        out.line(f"... and {len(usage.dag_bytes) - top} more DAGs")
    out.line("")
    out.line(f"Largest {len(largest)} values:")
    for size, redis_key in largest:
        out.line(f"  {human_bytes(size):>10}  {redis_key}")
    out.line("")
    out.line("TTL left:")
    for name in [n for n, _ in TTL_BUCKETS] + [NO_TTL]:
        out.line(f"  {name:<16} {usage.ttls[name]:>8}")
    state_ops.print_usage(state, out, top)
    for name, node in nodes.items():
        out.line("")
        policy = node["maxmemory_policy"]
        limit = human_bytes(node["maxmemory"]) if node["maxmemory"] else "none"
        used = human_bytes(node["used_memory"] or 0)
        out.line(
            f"Server {name}: {node['engine']} {node['version']}, {used} used, "
            f"maxmemory {limit}, policy {policy}, appendonly {'yes' if node['aof_enabled'] else 'no'}, "
            f"{node['keys']} keys"
        )
    out.document(
        {
            "key_prefix": prefix,
            "values": usage.values,
            "bytes": usage.bytes,
            "bytes_measured_by": usage.measured_by,
            "chunked": {"values": usage.chunked, "bytes": usage.chunked_bytes},
            "dags": {
                d: {"values": usage.dag_keys[d], "bytes": b} for d, b in usage.dag_bytes.most_common(top)
            },
            "largest": [{"key": k, "bytes": b} for b, k in largest],
            "ttl_histogram": {n: usage.ttls[n] for n in [n for n, _ in TTL_BUCKETS] + [NO_TTL]},
            "state_store": state.document(),
            "servers": nodes,
        }
    )
    return OK
