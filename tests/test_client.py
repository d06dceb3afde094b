"""The client factory: what every Redis client of the backend is built with."""

from __future__ import annotations

import random

import pytest

from redis_xcom.config import Settings
from redis_xcom.storage import client, redispy_compat


def test_retries_back_off_exponentially_with_jitter_up_to_the_configured_cap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = client.build_client(Settings(retry_attempts=4, retry_backoff_base=0.1, retry_backoff_cap=2.0))
    retry = built.connection_pool.connection_kwargs["retry"]
    # The fallback for redis-py < 5.3 must draw the same delays as redis-py's own class.
    backoffs = [retry._backoff, redispy_compat._ExponentialWithJitterBackoff(cap=2.0, base=0.1)]
    monkeypatch.setattr(random, "random", lambda: 0.5)
    for backoff in backoffs:
        assert [backoff.compute(n) for n in range(7)] == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0])
    monkeypatch.setattr(random, "random", lambda: 0.0)
    assert [backoff.compute(5) for backoff in backoffs] == [0.0, 0.0]
