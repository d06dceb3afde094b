"""redis-xcom: an Airflow 3 XCom backend that keeps every payload in Redis.

Enable it with ``[core] xcom_backend = redis_xcom.ExclusiveRedisXCom``.
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
    UnsupportedFormatError,
    UntrustedReferenceError,
    ValueTooLargeError,
    XComExpiredError,
)
from redis_xcom.version import __version__

if TYPE_CHECKING:
    from redis_xcom.backend import ExclusiveRedisXCom


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
    "UnsupportedFormatError",
    "UntrustedReferenceError",
    "ValueTooLargeError",
    "XComExpiredError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Imported lazily so the codec and keys stay usable without loading Airflow.
    if name == "ExclusiveRedisXCom":
        from redis_xcom.backend import ExclusiveRedisXCom

        return ExclusiveRedisXCom
    raise AttributeError(f"module 'redis_xcom' has no attribute {name!r}")
