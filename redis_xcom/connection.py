"""redis_conn_id: an Airflow connection of type redis (or valkey) turned into the URL of [redis_xcom] url.

Fields and extras are those apache-airflow-providers-redis reads (host, port, login, password;
db, ssl, ssl_*), plus ours: ``cluster`` (host may list ``host:port`` seeds), ``sentinel_service``
(host lists the Sentinels) and ``sentinel_username`` / ``sentinel_password``. The provider package
is not needed. Nothing here logs or raises a password.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import quote, urlencode

from redis_xcom import airflow_compat
from redis_xcom.config import SECTION, Settings
from redis_xcom.errors import ConfigError

_TRUE = {"true", "t", "yes", "y", "1", "on"}
# Connection types read as redis, and whether they mean TLS: a connection given as a URI
# (AIRFLOW_CONN_X='valkeys://...') has its scheme as its type.
_CONN_TYPES = {"redis": False, "rediss": True, "valkey": False, "valkeys": True}
# Extras passed on as URL query parameters (client.TLS_OPTIONS).
_TLS_EXTRAS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")


def _flag(value: Any) -> bool:
    return value is True or str(value).strip().lower() in _TRUE


def _secret(value: Any) -> str:
    """The provider's reading of a password: empty, 'none' and 'false' mean no password."""
    text = "" if value is None else str(value)
    return "" if text.lower() in ("none", "false") else text


def connection_url(conn: Any) -> tuple[str, str, str]:
    """(url, sentinel_username, sentinel_password) for an Airflow Connection object."""
    conn_type = (getattr(conn, "conn_type", None) or "redis").lower()
    if conn_type not in _CONN_TYPES:
        raise ConfigError(
            f"[{SECTION}] redis_conn_id {conn.conn_id!r} is a connection of type {conn_type!r}; "
            "it must be of type redis (or valkey)"
        )
    extra: dict[str, Any] = dict(conn.extra_dejson or {})
    hosts = [h.strip() for h in str(conn.host or "localhost").split(",") if h.strip()]
    if conn.port and len(hosts) == 1 and ":" not in hosts[0].rpartition("]")[2]:
        hosts = [f"{hosts[0]}:{conn.port}"]
    scheme = "rediss" if _CONN_TYPES[conn_type] or _flag(extra.get("ssl", False)) else "redis"
    service = str(extra.get("sentinel_service") or "")
    if service and _flag(extra.get("cluster", False)):
        raise ConfigError(
            f"[{SECTION}] redis_conn_id {conn.conn_id!r} sets both extras cluster and "
            "sentinel_service; keep the one that describes the deployment"
        )
    db = str(extra.get("db", 0) or 0)
    if service:
        scheme += "+sentinel"
        path = f"/{quote(service, safe='')}/{db}"
    elif _flag(extra.get("cluster", False)):
        scheme += "+cluster"
        path = "/0"
    else:
        path = f"/{db}"
    login = quote(str(conn.login), safe="") if conn.login else ""
    password = _secret(conn.password)
    userinfo = f"{login}:{quote(password, safe='')}@" if password else (f"{login}@" if login else "")
    query = {name: str(extra[name]) for name in _TLS_EXTRAS if extra.get(name) not in (None, "")}
    url = f"{scheme}://{userinfo}{','.join(hosts)}{path}"
    if query:
        url += "?" + urlencode(query)
    return url, str(extra.get("sentinel_username") or ""), _secret(extra.get("sentinel_password"))


def resolve(settings: Settings) -> Settings:
    """settings with url set: as configured, or read from the Airflow connection redis_conn_id."""
    if settings.url:
        return settings
    conn_id = settings.redis_conn_id
    try:
        conn = airflow_compat.get_connection(conn_id)
    except Exception as exc:
        # Not found, or a secrets backend that failed: the task cannot reach Redis either way.
        raise ConfigError(
            f"[{SECTION}] redis_conn_id {conn_id!r} could not be read ({type(exc).__name__}: {exc}). "
            f"Define it (airflow connections add, AIRFLOW_CONN_{conn_id.upper()}, or a secrets "
            "backend) as a connection of type redis"
        ) from exc
    url, sentinel_username, sentinel_password = connection_url(conn)
    return dataclasses.replace(
        settings,
        url=url,
        redis_conn_id="",
        sentinel_username=sentinel_username or settings.sentinel_username,
        sentinel_password=sentinel_password or settings.sentinel_password,
    )
