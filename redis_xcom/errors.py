"""Every error the backend raises on purpose; all derive from RedisXComError."""

from __future__ import annotations


class RedisXComError(Exception):
    """Base class of every error raised by redis-xcom."""


class ConfigError(RedisXComError):
    """The [redis_xcom] configuration is invalid (bad URL, unknown compression, ...)."""


class RedisUnavailableError(RedisXComError):
    """Redis could not be reached or answered with a connection-level error."""


class XComExpiredError(RedisXComError):
    """The DB holds a reference but Redis no longer holds the value (expired, evicted or deleted)."""


class CodecError(RedisXComError):
    """Stored bytes could not be decoded into a value."""


class CorruptPayloadError(CodecError):
    """The stored bytes are truncated, altered, or were not written by redis-xcom."""


class UnsupportedFormatError(CodecError):
    """The stored value was written in a format version or compression this reader does not know."""


class DecodeLimitError(CodecError):
    """Decoding would cost more than allowed: a recorded size above max_value_bytes, or a value that
    would build far more than its stored bytes (containers, arrays, tables, views; see
    redis_xcom/codec/budget.py), or maps and sets whose keys share one hash value."""


class DisallowedClassError(CodecError):
    """The value names a class outside [core] allowed_deserialization_classes."""


class ValueTooLargeError(RedisXComError):
    """The serialized value exceeds [redis_xcom] max_value_bytes; nothing was written."""


class ReplicationError(RedisXComError):
    """Fewer replicas than [redis_xcom] wait_replicas confirmed a write within wait_timeout_ms."""


class UntrustedReferenceError(RedisXComError):
    """An xcom row names a Redis key that is not one of this backend's values, or not the row's own.

    Rows can be written through the REST API, the UI or DAG code: such a row is never resolved,
    deleted or probed.
    """


class StateValueMissingError(RedisXComError):
    """A state store row refers to a value Redis no longer holds (deleted, evicted, or a flushed server)."""
