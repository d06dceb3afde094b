"""The [redis_xcom] settings, read once per process into a typed, frozen object.

Defaults, types and descriptions come from the one table of options in provider_info.py.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import SplitResult, urlsplit

from redis_xcom.airflow_compat import airflow_conf
from redis_xcom.errors import ConfigError
from redis_xcom.provider_info import DEFAULT_URL, OPTIONS, OPTIONS_BY_NAME, SECTION
from redis_xcom.redaction import redact_url, unencoded_userinfo

_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_.:/-]+")
SCHEMES = (
    "redis",
    "rediss",
    "unix",
    "redis+cluster",
    "rediss+cluster",
    "redis+sentinel",
    "rediss+sentinel",
)
# Valkey's clients and the managed services' consoles write valkey:// and valkeys://: the same
# protocol, read as the redis scheme of the same form.
SCHEME_ALIASES = {
    "valkey": "redis",
    "valkeys": "rediss",
    "valkey+cluster": "redis+cluster",
    "valkeys+cluster": "rediss+cluster",
    "valkey+sentinel": "redis+sentinel",
    "valkeys+sentinel": "rediss+sentinel",
}
# How a URL is written, for the messages about a URL that is not.
URL_FORMS = (
    "redis://[[user]:password@]host[:port][/db] (rediss:// for TLS, unix:///path/to/redis.sock, "
    "redis+cluster://host:port[,host:port...], redis+sentinel://host:port[,host:port...]/<service>)"
)
URL_EXAMPLE = "redis://:password@redis.example.com:6379/0"
DEFAULT_PORT = 6379
_COMPRESSIONS = ("none", "zlib", "lz4", "zstd")
_CERT_REQS = ("required", "optional", "none")
_TRUE = {"true", "t", "yes", "y", "1", "on"}
_FALSE = {"false", "f", "no", "n", "0", "off"}
# The UI sandbox's limits (redis_xcom/ui/sandbox.py): none may be 0 or negative.
_SANDBOX_LIMITS = (
    "ui_sandbox_memory_mb",
    "ui_sandbox_cpu_seconds",
    "ui_sandbox_timeout_seconds",
    "ui_sandbox_max_output_bytes",
    "ui_sandbox_workers",
)
MIN_SANDBOX_MEMORY_MB = 64
# Options whose value is never shown, whoever prints the settings.
_SECRET_OPTIONS = frozenset({"sentinel_password"})


def canonical_url(url: str) -> str:
    """url with a valkey scheme replaced by its redis one (any other URL as it is)."""
    scheme, sep, rest = url.partition("://")
    alias = SCHEME_ALIASES.get(scheme.lower()) if sep else None
    return f"{alias}://{rest}" if alias else url


def _host_port(text: str, url_shown: str) -> tuple[str, int]:
    """One ``host[:port]`` (``[v6]:port`` too) of a URL: a ConfigError saying what is wrong and how
    to write it when the host or the port cannot be one."""
    how = f"write host:port, e.g. {URL_EXAMPLE}"
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ConfigError(
                f"[{SECTION}] url {url_shown!r}: {text!r} is not an IPv6 address in brackets; "
                "write [address]:port, e.g. redis://[::1]:6379/0"
            )
        port_text = rest[1:] if rest else ""
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise ConfigError(
                f"[{SECTION}] url {url_shown!r}: {host!r} is not an IPv6 address; {how}"
            ) from None
    else:
        host, _, port_text = text.rpartition(":") if ":" in text else (text, "", "")
        if not host:
            raise ConfigError(f"[{SECTION}] url {url_shown!r}: the host is empty in {text!r}; {how}")
        if not all(c.isalnum() or c in "-._" for c in host) or host[0] in "-." or ".." in host:
            raise ConfigError(
                f"[{SECTION}] url {url_shown!r}: the host {host!r} is not a host name or IP address "
                f"(letters, digits, - . _; an IPv6 address goes in brackets); {how}"
            )
    if not port_text:  # "host" or "host:", as redis-py reads them too
        return host, DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(
            f"[{SECTION}] url {url_shown!r}: the port {port_text!r} of {text!r} is not a number from 1 "
            f"to 65535; {how} (6379 is Redis's default)"
        )
    return host, int(port_text)


def url_hosts(hostlist: str, url_shown: str) -> tuple[tuple[str, int], ...]:
    """The comma-separated ``host:port`` list of a URL's network location (localhost:6379 if empty)."""
    if not hostlist:
        return (("localhost", DEFAULT_PORT),)
    return tuple(_host_port(h, url_shown) for h in hostlist.split(","))


def _default(name: str) -> Any:
    """A field whose default is the table's (provider_info.OPTIONS)."""
    return field(default=OPTIONS_BY_NAME[name].default)


@dataclass(frozen=True)
class Settings:
    """Every option of [redis_xcom]; provider_info.OPTIONS documents each (and generates the docs' table)."""

    url: str = _default("url")
    redis_conn_id: str = _default("redis_conn_id")
    key_prefix: str = _default("key_prefix")
    ttl: int = _default("ttl")
    socket_connect_timeout: float = _default("socket_connect_timeout")
    socket_timeout: float = _default("socket_timeout")
    retry_attempts: int = _default("retry_attempts")
    retry_backoff_base: float = _default("retry_backoff_base")
    retry_backoff_cap: float = _default("retry_backoff_cap")
    compression: str = _default("compression")
    compression_threshold: int = _default("compression_threshold")
    max_value_bytes: int = _default("max_value_bytes")
    inline_max_bytes: int = _default("inline_max_bytes")
    # Lowered automatically to the server's proto-max-bulk-len when that is smaller and readable.
    chunk_bytes: int = _default("chunk_bytes")
    ssl_ca_certs: str = _default("ssl_ca_certs")
    ssl_certfile: str = _default("ssl_certfile")
    ssl_keyfile: str = _default("ssl_keyfile")
    ssl_cert_reqs: str = _default("ssl_cert_reqs")
    ssl_check_hostname: bool = _default("ssl_check_hostname")
    sentinel_username: str = _default("sentinel_username")
    sentinel_password: str = _default("sentinel_password")
    wait_replicas: int = _default("wait_replicas")
    wait_timeout_ms: int = _default("wait_timeout_ms")
    lua_scripts: bool = _default("lua_scripts")
    ui_preview_bytes: int = _default("ui_preview_bytes")
    ui_max_decode_bytes: int = _default("ui_max_decode_bytes")
    ui_sandbox_memory_mb: int = _default("ui_sandbox_memory_mb")
    ui_sandbox_cpu_seconds: int = _default("ui_sandbox_cpu_seconds")
    ui_sandbox_timeout_seconds: float = _default("ui_sandbox_timeout_seconds")
    ui_sandbox_max_output_bytes: int = _default("ui_sandbox_max_output_bytes")
    ui_sandbox_workers: int = _default("ui_sandbox_workers")

    def __post_init__(self) -> None:
        if self.url and self.redis_conn_id:
            raise ConfigError(
                f"[{SECTION}] url and redis_conn_id are both set (url={redact_url(self.url)!r}, "
                f"redis_conn_id={self.redis_conn_id!r}); set only one of them "
                f"(AIRFLOW__REDIS_XCOM__URL or AIRFLOW__REDIS_XCOM__REDIS_CONN_ID)"
            )
        if not self.url and not self.redis_conn_id:
            object.__setattr__(self, "url", DEFAULT_URL)
        if self.url:
            object.__setattr__(self, "url", canonical_url(self.url))
            shown = redact_url(self.url)
            try:
                parts = split_url(self.url)
            except ValueError as exc:  # a bracketed host that is no IPv6 address, an invalid port
                raise ConfigError(
                    f"[{SECTION}] url {shown!r} is not a URL ({exc}); write {URL_FORMS}"
                ) from None
            if parts.scheme not in SCHEMES or "://" not in self.url:
                accepted = ", ".join(s + "://" for s in (*SCHEMES, *SCHEME_ALIASES))
                hint = f"write {URL_FORMS}"
                if "://" not in self.url:
                    hint = f"the scheme is missing: write redis://{shown} (or rediss:// for TLS)"
                raise ConfigError(f"[{SECTION}] url must start with one of {accepted}; got {shown!r}: {hint}")
            if parts.scheme != "unix" and not unencoded_userinfo(self.url):
                # Every entry point (tasks, the UI, the ops commands) learns of a bad host or port
                # here, not at the first connection. (A password holding an unencoded '/' or '@' is
                # reported by storage.client.parse_url, which says how to encode it.)
                url_hosts(parts.netloc.rpartition("@")[2], shown)
        if "{" in self.key_prefix or "}" in self.key_prefix:
            # The run's {hash tag} keeps its keys in one cluster slot; a brace in the prefix would move it.
            raise ConfigError(
                f"[{SECTION}] key_prefix {self.key_prefix!r} holds a brace: braces make a Redis Cluster "
                "hash tag, and the run's own tag must be the key's first one; remove them"
            )
        if not _PREFIX_PATTERN.fullmatch(self.key_prefix):
            # Glob characters would break pattern clears.
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
        if self.inline_max_bytes < 0:
            raise ConfigError(
                f"[{SECTION}] inline_max_bytes must be 0 (every value to Redis) or a positive number of "
                f"bytes of JSON text, got {self.inline_max_bytes}"
            )
        if self.chunk_bytes < 1024:
            raise ConfigError(f"[{SECTION}] chunk_bytes must be at least 1024, got {self.chunk_bytes}")
        if self.ssl_cert_reqs not in _CERT_REQS:
            raise ConfigError(
                f"[{SECTION}] ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, "
                f"got {self.ssl_cert_reqs!r}"
            )
        if self.wait_replicas < 0 or self.wait_timeout_ms < 0:
            raise ConfigError(
                f"[{SECTION}] wait_replicas and wait_timeout_ms must be >= 0, got "
                f"{self.wait_replicas} and {self.wait_timeout_ms}"
            )
        if self.wait_replicas and not 0 < self.wait_timeout_ms < self.socket_timeout * 1000:
            # WAIT 0 blocks forever, and a WAIT longer than the socket timeout is cut off and retried whole.
            raise ConfigError(
                f"[{SECTION}] wait_timeout_ms must be above 0 and below socket_timeout "
                f"({self.socket_timeout * 1000:g} ms) when wait_replicas is set, got {self.wait_timeout_ms}"
            )
        if self.ui_preview_bytes <= 0 or self.ui_max_decode_bytes <= 0:
            raise ConfigError(f"[{SECTION}] ui_preview_bytes and ui_max_decode_bytes must be positive")
        for name in _SANDBOX_LIMITS:
            if getattr(self, name) <= 0:
                raise ConfigError(f"[{SECTION}] {name} must be positive, got {getattr(self, name)}")
        if self.ui_sandbox_memory_mb < MIN_SANDBOX_MEMORY_MB:
            # Python, the codec and numpy take about 30 MiB before any value: a worker could not start.
            raise ConfigError(
                f"[{SECTION}] ui_sandbox_memory_mb must be at least {MIN_SANDBOX_MEMORY_MB}, "
                f"got {self.ui_sandbox_memory_mb}"
            )
        if self.ui_sandbox_max_output_bytes < self.ui_preview_bytes:
            # A preview is cut at ui_preview_bytes: a smaller output bound would refuse every large one.
            raise ConfigError(
                f"[{SECTION}] ui_sandbox_max_output_bytes ({self.ui_sandbox_max_output_bytes}) must be at "
                f"least ui_preview_bytes ({self.ui_preview_bytes})"
            )

    def __repr__(self) -> str:
        return f"Settings({', '.join(f'{f.name}={self.shown(f.name)}' for f in fields(self))})"

    def shown(self, name: str) -> str:
        """The option's value as it may be logged: passwords replaced by ``***``."""
        value = getattr(self, name)
        if name == "url":
            return repr(redact_url(value))
        if name in _SECRET_OPTIONS and value:
            return "'***'"
        return repr(value)


def parse_option(name: str, raw: str) -> Any:
    """A raw airflow.cfg / environment string as the option's type, or a ConfigError naming it."""
    kind = OPTIONS_BY_NAME[name].kind
    text = raw.strip()
    if kind is bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
    else:
        try:
            return kind(text)
        except ValueError:
            pass
    shown = "***" if OPTIONS_BY_NAME[name].sensitive else repr(raw)
    raise ConfigError(
        f"[{SECTION}] {name} must be {kind.__name__}, got {shown} "
        f"(set it in airflow.cfg or AIRFLOW__REDIS_XCOM__{name.upper()})"
    )


def _from_airflow_conf() -> Settings:
    conf = airflow_conf()
    values: dict[str, Any] = {}
    for option in OPTIONS:
        raw = conf.get(SECTION, option.name, fallback=None)
        if raw is None or raw == "":
            continue
        values[option.name] = parse_option(option.name, raw)
    return Settings(**values)


@functools.cache
def get_settings() -> Settings:
    """The process's settings, read from airflow.cfg / AIRFLOW__REDIS_XCOM__* on first use."""
    return _from_airflow_conf()


def reset_settings() -> None:
    """Forget the cached settings (tests, or a process that changed its configuration)."""
    get_settings.cache_clear()


def split_url(url: str) -> SplitResult:
    """urlsplit, but a list of hosts (cluster or Sentinel seeds) is kept whole as the netloc: some
    Pythons (Debian's 3.11.2) refuse a list holding a bracketed IPv6 host; url_hosts checks each."""
    try:
        return urlsplit(url)
    except ValueError:
        scheme, sep, rest = url.partition("://")
        end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
        if not sep or "," not in rest[:end]:
            raise
        return urlsplit(f"{scheme}://seeds{rest[end:]}")._replace(netloc=rest[:end])
