"""The client factory for every URL scheme, TLS options and redis_conn_id: what each client is built
with, and that no password reaches a repr, an error or a description. No server needed."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis
from redis.sentinel import SentinelConnectionPool

from redis_xcom.config import Settings, get_settings
from redis_xcom.connection import resolve
from redis_xcom.errors import ConfigError
from redis_xcom.storage import client
from redis_xcom.storage.client import build_client, describe, endpoint, parse_url
from redis_xcom.storage.errors import RETRIED as RETRIED_ERRORS
from redis_xcom.storage.store import RedisStore

SECRET = "s3cr3t-pw"


class _RecordedCluster:
    """Stands in for RedisCluster, whose constructor connects to the seeds at once."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs


def _cluster_kwargs(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> dict[str, Any]:
    monkeypatch.setattr(client, "RedisCluster", _RecordedCluster)
    built = build_client(settings)
    assert isinstance(built, _RecordedCluster)
    return built.kwargs


def test_cluster_url_seeds_credentials_timeouts_and_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        url=f"redis+cluster://app:{SECRET}@10.0.0.1:7000,10.0.0.2,[::1]:7002/0",
        socket_connect_timeout=1.5,
        socket_timeout=2.5,
        retry_attempts=4,
    )
    kwargs = _cluster_kwargs(monkeypatch, settings)
    assert [(n.host, n.port) for n in kwargs["startup_nodes"]] == [
        ("10.0.0.1", 7000),
        ("10.0.0.2", 6379),
        ("::1", 7002),
    ]
    assert (kwargs["username"], kwargs["password"]) == ("app", SECRET)
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1.5, 2.5)
    assert kwargs["retry"]._retries == 4
    assert "ssl" not in kwargs and "db" not in kwargs
    assert endpoint(settings.url) == "10.0.0.1:7000,10.0.0.2:6379,::1:7002 (Redis Cluster)"


def test_cluster_over_tls_takes_the_tls_options(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(
        url="rediss+cluster://c1:7000,c2:7000?ssl_check_hostname=false", ssl_ca_certs="/ca.pem"
    )
    kwargs = _cluster_kwargs(monkeypatch, settings)
    assert kwargs["ssl"] is True
    assert (kwargs["ssl_ca_certs"], kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"]) == (
        "/ca.pem",
        "required",
        False,
    )


def test_cluster_refuses_a_database_other_than_0() -> None:
    with pytest.raises(ConfigError, match="database 0 only") as info:
        build_client(Settings(url=f"redis+cluster://app:{SECRET}@c1:7000/2"))
    assert SECRET not in str(info.value)


def test_sentinel_url_master_credentials_and_sentinel_credentials_apart() -> None:
    settings = Settings(
        url=f"redis+sentinel://app:{SECRET}@s1:26379,s2,s3:26380/mymaster/3",
        sentinel_username="sentinel-user",
        sentinel_password="sentinel-pw",
        socket_timeout=2.5,
        retry_attempts=2,
    )
    built = build_client(settings)
    assert isinstance(built, redis.Redis)
    pool = built.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    master = pool.connection_kwargs
    assert (master["username"], master["password"], master["db"]) == ("app", SECRET, 3)
    assert master["retry"]._retries == 2 and set(RETRIED_ERRORS) <= set(master["retry_on_error"])
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(s["host"], s["port"]) for s in sentinels] == [("s1", 26379), ("s2", 6379), ("s3", 26380)]
    assert {(s["username"], s["password"], s["socket_timeout"]) for s in sentinels} == {
        ("sentinel-user", "sentinel-pw", 2.5)
    }
    shown = describe(built)
    assert shown == "the master of Sentinel service 'mymaster' via Sentinels s1:26379,s2:6379,s3:26380"
    assert shown == endpoint(settings.url)
    for text in (repr(built), repr(pool), shown, repr(RedisStore(built)), repr(settings)):
        assert SECRET not in text and "sentinel-pw" not in text


def test_sentinel_over_tls_uses_tls_to_the_sentinels_and_the_master() -> None:
    built = build_client(
        Settings(url="rediss+sentinel://s1:26379/mymaster", ssl_ca_certs="/ca.pem", ssl_cert_reqs="optional")
    )
    pool = built.connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    assert (pool.connection_kwargs["ssl_ca_certs"], pool.connection_kwargs["ssl_cert_reqs"]) == (
        "/ca.pem",
        "optional",
    )
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool
    assert sentinel.connection_class is redis.SSLConnection
    assert sentinel.connection_kwargs["ssl_ca_certs"] == "/ca.pem"


def test_sentinel_url_without_a_service_is_refused() -> None:
    with pytest.raises(ConfigError, match="names no Sentinel service"):
        build_client(Settings(url="redis+sentinel://s1:26379"))


def test_tls_options_from_settings_and_url_query_the_query_wins() -> None:
    settings = Settings(
        url="rediss://cache:6390/1?ssl_certfile=/url.crt&ssl_cert_reqs=optional&health_check_interval=7",
        ssl_ca_certs="/ca.pem",
        ssl_certfile="/settings.crt",
        ssl_keyfile="/client.key",
    )
    kwargs = build_client(settings).connection_pool.connection_kwargs
    assert kwargs["ssl_ca_certs"] == "/ca.pem"
    assert kwargs["ssl_certfile"] == "/url.crt"
    assert kwargs["ssl_keyfile"] == "/client.key"
    assert kwargs["ssl_cert_reqs"] == "optional" and kwargs["ssl_check_hostname"] is True
    # redis-py's own query parameters still reach it.
    assert (kwargs["db"], kwargs["health_check_interval"]) == (1, 7)


def test_tls_without_verification_does_not_check_the_host_name() -> None:
    kwargs = build_client(
        Settings(url="rediss://cache:6390?ssl_cert_reqs=none")
    ).connection_pool.connection_kwargs
    assert (kwargs["ssl_cert_reqs"], kwargs["ssl_check_hostname"]) == ("none", False)


def test_plain_redis_takes_no_tls_options_even_when_set() -> None:
    kwargs = build_client(
        Settings(url="redis://cache:6390/2", ssl_ca_certs="/ca.pem")
    ).connection_pool.connection_kwargs
    assert "ssl_ca_certs" not in kwargs and kwargs["db"] == 2


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("rediss://h:1?ssl_cert_reqs=maybe", "ssl_cert_reqs must be one of"),
        ("rediss://h:1?ssl_check_hostname=perhaps", "ssl_check_hostname must be bool"),
        ("redis://h1:1,h2:2/0", "use redis\\+cluster:// or redis\\+sentinel://"),
        ("redis+cluster://h1:port/0", "is not a number"),
        ("redis+sentinel://s1:26379/mymaster?socket_timeout=3", "socket_timeout are not understood"),
    ],
)
def test_bad_urls_fail_clearly_without_the_password(url: str, message: str) -> None:
    with_password = url.replace("://", f"://app:{SECRET}@", 1)
    with pytest.raises(ConfigError, match=message) as info:
        build_client(Settings(url=with_password))
    assert SECRET not in str(info.value)


def test_parsed_url_repr_shows_no_password() -> None:
    target = parse_url(f"rediss+cluster://app:{SECRET}@c1:7000?ssl_keyfile=/k.pem")
    assert SECRET not in repr(target) and "/k.pem" not in repr(target)
    assert target.password == SECRET


def test_store_description_never_keeps_credentials() -> None:
    built = build_client(Settings(url=f"redis://app:{SECRET}@cache:6390/1"))
    assert RedisStore(built).endpoint == "cache:6390"
    assert RedisStore(built, f"redis://app:{SECRET}@cache:6390/1").endpoint == "cache:6390"
    assert describe(build_client(Settings(url="unix:///run/redis.sock?db=2"))) == "/run/redis.sock"


# -- redis_conn_id: an Airflow connection read through Airflow's own lookup ------------------------


def test_redis_conn_id_uri_form_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_XCOM_REDIS",
        f"redis://app:{SECRET.replace('-', '%2D')}%40x@cache.internal:6390/?db=2&ssl=true"
        "&ssl_cert_reqs=optional&ssl_ca_certs=%2Fetc%2Fca.pem",
    )
    settings = resolve(Settings(redis_conn_id="xcom_redis"))
    assert settings.redis_conn_id == ""
    target = parse_url(settings.url, settings)
    assert (target.scheme, target.hosts, target.db) == ("rediss", (("cache.internal", 6390),), 2)
    assert (target.username, target.password) == ("app", f"{SECRET}@x")
    assert (target.tls["ssl_cert_reqs"], target.tls["ssl_ca_certs"]) == ("optional", "/etc/ca.pem")
    kwargs = build_client(Settings(redis_conn_id="xcom_redis")).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"], kwargs["password"]) == (
        "cache.internal",
        6390,
        2,
        f"{SECRET}@x",
    )
    assert SECRET not in repr(settings)


def test_redis_conn_id_json_form_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "redis",
        "host": "c1:7000,c2:7001",
        "login": "app",
        "password": SECRET,
        "extra": {"cluster": True},
    }
    monkeypatch.setenv("AIRFLOW_CONN_XCOM_CLUSTER", json.dumps(conn))
    kwargs = _cluster_kwargs(monkeypatch, Settings(redis_conn_id="xcom_cluster"))
    assert [(n.host, n.port) for n in kwargs["startup_nodes"]] == [("c1", 7000), ("c2", 7001)]
    assert (kwargs["username"], kwargs["password"]) == ("app", SECRET)


def test_redis_conn_id_json_form_sentinel_with_its_own_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {
        "conn_type": "redis",
        "host": "s1:26379,s2:26379",
        "password": SECRET,
        "extra": {
            "sentinel_service": "mymaster",
            "db": 4,
            "sentinel_username": "sentinel-user",
            "sentinel_password": "sentinel-pw",
        },
    }
    monkeypatch.setenv("AIRFLOW_CONN_XCOM_SENTINEL", json.dumps(conn))
    built = build_client(Settings(redis_conn_id="xcom_sentinel"))
    pool = built.connection_pool
    assert pool.service_name == "mymaster"
    assert (pool.connection_kwargs["password"], pool.connection_kwargs["db"]) == (SECRET, 4)
    sentinel = pool.sentinel_manager.sentinels[0].connection_pool.connection_kwargs
    assert (sentinel["username"], sentinel["password"]) == ("sentinel-user", "sentinel-pw")


def test_redis_conn_id_of_another_type_or_missing_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_XCOM_PG", f"postgres://app:{SECRET}@db:5432/airflow")
    with pytest.raises(ConfigError, match="type 'postgres'") as info:
        build_client(Settings(redis_conn_id="xcom_pg"))
    assert SECRET not in str(info.value)
    with pytest.raises(ConfigError, match="redis_conn_id 'no_such_conn' could not be read"):
        build_client(Settings(redis_conn_id="no_such_conn"))


def test_url_and_redis_conn_id_together_name_both(xcom_settings: pytest.MonkeyPatch) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", f"redis://app:{SECRET}@cache:6379/0")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__REDIS_CONN_ID", "xcom_redis")
    with pytest.raises(ConfigError) as info:
        get_settings()
    assert "AIRFLOW__REDIS_XCOM__URL" in str(info.value)
    assert "AIRFLOW__REDIS_XCOM__REDIS_CONN_ID" in str(info.value)
    assert SECRET not in str(info.value)
