"""redis-xcom: an Airflow 3 XCom backend that keeps every payload in Redis.

Enable it with ``[core] xcom_backend = redis_xcom.ExclusiveRedisXCom``; on Airflow 3.3+ the task and
asset state store too, with ``[state_store] backend`` and/or ``[workers] state_store_backend`` =
``redis_xcom.RedisStateStoreBackend``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from redis_xcom.errors import (
    CodecError,
    ConfigError,
    CorruptPayloadError,
    DecodeLimitError,
    DisallowedClassError,
    RedisUnavailableError,
    RedisXComError,
    ReplicationError,
    StateValueMissingError,
    UnsupportedFormatError,
    UntrustedReferenceError,
    ValueTooLargeError,
    XComExpiredError,
)
from redis_xcom.version import __version__

if TYPE_CHECKING:
    from redis_xcom.backend import ExclusiveRedisXCom
    from redis_xcom.state.backend import RedisStateStoreBackend as RedisStateStoreBackend


__all__ = [
    "CodecError",
    "ConfigError",
    "CorruptPayloadError",
    "DecodeLimitError",
    "DisallowedClassError",
    "ExclusiveRedisXCom",
    "RedisUnavailableError",
    "RedisXComError",
    "ReplicationError",
    "StateValueMissingError",
    "UnsupportedFormatError",
    "UntrustedReferenceError",
    "ValueTooLargeError",
    "XComExpiredError",
    "__version__",
]
# RedisStateStoreBackend is public too (lazily, below) but not in __all__: `from redis_xcom import *`
# must keep working on Airflow 3.0 to 3.2, which have no state store.


def __getattr__(name: str) -> Any:
    # Imported lazily so the codec and keys stay usable without loading Airflow.
    if name == "ExclusiveRedisXCom":
        from redis_xcom.backend import ExclusiveRedisXCom

        return ExclusiveRedisXCom
    if name == "RedisStateStoreBackend":
        return _state_backend()
    raise AttributeError(f"module 'redis_xcom' has no attribute {name!r}")


def _state_backend() -> Any:
    """RedisStateStoreBackend, or an ImportError saying why on an Airflow without the state store."""
    try:
        import airflow.sdk.state  # noqa: F401  (Airflow 3.3+)
    except ImportError as exc:
        raise ImportError(
            "redis_xcom.RedisStateStoreBackend needs Airflow 3.3+ (the task and asset state store, "
            f"AIP-103; airflow.sdk.state cannot be imported here: {exc}). Upgrade Airflow, or remove "
            "[state_store] backend / [workers] state_store_backend."
        ) from exc
    from redis_xcom.state.backend import RedisStateStoreBackend as RedisStateStoreBackend

    return RedisStateStoreBackend
