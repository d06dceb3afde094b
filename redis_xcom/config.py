"""The [redis_xcom] settings, read once per process into a typed, frozen object."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, fields
from urllib.parse import urlsplit, urlunsplit

from redis_xcom.airflow_compat import airflow_conf
from redis_xcom.errors import ConfigError

SECTION = "redis_xcom"
_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.:/-]+")
_SCHEMES = ("redis", "rediss", "unix")
_COMPRESSIONS = ("none", "zlib", "lz4", "zstd")


@dataclass(frozen=True)
class Settings:
    """Every option of [redis_xcom]; the README's configuration table documents each."""

    url: str = "redis://localhost:6379/0"
    key_prefix: str = "xcom"
    ttl: int = 7 * 24 * 3600
    socket_connect_timeout: float = 5.0
    socket_timeout: float = 5.0
    retry_attempts: int = 3
    retry_backoff_base: float = 0.1
    retry_backoff_cap: float = 2.0
    compression: str = "none"
    compression_threshold: int = 64 * 1024
    max_value_bytes: int = 1024 * 1024 * 1024
    # Values above this many bytes are stored as a list of chunks (see store.py); it is lowered
    # automatically to the server's proto-max-bulk-len when that is smaller and readable.
    chunk_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        scheme = urlsplit(self.url).scheme
        if scheme not in _SCHEMES:
            raise ConfigError(
                f"[{SECTION}] url must start with redis://, rediss:// or unix://, got "
                f"{redact_url(self.url)!r}"
            )
        if not _PREFIX_PATTERN.fullmatch(self.key_prefix):
            # Braces would move the cluster hash tag, glob characters would break pattern clears.
            raise ConfigError(
                f"[{SECTION}] key_prefix {self.key_prefix!r} may only hold letters, digits and _ . : / -"
            )
        if self.ttl <= 0:
            raise ConfigError(f"[{SECTION}] ttl must be a positive number of seconds, got {self.ttl}")
        for name in ("socket_connect_timeout", "socket_timeout"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"[{SECTION}] {name} must be positive, got {getattr(self, name)}")
        if self.retry_attempts < 0:
            raise ConfigError(f"[{SECTION}] retry_attempts must be >= 0, got {self.retry_attempts}")
        if self.compression not in _COMPRESSIONS:
            raise ConfigError(
                f"[{SECTION}] compression must be one of {', '.join(_COMPRESSIONS)}, got {self.compression!r}"
            )
        if self.compression_threshold < 0 or self.max_value_bytes <= 0:
            raise ConfigError(f"[{SECTION}] compression_threshold and max_value_bytes must be positive")
        if self.chunk_bytes < 1024:
            raise ConfigError(f"[{SECTION}] chunk_bytes must be at least 1024, got {self.chunk_bytes}")

    def __repr__(self) -> str:
        # Never show the password, whoever prints the settings.
        shown = ", ".join(
            f"{f.name}={redact_url(self.url) if f.name == 'url' else getattr(self, f.name)!r}"
            for f in fields(self)
        )
        return f"Settings({shown})"


def redact_url(url: str) -> str:
    """The URL with any password replaced by ***, safe to log or put in an error."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _from_airflow_conf() -> Settings:
    conf = airflow_conf()
    defaults = Settings()
    values: dict[str, object] = {}
    for field in fields(Settings):
        raw = conf.get(SECTION, field.name, fallback=None)
        if raw is None or raw == "":
            continue
        kind = type(getattr(defaults, field.name))
        try:
            values[field.name] = kind(raw.strip())
        except ValueError:
            raise ConfigError(
                f"[{SECTION}] {field.name} must be {kind.__name__}, got {raw!r} "
                f"(set it in airflow.cfg or AIRFLOW__REDIS_XCOM__{field.name.upper()})"
            ) from None
    return Settings(**values)  # type: ignore[arg-type]


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from airflow.cfg / AIRFLOW__REDIS_XCOM__* on first use."""
    return _from_airflow_conf()


def reset_settings() -> None:
    """Forget the cached settings (tests, or a process that changed its configuration)."""
    get_settings.cache_clear()
