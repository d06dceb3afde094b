"""What Airflow's providers manager reads (``airflow providers list``, ``airflow config list``).

OPTIONS is the one table of the ``[redis_xcom]`` options: config.py takes each default and type
from it, and get_provider_info() publishes it as the provider's ``config`` section.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from redis_xcom.version import __version__

SECTION = "redis_xcom"
# Airflow's provider schema names option types this way.
_TYPE_NAMES: dict[type, str] = {str: "string", int: "integer", float: "float", bool: "boolean"}


@dataclass(frozen=True)
class Option:
    """One [redis_xcom] option: its Python type, default, an example and what it does."""

    name: str
    kind: type
    default: str | int | float | bool
    description: str
    example: str | None = None
    # Airflow masks sensitive options in `airflow config list` and in its logs.
    sensitive: bool = False

    def provider_entry(self) -> dict[str, Any]:
        default = str(self.default) if self.default != "" else None
        return {
            "description": self.description,
            "version_added": "1.0.0",
            "type": _TYPE_NAMES[self.kind],
            "example": self.example,
            "default": default,
            "sensitive": self.sensitive,
        }


DEFAULT_URL = "redis://localhost:6379/0"

OPTIONS: tuple[Option, ...] = (
    Option(
        "url",
        str,
        "",
        "Redis to use: redis://, rediss:// (TLS) or unix://; redis+cluster:// or rediss+cluster:// "
        "with comma-separated seed nodes; redis+sentinel:// or rediss+sentinel:// with the Sentinels "
        "and /<service_name>[/<db>]. User, password and db as redis-py reads them. Empty: "
        f"redis_conn_id if set, else {DEFAULT_URL}. Never set together with redis_conn_id.",
        example="redis+cluster://app:password@10.0.0.1:6379,10.0.0.2:6379/0",
        sensitive=True,
    ),
    Option(
        "redis_conn_id",
        str,
        "",
        "An Airflow connection of type redis to read the Redis from, instead of url (host, port, "
        "login, password; extras db, ssl, ssl_* as apache-airflow-providers-redis reads them, and "
        "cluster, sentinel_service, sentinel_username, sentinel_password).",
        example="redis_xcom",
    ),
    Option(
        "key_prefix",
        str,
        "xcom",
        "First part of every key; letters, digits and _ . : / -. Use one per Airflow deployment "
        "sharing a Redis.",
        example="prod-airflow:xcom",
    ),
    Option("ttl", int, 7 * 24 * 3600, "Seconds each value lives in Redis (default 7 days).", "1209600"),
    Option("socket_connect_timeout", float, 5.0, "Seconds to wait for a TCP connection.", "2.0"),
    Option("socket_timeout", float, 5.0, "Seconds to wait for a reply.", "10.0"),
    Option(
        "retry_attempts",
        int,
        3,
        "Retries of a command after a transient error (connection reset, timeout, LOADING, a "
        "failover), with exponential backoff and jitter.",
        "5",
    ),
    Option("retry_backoff_base", float, 0.1, "First backoff between retries, in seconds.", "0.2"),
    Option("retry_backoff_cap", float, 2.0, "Longest backoff between retries, in seconds.", "5.0"),
    Option(
        "compression",
        str,
        "none",
        "none, zlib, lz4 (extra [lz4]) or zstd (extra [zstd]). Every value records how it was "
        "stored, so changing this never requires flushing Redis.",
        "zstd",
    ),
    Option(
        "compression_threshold",
        int,
        64 * 1024,
        "Values smaller than this many bytes are never compressed.",
        "131072",
    ),
    Option(
        "max_value_bytes",
        int,
        1024 * 1024 * 1024,
        "A value that serializes to more bytes is refused before anything is written.",
        "268435456",
    ),
    Option(
        "inline_max_bytes",
        int,
        0,
        "Hybrid mode: a value whose JSON text is at most this many bytes, and that Airflow's default "
        "backend keeps exactly (plain JSON: no tuples, bytes, Decimal, datetime, ...), stays in the "
        "metadata DB row as Airflow's default backend stores it, so Airflow's UI, REST API and DAG run "
        "results show it; everything else goes to Redis. 0: everything goes to Redis.",
        "256",
    ),
    Option(
        "chunk_bytes",
        int,
        256 * 1024 * 1024,
        "Values above this many bytes (or above the server's proto-max-bulk-len, if lower) are "
        "stored as a Redis list of chunks at the same key.",
        "67108864",
    ),
    Option(
        "ssl_ca_certs",
        str,
        "",
        "rediss* only: the CA bundle (PEM file) that signs the server's certificate.",
        "/etc/ssl/redis/ca.pem",
    ),
    Option(
        "ssl_certfile",
        str,
        "",
        "rediss* only: a client certificate (PEM file), for servers that require one.",
        "/etc/ssl/redis/client.crt",
    ),
    Option(
        "ssl_keyfile",
        str,
        "",
        "rediss* only: the client certificate's private key (PEM file).",
        "/etc/ssl/redis/client.key",
    ),
    Option(
        "ssl_cert_reqs",
        str,
        "required",
        "rediss* only: required, optional or none: whether the server's certificate must verify.",
        "required",
    ),
    Option(
        "ssl_check_hostname",
        bool,
        True,
        "rediss* only: check that the server's certificate names the host connected to.",
        "True",
    ),
    Option(
        "sentinel_username",
        str,
        "",
        "redis+sentinel:// only: the Sentinels' own user (the URL's is the Redis master's).",
        "sentinel-user",
    ),
    Option(
        "sentinel_password",
        str,
        "",
        "redis+sentinel:// only: the Sentinels' own password (the URL's is the Redis master's).",
        sensitive=True,
    ),
    Option(
        "wait_replicas",
        int,
        0,
        "After each push, wait until this many replicas acknowledge it (WAIT), so that a failover "
        "right after the push loses nothing; the push fails when they do not in wait_timeout_ms. "
        "0: do not wait (replication stays asynchronous).",
        "1",
    ),
    Option(
        "wait_timeout_ms",
        int,
        1000,
        "How long a push waits for wait_replicas acknowledgements, in milliseconds.",
        "2000",
    ),
    Option(
        "lua_scripts",
        bool,
        True,
        "Write small values and their run index with one EVALSHA of a cached Lua script. false: "
        "plain commands in MULTI/EXEC instead (one round trip too; Redis 7.0+ or Valkey), for an ACL "
        "that grants no scripting. A server refusing EVALSHA/EVAL switches the backend to it anyway.",
        "false",
    ),
    Option(
        "ui_preview_bytes",
        int,
        64 * 1024,
        "The UI plugin shows at most this many bytes of a value's preview, and says it truncated it.",
        "16384",
    ),
    Option(
        "ui_max_decode_bytes",
        int,
        64 * 1024 * 1024,
        "The UI plugin does not decode a value stored in more bytes than this unless asked, so that "
        "a huge XCom cannot exhaust the API server's memory.",
        "16777216",
    ),
    Option(
        "ui_sandbox_memory_mb",
        int,
        1024,
        "The UI plugin decodes and renders each value in a worker process, never in the API server: "
        "the memory one worker may allocate, in MiB (RLIMIT_DATA; its address space, RLIMIT_AS, gets "
        "1 GiB more for the libraries' code); at least 64. A value needing more is shown as too costly "
        "to display.",
        "2048",
    ),
    Option(
        "ui_sandbox_cpu_seconds",
        int,
        5,
        "CPU seconds a UI worker may spend on one value (RLIMIT_CPU); past it the worker is stopped "
        "and the value is shown as too costly to display.",
        "10",
    ),
    Option(
        "ui_sandbox_timeout_seconds",
        float,
        8.0,
        "Seconds the API server waits for a UI worker's answer on one value (and for a free worker) "
        "before it kills the worker and shows the value as too costly to display.",
        "15.0",
    ),
    Option(
        "ui_sandbox_max_output_bytes",
        int,
        64 * 1024 * 1024,
        "The most bytes the API server reads back from a UI worker: a preview or a download (the "
        "whole value as JSON) larger than this is shown as too costly to display.",
        "268435456",
    ),
    Option(
        "ui_sandbox_workers",
        int,
        2,
        "UI worker processes per API server process, started when the plugin first shows a value and "
        "reused; one that dies or breaches a limit is replaced.",
        "4",
    ),
)

OPTIONS_BY_NAME: dict[str, Option] = {option.name: option for option in OPTIONS}


def get_provider_info() -> dict[str, Any]:
    """The provider's description, read by Airflow's providers manager through the entry point."""
    return {
        "package-name": "redis-xcom",
        "name": "Redis XCom",
        "description": "A fast, safe Redis-backed XCom backend for Apache Airflow 3.",
        "versions": [__version__],
        # `airflow redis-xcom <command>` on Airflow 3.2+ (earlier versions ignore the field).
        "cli": ["redis_xcom.ops.airflow_cli.get_cli_commands"],
        "plugins": [{"name": "redis_xcom", "plugin-class": "redis_xcom.ui.plugin.RedisXComPlugin"}],
        "config": {
            SECTION: {
                "description": "redis-xcom: the Redis-backed XCom backend "
                "([core] xcom_backend = redis_xcom.ExclusiveRedisXCom).",
                "options": {option.name: option.provider_entry() for option in OPTIONS},
            }
        },
    }
