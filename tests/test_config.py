"""[redis_xcom] settings: defaults, environment overrides, validation, and no password leaks."""

from __future__ import annotations

import pytest

from redis_xcom.config import Settings, get_settings, redact_url, reset_settings
from redis_xcom.errors import ConfigError
from redis_xcom.storage.client import build_client, endpoint
from redis_xcom.storage.errors import RETRIED as RETRIED_ERRORS


def test_defaults_are_the_documented_ones(xcom_settings: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert settings.url == "redis://localhost:6379/0"
    assert settings.ttl == 604800
    assert settings.compression == "none"
    assert 0 < settings.socket_connect_timeout <= 10 and 0 < settings.socket_timeout <= 10


def test_environment_overrides_are_read_once(xcom_settings: pytest.MonkeyPatch) -> None:
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__URL", "unix:///run/redis.sock?db=2")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__TTL", "60")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SOCKET_TIMEOUT", "1.5")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", "team-a:xcom")
    settings = get_settings()
    assert (settings.url, settings.ttl, settings.socket_timeout, settings.key_prefix) == (
        "unix:///run/redis.sock?db=2",
        60,
        1.5,
        "team-a:xcom",
    )
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__TTL", "120")
    assert get_settings().ttl == 60, "settings are read once per process"
    reset_settings()
    assert get_settings().ttl == 120


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("TTL", "soon", "ttl must be int"),
        ("TTL", "0", "ttl must be a positive"),
        ("URL", "http://redis:6379", "url must start with"),
        ("KEY_PREFIX", "x{y}", "key_prefix"),
        ("KEY_PREFIX", "x*", "key_prefix"),
        ("COMPRESSION", "brotli", "compression must be one of"),
    ],
)
def test_invalid_settings_fail_with_the_option_named(
    xcom_settings: pytest.MonkeyPatch, option: str, value: str, message: str
) -> None:
    xcom_settings.setenv(f"AIRFLOW__REDIS_XCOM__{option}", value)
    with pytest.raises(ConfigError, match=message):
        get_settings()


def test_password_never_shows_in_repr_or_errors() -> None:
    url = "redis://app:s3cr3t-pw@cache.internal:6380/1"
    settings = Settings(url=url)
    assert "s3cr3t-pw" not in repr(settings)
    assert redact_url(url) == "redis://app:***@cache.internal:6380/1"
    assert endpoint(url) == "cache.internal:6380"
    with pytest.raises(ConfigError) as info:
        Settings(url="http://app:s3cr3t-pw@cache.internal:6380/1")
    assert "s3cr3t-pw" not in str(info.value)


def test_client_uses_the_configured_timeouts_and_retry() -> None:
    settings = Settings(
        url="rediss://cache:6390/3", socket_connect_timeout=1.25, socket_timeout=2.5, retry_attempts=4
    )
    kwargs = build_client(settings).connection_pool.connection_kwargs
    assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache", 6390, 3)
    assert (kwargs["socket_connect_timeout"], kwargs["socket_timeout"]) == (1.25, 2.5)
    assert kwargs["retry"]._retries == 4  # get_retries() is redis-py 6+
    # redis-py 5 retries only errors also named in retry_on_error (the Retry's own list is not enough).
    assert set(RETRIED_ERRORS) <= set(kwargs["retry_on_error"])


@pytest.mark.parametrize("timeout_ms", ["0", "5000", "9000"])
def test_wait_timeout_must_end_before_the_socket_timeout(
    xcom_settings: pytest.MonkeyPatch, timeout_ms: str
) -> None:
    # WAIT 0 would block a push forever; a WAIT outliving the socket timeout is cut off and retried whole.
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_REPLICAS", "1")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SOCKET_TIMEOUT", "5")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_TIMEOUT_MS", timeout_ms)
    with pytest.raises(ConfigError, match="wait_timeout_ms must be above 0 and below socket_timeout"):
        get_settings()
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__WAIT_TIMEOUT_MS", "1000")
    reset_settings()
    assert get_settings().wait_timeout_ms == 1000


@pytest.mark.parametrize(
    ("url", "same_as"),
    [
        ("valkey://cache:6379/2", "redis://cache:6379/2"),
        ("valkeys://app:pw@cache:6380/0", "rediss://app:pw@cache:6380/0"),
        ("valkey+cluster://a:7000,b:7001", "redis+cluster://a:7000,b:7001"),
        ("valkeys+cluster://a:7000,b:7001", "rediss+cluster://a:7000,b:7001"),
        (
            "valkey+sentinel://:pw@s1:26379,s2:26379/mymaster/1",
            "redis+sentinel://:pw@s1:26379,s2:26379/mymaster/1",
        ),
        ("valkeys+sentinel://s1:26379/mymaster/0", "rediss+sentinel://s1:26379/mymaster/0"),
        ("VALKEYS://cache:6380/0", "rediss://cache:6380/0"),
    ],
)
def test_valkey_urls_are_the_redis_ones(url: str, same_as: str) -> None:
    """As copied from a Valkey console: the same server, TLS, cluster or Sentinel as the redis form."""
    from redis_xcom.storage.client import parse_url

    settings = Settings(url=url)
    assert settings.url == same_as
    target, expected = parse_url(url, settings), parse_url(same_as, settings)
    assert (target.kind, target.hosts, target.db, target.uses_tls, target.service, target.password) == (
        expected.kind, expected.hosts, expected.db, expected.uses_tls, expected.service, expected.password
    )  # fmt: skip
    assert endpoint(url) == endpoint(same_as)


def test_a_valkey_connection_is_a_redis_one() -> None:
    """AIRFLOW_CONN_X='valkeys://...' gives a connection of type valkeys: TLS, as the URL says."""
    from airflow.models.connection import Connection

    from redis_xcom.connection import connection_url

    tls = Connection(conn_id="v", uri="valkeys://app:pw@cache.example:6380")
    assert connection_url(tls)[0] == "rediss://app:pw@cache.example:6380/0"
    plain = Connection(conn_id="v", conn_type="valkey", host="cache", port=6379, extra={"cluster": True})
    assert connection_url(plain)[0] == "redis+cluster://cache:6379/0"
    with pytest.raises(ConfigError, match="type redis \\(or valkey\\)"):
        connection_url(Connection(conn_id="m", conn_type="memcached", host="cache"))


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://127.0.0.1:notaport/0", "the port 'notaport' of '127.0.0.1:notaport' is not a number"),
        ("redis://127.0.0.1:70000/0", "the port '70000'"),
        ("redis://bad host:6379/0", "the host 'bad host' is not a host name or IP address"),
        ("redis+cluster://a:7000,b:x/0", "the port 'x' of 'b:x'"),
        ("redis://[zz]:6379/0", "is not a URL"),
        ("localhost:6379", "the scheme is missing: write redis://localhost:6379"),
        ("http://cache:6379/0", "must start with one of redis://"),
    ],
)
def test_a_bad_url_is_refused_when_the_settings_are_read(url: str, says: str) -> None:
    # Every entry point (a task, the UI, doctor's config check) learns it before any connection.
    with_password = url.replace("://", "://app:hunter2@", 1)
    with pytest.raises(ConfigError) as info:
        Settings(url=with_password)
    assert says in str(info.value)
    assert "redis://" in str(info.value), "it says how to write one"
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "redis://[::1]:6379/0",
        "redis://my_redis.internal.:6380/2",
        "rediss+cluster://a:1,b:2",
        "redis://",
        "redis://cache:/0",  # an empty port is the default one, as redis-py reads it
    ],
)
def test_good_urls_pass(url: str) -> None:
    assert Settings(url=url).url == url
