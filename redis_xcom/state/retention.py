"""Airflow's ``[state_store]`` options as this backend applies them, and expiry times in milliseconds.

Retention is decided by Airflow, not here: a task's ``set(..., retention=...)`` (or, without one,
``[state_store] default_retention_days``) becomes the ``expires_at`` the server-side backend receives,
``None`` meaning never. The metastore deletes such rows in ``airflow state-store clean``; Redis expires
them by itself. Asset state never expires (the metastore keeps no expiry for asset rows either).
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from redis_xcom import airflow_compat
from redis_xcom.state.record import NEVER

SECTION = "state_store"
# A hash holding a value that never expires gets this expiry (9999-12-31): a hash is always volatile,
# so EXPIRE NX marks a new one and EXPIRE GT only ever raises an existing one, in plain commands.
FAR_FUTURE_MS = 253_402_300_799_000


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def expires_ms(expires_at: datetime | None) -> int:
    """``expires_at`` (UTC; a naive datetime is taken as UTC, as Airflow stores it) in Unix ms, or NEVER."""
    if expires_at is None:
        return NEVER
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=timezone.utc)
    return max(1, int(expires_at.timestamp() * 1000))


def key_expiry_ms(field_expires_ms: int) -> int:
    """The expiry a hash needs so that it outlives a field expiring at ``field_expires_ms``."""
    return FAR_FUTURE_MS if field_expires_ms == NEVER else field_expires_ms


def clear_on_success() -> bool:
    """``[state_store] clear_on_success``: Airflow itself calls clear() on success when it is set."""
    return airflow_compat.airflow_conf().getboolean(SECTION, "clear_on_success", fallback=False)


def default_retention_days() -> int:
    """``[state_store] default_retention_days``: the workers turn it into each row's ``expires_at``."""
    return airflow_compat.airflow_conf().getint(SECTION, "default_retention_days", fallback=30)
