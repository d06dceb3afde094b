"""Walks over every state hash under key_prefix: pruning expired fields (cleanup), and what ops counts."""

from __future__ import annotations

from collections.abc import Iterator

from redis_xcom.state import keys, record, retention, storage
from redis_xcom.state.keys import StateScope


def state_hashes() -> Iterator[tuple[str, StateScope]]:
    """(hash key, scope) of every state hash under key_prefix (``#maps`` sets and foreign keys skipped)."""
    prefix = storage.settings().key_prefix
    for batch in storage.scan_keys(keys.state_head(prefix) + "*"):
        for redis_key in batch:
            scope = keys.parse_hash_key(redis_key, prefix)
            if scope is not None:
                yield redis_key, scope


def prune_expired() -> int:
    """Delete the fields past their own expiry in hashes kept alive by a longer-lived field; how many."""
    now = retention.now_ms()
    pruned = 0
    for hash_key, _scope in state_hashes():
        expired = [
            name
            for name, data in storage.fields(hash_key)
            if (times := record.times_of(data)) is not None and times[0] != record.NEVER and times[0] <= now
        ]
        if expired:
            pruned += storage.remove_fields(hash_key, expired)
    return pruned
