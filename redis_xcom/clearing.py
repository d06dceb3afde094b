"""Which Redis keys a clear selection names, and deleting them: ExclusiveRedisXCom.clear and
`redis-xcom clear` both go through here (ops without importing Airflow's XCom classes).

With a run_id, the run's index names its keys: the cost follows the run's size, not the keyspace's.
Without one, SCAN MATCH walks the keyspace. Every key is checked against the selection before it is
deleted (keys.Selection.contains): neither the pattern nor an index (writable by anyone with access
to Redis) may name a key outside it or the prefix.
"""

from __future__ import annotations

from collections.abc import Iterator

from redis_xcom import keys
from redis_xcom.runtime import Runtime


def selected_keys(runtime: Runtime, selection: keys.Selection) -> Iterator[tuple[str | None, list[str]]]:
    """Batches of a selection's keys, each with the run index it was read from (None: a scan)."""
    prefix = runtime.settings.key_prefix
    index = (
        None if selection.run_id is None else keys.run_index_key(prefix, selection.dag_id, selection.run_id)
    )
    batches = (
        runtime.store.scan(selection.pattern(prefix)) if index is None else runtime.store.index_members(index)
    )
    for batch in batches:
        chosen = [k for k in batch if (c := keys.parse_key(k, prefix)) is not None and selection.contains(c)]
        yield index, chosen


def clear(runtime: Runtime, selection: keys.Selection) -> int:
    """Delete the selection's values (and drop them from their run's index); how many existed."""
    store = runtime.store
    deleted = 0
    for index, chosen in selected_keys(runtime, selection):
        if index is not None:
            deleted += store.unlink_indexed(index, chosen)
        else:
            # A scan crosses runs: each key leaves its own run's index too, so indexes stay exact.
            deleted += store.unlink_indexed_groups(keys.group_by_run_index(chosen))
    return deleted
