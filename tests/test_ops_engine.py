"""The engine's name and real version from INFO: Valkey pins redis_version at 7.2.4 for old clients."""

from __future__ import annotations

import pytest

from redis_xcom.ops.engine import Engine, engine_of

# INFO server fields as redis-py parses them, from Debian's redis-server 7.0.15 and valkey-server 8.0.1.
REDIS_7 = {"redis_version": "7.0.15", "redis_mode": "standalone", "os": "Linux"}
VALKEY_8 = {"redis_version": "7.2.4", "server_name": "valkey", "valkey_version": "8.0.1"}


@pytest.mark.parametrize(
    ("info", "shown"),
    [
        (REDIS_7, "Redis 7.0.15"),
        (VALKEY_8, "Valkey 8.0.1"),
        # Valkey 7.2 named itself but kept the Redis numbering: valkey_version equals redis_version.
        ({"redis_version": "7.2.5", "server_name": "valkey", "valkey_version": "7.2.5"}, "Valkey 7.2.5"),
        ({"redis_version": "7.2.4", "server_name": "Valkey", "valkey_version": "9.0.0"}, "Valkey 9.0.0"),
        # Another fork naming itself without a version field of its own: its name, the pinned version.
        ({"redis_version": "7.2.4", "server_name": "otherdb"}, "otherdb 7.2.4"),
        ({}, "Redis ?"),
    ],
)
def test_the_engine_is_named_from_info(info: dict[str, str], shown: str) -> None:
    assert str(engine_of(info)) == shown


def test_the_version_compared_is_the_engines_own() -> None:
    assert engine_of(VALKEY_8).version_tuple == (8, 0, 1), "not the pinned redis_version 7.2.4"
    assert engine_of(REDIS_7).version_tuple == (7, 0, 15)
    assert Engine("Redis", "?").version_tuple == ()
    assert Engine("Valkey", "8.1.0-rc1").version_tuple == (8, 1)
