"""The backend's contract on restricted servers: an ACL user limited to the key prefix and the
backend's commands, CONFIG renamed away, TLS (server verification, client certificates), and a
Redis named by an Airflow connection. Real redis-server processes of the test's own."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis.exceptions import NoPermissionError

from redis_xcom import RedisUnavailableError, keys
from redis_xcom.runtime import get_runtime
from tests.redis_process import MISSING_REASON, REDIS_SERVER, RedisServer
from tests.topologies.acl import acl_rule, add_user, denials
from tests.topologies.contract import backend_env, run_contract
from tests.topologies.tls import OPENSSL, OPENSSL_MISSING, Certificates, TLSRedisServer, make_certificates
from tests.xcom_calls import pull, push

pytestmark = [
    pytest.mark.integration,
    pytest.mark.topology,
    pytest.mark.skipif(REDIS_SERVER is None, reason=MISSING_REASON),
]
PREFIX = "xcomtest"
PASSWORD = "acl-pw-7f3a"


def _use(monkeypatch: pytest.MonkeyPatch, url: str, **options: str) -> None:
    for name, value in backend_env(url, PREFIX, **options).items():
        monkeypatch.setenv(name, value)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "redis_xcom" in r.name]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    with RedisServer() as started:
        yield started


@pytest.mark.parametrize("scripting", [False, True], ids=["no-lua", "lua"])
def test_contract_as_a_user_restricted_to_the_prefix_and_the_backends_commands(
    server: RedisServer, xcom_settings: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, scripting: bool
) -> None:
    admin = server.client()
    add_user(admin, "xcom", acl_rule(PREFIX, PASSWORD, scripting=scripting))
    admin.config_set("maxmemory-policy", "volatile-lru")
    url = f"redis://xcom:{PASSWORD}@127.0.0.1:{server.port}/0"
    _use(xcom_settings, url, lua_scripts=str(scripting).lower())
    admin.acl_log_reset()
    run_contract(admin, PREFIX, xcom_settings)
    assert denials(admin) == [], "the ACL of docs/topologies.md lacks a command the backend sends"
    assert get_runtime().store.scripting is scripting
    # The user really is restricted: another prefix is refused ("this user has no permissions to
    # access one of the keys" on Redis 7.0, "No permissions to access a key" on Valkey 8.0).
    with pytest.raises(NoPermissionError, match=r"(?i)no permissions"):
        get_runtime().store.client.set("other:key", b"v")
    assert any("volatile-lru" in w for w in _warnings(caplog))


def test_an_acl_refusing_lua_switches_the_backend_to_plain_commands_by_itself(
    server: RedisServer, xcom_settings: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # lua_scripts left on (the default) against the least-privilege rule, which grants no Lua.
    admin = server.client()
    add_user(admin, "xcom", acl_rule(PREFIX, PASSWORD))
    _use(xcom_settings, f"redis://xcom:{PASSWORD}@127.0.0.1:{server.port}/0")
    admin.acl_log_reset()
    caplog.set_level(logging.INFO, logger="redis_xcom")
    run_contract(admin, PREFIX, xcom_settings)
    assert get_runtime().store.scripting is False
    refused = denials(admin)
    assert refused and all("evalsha" in r.lower() for r in refused), refused
    assert sum("refuses EVALSHA/EVAL" in r.getMessage() for r in caplog.records) == 1


def test_an_acl_granting_evalsha_but_not_eval_survives_a_script_cache_flush(
    server: RedisServer, xcom_settings: pytest.MonkeyPatch
) -> None:
    admin = server.client()
    add_user(admin, "xcom", [*acl_rule(PREFIX, PASSWORD), "+evalsha"])
    _use(xcom_settings, f"redis://xcom:{PASSWORD}@127.0.0.1:{server.port}/0")
    admin.script_flush()  # as after a restart or failover: EVALSHA answers NOSCRIPT, EVAL is refused
    reference = push({"n": 1}, dag_id="d", run_id="flushed")
    assert pull(reference) == {"n": 1} and get_runtime().store.scripting is False
    index = keys.run_index_key(PREFIX, "d", "flushed")
    assert admin.scard(index) == 1 and admin.ttl(index) > 0


@pytest.mark.parametrize(
    ("inspection", "policy_seen"),
    [(("+info",), True), ((), False)],
    ids=["info-only", "neither-config-nor-info"],
)
def test_config_get_denied_falls_back_to_info_then_to_one_warning(
    server: RedisServer,
    xcom_settings: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    inspection: tuple[str, ...],
    policy_seen: bool,
) -> None:
    admin = server.client()
    add_user(admin, "xcom", acl_rule(PREFIX, PASSWORD, inspection))
    admin.config_set("maxmemory-policy", "allkeys-lru")
    _use(xcom_settings, f"redis://xcom:{PASSWORD}@127.0.0.1:{server.port}/0")
    large = b"z" * 2_000_000  # above 1 MiB: the store asks for proto-max-bulk-len first
    for task in ("a", "b", "c"):
        assert pull(push(large, task_id=task)) == large
    warnings = [w for w in _warnings(caplog) if "maxmemory-policy" in w]
    assert len(warnings) == 1, warnings
    if policy_seen:
        assert "allkeys-lru" in warnings[0]
    else:
        assert "Could not read" in warnings[0] and "noeviction" in warnings[0]
        assert PASSWORD not in warnings[0]


def test_contract_with_config_renamed_away(
    xcom_settings: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    renamed = tmp_path / "renamed.conf"
    # As managed services do; INFO stays, so the eviction policy is still read.
    renamed.write_text('rename-command CONFIG ""\nmaxmemory-policy volatile-ttl\n')
    with RedisServer(["--include", str(renamed)]) as server:
        admin = server.client()
        _use(xcom_settings, server.url)
        run_contract(admin, PREFIX, xcom_settings)
        large = b"q" * 1_500_000
        assert pull(push(large, task_id="large")) == large
    assert [w for w in _warnings(caplog) if "maxmemory-policy" in w] == [
        w for w in _warnings(caplog) if "volatile-ttl" in w
    ]
    assert any("volatile-ttl" in w for w in _warnings(caplog))


# -- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    if OPENSSL is None:
        pytest.skip(OPENSSL_MISSING)
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_contract_over_tls_verifying_the_server_with_the_ca(
    certs: Certificates, xcom_settings: pytest.MonkeyPatch
) -> None:
    with TLSRedisServer(certs) as server:
        _use(xcom_settings, server.url, ssl_ca_certs=str(certs.ca), ssl_cert_reqs="required")
        run_contract(server.client(), PREFIX, xcom_settings)


def test_tls_host_name_checked_against_the_certificates_sans(
    certs: Certificates, xcom_settings: pytest.MonkeyPatch
) -> None:
    with TLSRedisServer(certs) as server:
        # localhost is a SAN too; the options may come in the URL's query instead.
        url = f"rediss://localhost:{server.port}/0?ssl_ca_certs={certs.ca}&ssl_check_hostname=true"
        _use(xcom_settings, url)
        assert pull(push({"over": "tls"})) == {"over": "tls"}


def test_tls_with_a_wrong_ca_is_refused_clearly_naming_the_node(
    certs: Certificates, xcom_settings: pytest.MonkeyPatch
) -> None:
    with TLSRedisServer(certs) as server:
        _use(
            xcom_settings,
            f"rediss://app:{PASSWORD}@127.0.0.1:{server.port}/0",
            ssl_ca_certs=str(certs.other_ca),
            retry_attempts="1",
        )
        with pytest.raises(RedisUnavailableError) as info:
            push("never stored")
        message = str(info.value)
        assert f"127.0.0.1:{server.port}" in message
        assert "TLS handshake" in message and "CERTIFICATE_VERIFY_FAILED" in message
        assert "ssl_ca_certs" in message
        assert PASSWORD not in message
        assert server.client().dbsize() == 0


def test_tls_client_certificates_required_by_the_server(
    certs: Certificates, xcom_settings: pytest.MonkeyPatch
) -> None:
    with TLSRedisServer(certs, require_client_cert=True) as server:
        _use(xcom_settings, server.url, ssl_ca_certs=str(certs.ca), retry_attempts="0")
        with pytest.raises(RedisUnavailableError, match=f"127.0.0.1:{server.port}"):
            push("no client certificate")
        from redis_xcom.runtime import reset_runtime

        reset_runtime()
        xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SSL_CERTFILE", str(certs.client_cert))
        xcom_settings.setenv("AIRFLOW__REDIS_XCOM__SSL_KEYFILE", str(certs.client_key))
        run_contract(server.client(), PREFIX, xcom_settings)


# -- redis_conn_id --------------------------------------------------------------------------------


def test_contract_through_an_airflow_connection_uri_as_the_acl_user(
    server: RedisServer, xcom_settings: pytest.MonkeyPatch
) -> None:
    admin = server.client()
    add_user(admin, "xcom", acl_rule(PREFIX, PASSWORD))
    for name, value in backend_env("", PREFIX, lua_scripts="false").items():
        xcom_settings.setenv(name, value)
    xcom_settings.delenv("AIRFLOW__REDIS_XCOM__URL")
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__REDIS_CONN_ID", "xcom_redis")
    xcom_settings.setenv("AIRFLOW_CONN_XCOM_REDIS", f"redis://xcom:{PASSWORD}@127.0.0.1:{server.port}/?db=0")
    admin.acl_log_reset()
    run_contract(admin, PREFIX, xcom_settings)
    assert denials(admin) == []


def test_an_airflow_connection_in_json_form_with_tls_and_client_certificates(
    certs: Certificates, xcom_settings: pytest.MonkeyPatch
) -> None:
    with TLSRedisServer(certs, require_client_cert=True) as server:
        conn = {
            "conn_type": "redis",
            "host": "127.0.0.1",
            "port": server.port,
            "extra": {
                "ssl": True,
                "ssl_ca_certs": str(certs.ca),
                "ssl_certfile": str(certs.client_cert),
                "ssl_keyfile": str(certs.client_key),
                "db": 3,
            },
        }
        xcom_settings.setenv("AIRFLOW__REDIS_XCOM__REDIS_CONN_ID", "xcom_tls")
        xcom_settings.setenv("AIRFLOW_CONN_XCOM_TLS", json.dumps(conn))
        assert pull(push([1, 2, 3])) == [1, 2, 3]
        assert server.client(db=3).dbsize() == 2  # the value and its run's index, in db 3
