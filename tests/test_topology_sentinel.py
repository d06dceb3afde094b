"""The backend through Sentinel: its contract, a Sentinel that is down, wrong Sentinel credentials,
and failovers in the middle of a load of pushes and pulls (SENTINEL FAILOVER, the master killed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from redis_xcom import RedisUnavailableError, RedisXComError, XComExpiredError
from tests.redis_process import MISSING_REASON, REDIS_SERVER
from tests.topologies.contract import backend_env, run_contract
from tests.topologies.sentinel import MASTER_PASSWORD, SENTINEL_PASSWORD, SERVICE, SentinelDeployment
from tests.xcom_calls import pull, push, redis_key

pytestmark = [
    pytest.mark.integration,
    pytest.mark.topology,
    pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING_REASON),
]
PREFIX = "xcomsentinel"


@pytest.fixture
def deployment() -> Iterator[SentinelDeployment]:
    with SentinelDeployment() as started:
        yield started


def _use(monkeypatch: pytest.MonkeyPatch, deployment: SentinelDeployment, **options: str) -> None:
    options.setdefault("sentinel_password", SENTINEL_PASSWORD)
    for name, value in backend_env(deployment.url(), PREFIX, **options).items():
        monkeypatch.setenv(name, value)


def test_contract_through_sentinel_with_a_sentinel_down(
    deployment: SentinelDeployment, xcom_settings: pytest.MonkeyPatch
) -> None:
    deployment.sentinels[0].stop()  # the first one the client asks: it must be skipped
    _use(xcom_settings, deployment)
    master = deployment.current_master()
    run_contract(master.client(), PREFIX, xcom_settings)
    assert deployment.replica is not None
    replica = deployment.replica.client()
    reference = push({"replicated": True}, run_id="to-replica")
    deadline = time.monotonic() + 5
    while replica.exists(redis_key(reference)) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert replica.exists(redis_key(reference)) == 1, "the value was not written to the master"


def test_wrong_sentinel_password_fails_clearly_without_either_password(
    deployment: SentinelDeployment, xcom_settings: pytest.MonkeyPatch
) -> None:
    _use(xcom_settings, deployment, sentinel_password="not-the-sentinel-pw", retry_attempts="1")
    with pytest.raises(RedisUnavailableError) as info:
        push("never stored")
    message = str(info.value)
    assert f"Sentinel service '{SERVICE}'" in message and "sentinel_password" in message
    for port in (s.port for s in deployment.sentinels):
        assert f"127.0.0.1:{port}" in message
    assert MASTER_PASSWORD not in message and "not-the-sentinel-pw" not in message


@dataclass
class Load:
    """Pushes and pulls one after another, as tasks would, recording what was acknowledged."""

    acknowledged: dict[int, Any] = field(default_factory=dict)
    failures: list[RedisXComError] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    count: int = 0

    def step(self) -> bool:
        """One push and its pull; True when both succeeded."""
        i = self.count
        self.count += 1
        value = {"i": i, "pad": "x" * (i % 7 * 300)}
        try:
            reference = push(value, run_id=f"run{i // 20}", task_id=f"t{i}")
            self.acknowledged[i] = (reference, value)
            got = pull(reference)
        except RedisXComError as exc:
            self.failures.append(exc)
            return False
        if got != value:
            self.wrong.append(f"push {i} read back {got!r}")
        return True

    def lost(self) -> list[int]:
        """Acknowledged pushes that are gone now (a wrong value counts as wrong, not lost)."""
        gone = []
        for i, (reference, value) in self.acknowledged.items():
            try:
                got = pull(reference)
            except XComExpiredError:
                gone.append(i)
                continue
            if got != value:
                self.wrong.append(f"push {i} read back {got!r} after the failover")
        return gone


def _run_failover(monkeypatch: pytest.MonkeyPatch, deployment: SentinelDeployment, kill_master: bool) -> Load:
    # Retries long enough to span a failover (down-after 1 s, then the election and promotion).
    options = {"retry_attempts": "12", "retry_backoff_base": "0.1", "retry_backoff_cap": "1.0"}
    options.update({"socket_timeout": "1", "socket_connect_timeout": "1"})
    # A push returns once the replica has it (WAIT), so a failover loses nothing acknowledged.
    # WAIT's timeout stays below socket_timeout, so its reply arrives before the socket gives up.
    options.update({"wait_replicas": "1", "wait_timeout_ms": "300"})
    _use(monkeypatch, deployment, **options)
    load = Load()
    for _ in range(40):
        assert load.step(), load.failures
    old = deployment.current_master()
    promotion: dict[str, Any] = {}

    def follow_failover() -> None:
        try:
            promotion["new"] = deployment.wait_for_new_master(old.port, seconds=45)
            if kill_master:
                # Back at once as a replica of the new master (it keeps nothing on disk), so that
                # wait_replicas = 1 can be met again.
                deployment.rejoin_as_replica(old, promotion["new"])
        except BaseException as exc:  # reported by the assertion below
            promotion["error"] = exc

    watcher = threading.Thread(target=follow_failover, daemon=True)
    if kill_master:
        old.stop()
    else:
        deployment.sentinels[1].client().execute_command("SENTINEL", "FAILOVER", SERVICE)
    watcher.start()
    deadline = time.monotonic() + 60
    ok_after = 0
    while ok_after < 40 and time.monotonic() < deadline:
        if load.step() and "new" in promotion and not watcher.is_alive():
            ok_after += 1
    watcher.join(timeout=1)
    promoted = promotion.get("new")
    assert promoted is not None and promoted.port != old.port, f"no failover: {promotion.get('error')!r}"
    assert ok_after == 40, f"pushes did not resume on the new master: {load.failures[-3:]}"
    return load


def _check(load: Load, deployment: SentinelDeployment) -> None:
    lost = load.lost()
    assert load.wrong == [], load.wrong
    for failure in load.failures:
        # Only clear failures (unreachable, or too few replicas confirmed): named after the
        # Sentinel service, no password.
        assert f"Sentinel service '{SERVICE}'" in str(failure), str(failure)
        assert MASTER_PASSWORD not in str(failure) and SENTINEL_PASSWORD not in str(failure)
    assert lost == [], f"acknowledged pushes lost despite wait_replicas = 1: {lost} ({deployment.roles()})"


def test_sentinel_failover_mid_load(
    deployment: SentinelDeployment, xcom_settings: pytest.MonkeyPatch
) -> None:
    _check(_run_failover(xcom_settings, deployment, kill_master=False), deployment)


def test_master_killed_mid_load(deployment: SentinelDeployment, xcom_settings: pytest.MonkeyPatch) -> None:
    _check(_run_failover(xcom_settings, deployment, kill_master=True), deployment)
