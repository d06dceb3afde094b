from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A real redis-server started by the suite for the whole session; tests must use their own keys."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    with RedisServer() as server:
        yield server


@pytest.fixture
def fresh_redis_server() -> Iterator[RedisServer]:
    """A real redis-server of the test's own, free to kill, restart or reconfigure."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING_REASON)
    with RedisServer() as server:
        yield server
