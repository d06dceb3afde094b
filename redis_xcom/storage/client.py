"""The one place that builds Redis clients: one node, Redis Cluster or Sentinel, TLS, timeouts,
retry with backoff, reply parsing, packing.

The URL's scheme picks the kind (``redis`` ``rediss`` ``unix``: one node; ``redis+cluster``
``rediss+cluster``: RedisCluster from seed nodes; ``redis+sentinel`` ``rediss+sentinel``: the
master of a Sentinel service); ``valkey`` ``valkeys`` and their ``+cluster`` / ``+sentinel`` forms are
the same (config.SCHEME_ALIASES). ``redis_conn_id`` is first turned into such a URL
(redis_xcom.connection). Nothing here logs or raises a password.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from redis_xcom import connection
from redis_xcom.config import (
    SECTION,
    Settings,
    canonical_url,
    parse_option,
    split_url,
    url_hosts,
)
from redis_xcom.errors import ConfigError
from redis_xcom.redaction import decoded_name, redact_url, unencoded_userinfo
from redis_xcom.storage import errors, redispy_compat
from redis_xcom.storage.packer import COMMAND_PACKER
from redis_xcom.storage.topology import Client, Connection, connection_of, join_hosts

# Larger socket reads: fewer system calls and buffer copies for large values.
SOCKET_READ_SIZE = 256 * 1024
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
# TLS options that may be given as URL query parameters too (they win over [redis_xcom]'s).
TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs", "ssl_check_hostname")


# The query parameters redis-py takes as credentials, named exactly so (after percent-decoding).
_CREDENTIALS = ("username", "password")


@dataclass(frozen=True)
class Target:
    """A parsed URL of any scheme. repr shows no password."""

    scheme: str
    hosts: tuple[tuple[str, int], ...]
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)
    db: int = 0
    # Sentinel only: the monitored master's name.
    service: str = ""
    # Query parameters other than the TLS options (passed to redis-py for one node).
    query: tuple[tuple[str, str], ...] = ()
    tls: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def uses_tls(self) -> bool:
        return self.scheme.startswith("rediss")

    @property
    def kind(self) -> str:
        if self.scheme in CLUSTER_SCHEMES:
            return "cluster"
        if self.scheme in SENTINEL_SCHEMES:
            return "sentinel"
        return "node"


def _refuse_credential_lookalikes(query: list[tuple[str, str]], url_shown: str) -> None:
    """A name that reads as username or password without being exactly it (``PASSWORD``,
    ``%2570assword``) would reach redis-py as an unknown option: refused, naming it, never its value."""
    for name, _ in query:
        decoded = decoded_name(name)
        if decoded is not None and decoded.lower() in _CREDENTIALS and name not in _CREDENTIALS:
            raise ConfigError(
                f"[{SECTION}] url {url_shown!r}: query parameter {name!r} is not one the client takes; "
                f"write {decoded.lower()}= exactly (or put the credential in the URL's user information)"
            )


# One place parses hosts and ports: Settings checks them when it is built.
_hosts = url_hosts


def parse_url(url: str, settings: Settings | None = None) -> Target:
    """The URL's parts, with the TLS options merged from settings (a query parameter wins)."""
    shown = redact_url(url)
    if unencoded_userinfo(url):
        # Split where RFC 3986 says, such a URL would put part of the password in the host or path.
        raise ConfigError(
            f"[{SECTION}] url {shown!r}: the user, password or a query value holds an unencoded "
            "'/', '?', '#' or '@'; percent-encode them (%2F, %3F, %23, %40), e.g. with "
            "urllib.parse.quote(password, safe='')"
        )
    url = canonical_url(url)
    parts = split_url(url)
    scheme = parts.scheme
    userinfo, at, hostlist = parts.netloc.rpartition("@")
    username = password = None
    if at:
        user, colon, secret = userinfo.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    query = parse_qsl(parts.query, keep_blank_values=True)
    # Credentials as query parameters, as redis-py accepts them: taken out so that no client, repr
    # or check (doctor's "no password") sees them anywhere but as the password.
    credentials = {name: value for name, value in query if name in _CREDENTIALS}
    if credentials:
        username = username or credentials.get("username") or None
        password = password if password is not None else credentials.get("password")
        query = [(name, value) for name, value in query if name not in credentials]
    _refuse_credential_lookalikes(query, shown)
    tls: dict[str, Any] = {}
    if settings is not None:
        tls = {name: getattr(settings, name) for name in TLS_OPTIONS}
    for name, value in query:
        if name in TLS_OPTIONS:
            tls[name] = parse_option(name, value)
    if "ssl_cert_reqs" in tls and tls["ssl_cert_reqs"] not in ("required", "optional", "none"):
        raise ConfigError(
            f"[{SECTION}] ssl_cert_reqs must be one of required, optional, none; got {tls['ssl_cert_reqs']!r}"
        )
    other = tuple((name, value) for name, value in query if name not in TLS_OPTIONS)
    if scheme == "unix":
        return Target(scheme, (), username, password, query=other, tls=tls)
    hosts = _hosts(hostlist, shown)
    path = [p for p in parts.path.split("/") if p]
    service = ""
    if scheme in SENTINEL_SCHEMES:
        if not path:
            raise ConfigError(
                f"[{SECTION}] url {shown!r} names no Sentinel service: write "
                f"{scheme}://host:port[,host:port...]/<service_name>[/<db>]"
            )
        service, path = unquote(path[0]), path[1:]
    db_text = path[0] if path else dict(query).get("db", "0")
    try:
        db = int(db_text)
    except ValueError:
        raise ConfigError(f"[{SECTION}] url {shown!r}: the database {db_text!r} is not a number") from None
    if len(path) > 1 or (scheme not in SENTINEL_SCHEMES and scheme not in CLUSTER_SCHEMES and len(hosts) > 1):
        raise ConfigError(
            f"[{SECTION}] url {shown!r} is not understood: one node takes one host:port and /<db>; "
            "use redis+cluster:// or redis+sentinel:// for several hosts"
        )
    unknown = sorted({name for name, _ in other} - {"db"})
    if unknown and scheme in (*CLUSTER_SCHEMES, *SENTINEL_SCHEMES):
        # redis-py would ignore them here: say so rather than drop a setting silently.
        raise ConfigError(
            f"[{SECTION}] url {shown!r}: query parameters {', '.join(unknown)} are not understood with "
            f"{scheme}://; only {', '.join(TLS_OPTIONS)} are (the other options go in [{SECTION}])"
        )
    if scheme in CLUSTER_SCHEMES and db != 0:
        raise ConfigError(
            f"[{SECTION}] url {shown!r} selects database {db}: Redis Cluster has database 0 only; "
            "drop the /<db> or write /0"
        )
    return Target(scheme, hosts, username, password, db, service, other, tls)


def _tls_kwargs(target: Target) -> dict[str, Any]:
    """redis-py's ssl_* arguments for a rediss* target (none otherwise: plain connections refuse them)."""
    if not target.uses_tls:
        return {}
    tls = target.tls
    reqs = tls.get("ssl_cert_reqs") or "required"
    kwargs: dict[str, Any] = {
        "ssl_cert_reqs": reqs,
        # Python refuses to check a host name on a certificate it does not verify.
        "ssl_check_hostname": bool(tls.get("ssl_check_hostname", True)) and reqs != "none",
    }
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        if tls.get(name):
            kwargs[name] = tls[name]
    return kwargs


def _retry(settings: Settings) -> Retry:
    return Retry(
        redispy_compat.JITTER_BACKOFF(cap=settings.retry_backoff_cap, base=settings.retry_backoff_base),
        retries=settings.retry_attempts,
        supported_errors=errors.RETRIED,
    )


def _node_kwargs(settings: Settings) -> dict[str, Any]:
    """What every connection to a Redis node (one node, a Sentinel's master) is built with."""
    return {
        "socket_connect_timeout": settings.socket_connect_timeout,
        "socket_timeout": settings.socket_timeout,
        "retry": _retry(settings),
        # redis-py before 6 retries only the errors named here too (Retry's list alone is ignored).
        "retry_on_error": list(errors.RETRIED),
        "health_check_interval": 30,
        "client_name": "redis-xcom",
        "socket_read_size": SOCKET_READ_SIZE,
        "command_packer": COMMAND_PACKER,
    }


def _single_client(url: str, target: Target, settings: Settings) -> redis.Redis:
    # redis-py reads user, password, db and its own query parameters; the TLS ones are ours.
    plain_url = url.partition("?")[0] + (f"?{urlencode(target.query)}" if target.query else "")
    # The URL's user information wins in from_url; these are the query string's credentials.
    credentials = {"username": target.username, "password": target.password}
    return redis.Redis.from_url(plain_url, **credentials, **_node_kwargs(settings), **_tls_kwargs(target))


def _cluster_client(target: Target, settings: Settings) -> RedisCluster:
    """A RedisCluster discovering the cluster from the seed nodes (the cluster engineer tunes this)."""
    kwargs: dict[str, Any] = {
        "startup_nodes": [ClusterNode(host, port) for host, port in target.hosts],
        "username": target.username,
        "password": target.password,
        "socket_connect_timeout": settings.socket_connect_timeout,
        "socket_timeout": settings.socket_timeout,
        "retry": _retry(settings),
        "client_name": "redis-xcom",
        "socket_read_size": SOCKET_READ_SIZE,
        **_tls_kwargs(target),
    }
    if target.uses_tls:
        kwargs["ssl"] = True
    if redispy_compat.cluster_retries_apart():
        kwargs["cluster_error_retry_attempts"] = settings.retry_attempts
    cluster = RedisCluster(**kwargs)
    # Without our packer a large value would be joined (copied) before it is sent.
    redispy_compat.pack_cluster_with(cluster, COMMAND_PACKER)
    return cluster


def _sentinel_client(target: Target, settings: Settings) -> redis.Redis:
    """The master of a Sentinel service: redis-py asks the Sentinels (skipping any that is down)
    for its address on every new connection, so a failover is followed by reconnecting."""
    tls = _tls_kwargs(target)
    if tls:
        tls["ssl"] = True
    sentinel_kwargs: dict[str, Any] = {
        "socket_connect_timeout": settings.socket_connect_timeout,
        "socket_timeout": settings.socket_timeout,
        "username": settings.sentinel_username or None,
        "password": settings.sentinel_password or None,
        # Each Sentinel is asked once per discovery (one that is down is skipped at once); the
        # master connection's own Retry repeats the whole discovery.
        "retry": Retry(NoBackoff(), 0),
        **tls,
    }
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_kwargs)
    return sentinel.master_for(
        target.service,
        db=target.db,
        username=target.username,
        password=target.password,
        **_node_kwargs(settings),
        **tls,
    )


def build_connection(settings: Settings) -> Connection:
    """The connection for settings.url (or redis_conn_id), its topology chosen here once from the
    URL's scheme; redis-py's pools reconnect by themselves and reset after a fork."""
    settings = connection.resolve(settings)
    url = canonical_url(settings.url)
    target = parse_url(url, settings)
    if target.kind == "cluster":
        return connection_of(_cluster_client(target, settings), "cluster")
    if target.kind == "sentinel":
        return connection_of(_sentinel_client(target, settings), "sentinel")
    return connection_of(_single_client(url, target, settings), "node")


def build_client(settings: Settings) -> Client:
    """The redis-py client of build_connection, for callers that send commands of their own
    (the demo, diagnosis, tests)."""
    return build_connection(settings).client


def endpoint(url: str) -> str:
    """The node(s) a URL names, without user or password: host:port, the socket path, the seed
    nodes of a cluster, or a Sentinel service and its Sentinels."""
    parts = split_url(canonical_url(url))
    if parts.scheme == "unix":
        return parts.path or "?"
    hostlist = parts.netloc.rpartition("@")[2]
    try:
        hosts = _hosts(hostlist, "")
    except ConfigError:
        return hostlist or "?"
    if parts.scheme in CLUSTER_SCHEMES:
        return f"{join_hosts(hosts)} (Redis Cluster)"
    if parts.scheme in SENTINEL_SCHEMES:
        service = unquote(next((p for p in parts.path.split("/") if p), "?"))
        return f"the master of Sentinel service {service!r} via Sentinels {join_hosts(hosts)}"
    return join_hosts(hosts)


def describe(client: Client | Connection) -> str:
    """The node(s) a client of build_client talks to, for error messages (never credentials)."""
    return connection_of(client).where
