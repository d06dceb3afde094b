"""[redis_xcom] settings: defaults, environment overrides, validation, and no password leaks."""

from __future__ import annotations

import pytest

from redis_xcom.config import Settings, get_settings, redact_url, reset_settings
from redis_xcom.errors import ConfigError
from redis_xcom.storage.client import RETRIED_ERRORS, build_client, endpoint


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
