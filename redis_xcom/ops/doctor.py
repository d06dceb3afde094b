"""`redis-xcom doctor`: checks the configuration and the Redis it names, each with what to do.

Every check is ok, warning or fail. Server facts come from CONFIG GET where allowed; many managed
services refuse CONFIG, and then INFO is read instead (and the line says so).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from redis.exceptions import RedisError, ResponseError

from redis_xcom import airflow_compat, backend, keys
from redis_xcom.config import Settings
from redis_xcom.errors import RedisXComError
from redis_xcom.ops import diagnosis, state_doctor
from redis_xcom.ops.engine import Engine, engine_of
from redis_xcom.ops.output import OK, PROBLEM, Output, human_bytes
from redis_xcom.redaction import redact_url
from redis_xcom.storage.client import parse_url

OK_, WARNING, FAIL = "ok", "warning", "fail"
BACKEND_CLASS = "redis_xcom.ExclusiveRedisXCom"
PINGS = 5
HEADROOM_WARNING = 0.8  # used_memory above this share of maxmemory
ALL_SLOTS = 16384
_PROBE = keys.XComCoordinates("redis-xcom-doctor", "doctor", "doctor", -1, "probe")


@dataclass
class Check:
    name: str
    status: str
    detail: str
    advice: str = ""


class Doctor:
    def __init__(self) -> None:
        self.checks: list[Check] = []

    def add(self, name: str, status: str, detail: str, advice: str = "") -> None:
        self.checks.append(Check(name, status, detail, advice))

    def failed(self) -> bool:
        return any(c.status == FAIL for c in self.checks)

    def warned(self) -> bool:
        return any(c.status == WARNING for c in self.checks)


def run_doctor(*, strict: bool, out: Output) -> int:
    doctor = Doctor()
    settings = _check_config(doctor)
    state_in_use = state_doctor.check_state_store(doctor)
    _check_xcom_backend(doctor, state_in_use)
    if settings is not None:
        _check_server(doctor, settings)
        if state_in_use and not doctor.failed():
            state_doctor.check_state_commands(doctor, backend.runtime().store.client)
    code = PROBLEM if doctor.failed() or (strict and doctor.warned()) else OK
    summary = _summary(doctor, code)
    for check in doctor.checks:
        advice = f" -> {check.advice}" if check.advice else ""
        out.line(f"{check.status:<8}{check.name}: {check.detail}{advice}")
    out.line(summary["text"])
    out.document({"checks": [asdict(c) for c in doctor.checks], "strict": strict, "summary": summary})
    return code


def _summary(doctor: Doctor, code: int) -> dict[str, Any]:
    """The counts, and the check to act on first: the first failure, else the first warning."""
    counts = {status: sum(c.status == status for c in doctor.checks) for status in (OK_, WARNING, FAIL)}
    warnings = f"{counts[WARNING]} warning{'' if counts[WARNING] == 1 else 's'}"
    text = f"doctor: {counts[OK_]} ok, {warnings}, {counts[FAIL]} failed"
    first = next((c for c in doctor.checks if c.status == FAIL), None) or next(
        (c for c in doctor.checks if c.status == WARNING), None
    )
    if first is None:
        text += "; nothing to do"
    else:
        verb = "fix" if first.status == FAIL else "look at"
        text += f"; first {verb} {first.name}: {first.advice or first.detail}"
    skipped = [c.name for c in doctor.checks if c.status == FAIL and c.name in ("config", "connect")]
    if skipped:
        text += " (the checks that need Redis did not run)"
    return {
        "ok": counts[OK_],
        "warnings": counts[WARNING],
        "failed": counts[FAIL],
        "first": asdict(first) if first else None,
        "skipped_server_checks": bool(skipped),
        "exit_code": code,
        "text": text,
    }


def _check_config(doctor: Doctor) -> Settings | None:
    settings, problem = diagnosis.load_settings()
    if settings is None:
        assert problem is not None
        doctor.add("config", FAIL, problem.message, problem.advice)
        return None
    if settings.redis_conn_id:
        source = f"Airflow connection redis_conn_id={settings.redis_conn_id!r}"
    elif airflow_compat.airflow_conf().get("redis_xcom", "url", fallback=""):
        source = f"[redis_xcom] url = {redact_url(settings.url)}"
    else:
        source = f"the default url {settings.url} ([redis_xcom] url and redis_conn_id are unset)"
    doctor.add("config", OK_, f"{source}; key_prefix {settings.key_prefix!r}, ttl {settings.ttl}s")
    return settings


def _check_xcom_backend(doctor: Doctor, state_in_use: bool = False) -> None:
    configured = airflow_compat.airflow_conf().get("core", "xcom_backend", fallback="")
    if configured == BACKEND_CLASS:
        doctor.add("xcom_backend", OK_, f"[core] xcom_backend = {configured}")
        return
    try:
        from airflow.utils.module_loading import import_string

        chosen = import_string(configured)
        ours = isinstance(chosen, type) and issubclass(chosen, backend.ExclusiveRedisXCom)
    except Exception:
        ours = False
    if ours:
        doctor.add("xcom_backend", OK_, f"[core] xcom_backend = {configured} (a subclass of {BACKEND_CLASS})")
        return
    doctor.add(
        "xcom_backend",
        WARNING if state_in_use else FAIL,  # only the state store may be wanted in Redis
        f"[core] xcom_backend = {configured or '(unset)'}: XComs do not go to Redis here",
        f"set AIRFLOW__CORE__XCOM_BACKEND={BACKEND_CLASS} in every component that runs tasks",
    )


def _check_server(doctor: Doctor, settings: Settings) -> None:
    problem = diagnosis.first_contact(settings)
    if problem is None:
        try:
            store = backend.runtime().store
            client = store.client
            latencies = []
            for _ in range(PINGS):
                started = time.perf_counter()
                client.ping()
                latencies.append((time.perf_counter() - started) * 1000)
        except Exception as exc:
            problem = diagnosis.diagnose(exc, settings)
    if problem is not None:
        doctor.add("connect", FAIL, problem.message, problem.advice)
        return
    doctor.add("connect", OK_, f"{store.endpoint}; round trip {statistics.median(latencies):.2f} ms (median)")
    try:
        config = _config_reader(client)
        engine = _check_engine(doctor, client, config)
        _check_round_trip(doctor, store, settings)
        _check_tls_and_auth(doctor, client, settings)
        _check_commands(doctor, client, settings)
        _check_memory(doctor, client, config, engine)
        _check_persistence(doctor, client, config)
        _check_bulk_limit(doctor, config, settings)
        _check_topology(doctor, client)
    except (RedisError, RedisXComError, OSError) as exc:
        # The connection went away between two checks (a restart, a failover): the rest cannot run.
        problem = diagnosis.diagnose(exc, settings)
        doctor.add("server", FAIL, f"the checks stopped: {problem.message}", problem.advice)


def _check_round_trip(doctor: Doctor, store: Any, settings: Settings) -> None:
    redis_key, index = keys.build_key_and_index(settings.key_prefix, _PROBE)
    try:
        started = time.perf_counter()
        store.put(redis_key, b"doctor", 60, index)
        back = store.get(redis_key)
        store.unlink_indexed(index, [redis_key])
        took = (time.perf_counter() - started) * 1000
    except RedisXComError as exc:
        problem = diagnosis.diagnose(exc, settings)
        advice = problem.advice or "the backend cannot push here; see the error"
        doctor.add("write", FAIL, problem.message, advice)
        return
    if back != b"doctor":
        doctor.add("write", FAIL, f"wrote {redis_key!r} and read back {back!r}", "is this Redis shared?")
        return
    doctor.add("write", OK_, f"SET + index, GET, UNLINK of a probe value under key_prefix: {took:.2f} ms")


def _check_tls_and_auth(doctor: Doctor, client: Any, settings: Settings) -> None:
    url = settings.url
    tls = url.startswith("rediss") or bool(_first_kwargs(client).get("ssl"))
    try:
        user = client.execute_command("ACL", "WHOAMI")
        user = user.decode() if isinstance(user, bytes) else str(user)
    except ResponseError:
        user = "?"
    local = any(h in url for h in ("127.0.0.1", "localhost", "[::1]", "unix://"))
    tls_text = f"TLS on (certificate checks: {settings.ssl_cert_reqs})" if tls else "no TLS"
    if not tls and not local:
        doctor.add(
            "tls/auth",
            WARNING,
            f"{tls_text} to a non-local Redis; user {user!r}",
            "use rediss:// so that values and the password are encrypted on the network",
        )
    elif user == "default" and not _has_password(url):
        doctor.add(
            "tls/auth",
            OK_ if local else WARNING,
            f"{tls_text}; no password (user 'default')",
            "" if local else "require a password (requirepass or an ACL user)",
        )
    else:
        doctor.add("tls/auth", OK_, f"{tls_text}; authenticated as {user!r}")


def _has_password(url: str) -> bool:
    # The client's own reading of the URL: user information or a ?password= query parameter.
    return bool(parse_url(url).password)


def _first_kwargs(client: Any) -> dict[str, Any]:
    pool = getattr(client, "connection_pool", None)
    kwargs = getattr(pool, "connection_kwargs", None)
    return kwargs if isinstance(kwargs, dict) else {}


def _backend_commands(settings: Settings) -> list[tuple[str, list[str]]]:
    """Every command the backend (and clear) sends, with example arguments on a probe key."""
    value, index = keys.build_key_and_index(settings.key_prefix, _PROBE)
    script = "return 1"
    required = [
        ("PING", []),
        ("CLIENT", ["SETNAME", "redis-xcom"]),
        ("SET", [value, "v", "EX", "60"]),
        ("GET", [value]),
        # Lua where lua_scripts is on; else EXPIRE's NX/GT options do the index's TTL (Redis 7.0+).
        *(
            [
                ("EVALSHA", ["0" * 40, "2", value, index, "v", "60"]),
                ("EVAL", [script, "2", value, index, "v", "60"]),
            ]
            if settings.lua_scripts
            else [("EXPIRE", [index, "60", "NX"]), ("EXPIRE", [index, "60", "GT"])]
        ),
        ("SADD", [index, value]),
        ("SREM", [index, value]),
        ("EXPIRE", [value, "60"]),
        ("TTL", [value]),
        ("UNLINK", [value]),
        ("SSCAN", [index, "0"]),
        ("SCAN", ["0"]),
        ("RPUSH", [value, "v"]),
        ("LRANGE", [value, "0", "-1"]),
        ("MULTI", []),
        ("EXEC", []),
    ]
    if settings.wait_replicas:
        required.append(("WAIT", [str(settings.wait_replicas), "100"]))
    return required


# Not needed to push or pull: CONFIG is only read for limits; the rest serve stats, gc and doctor.
_OPTIONAL = [
    ("CONFIG", ["GET", "maxmemory-policy"]),
    ("MEMORY", ["USAGE", "k"]),
    ("OBJECT", ["IDLETIME", "k"]),
    ("INFO", []),
    ("DBSIZE", []),
]


def _check_commands(doctor: Doctor, client: Any, settings: Settings) -> None:
    try:
        user = client.execute_command("ACL", "WHOAMI")
        user = user.decode() if isinstance(user, bytes) else str(user)
        client.execute_command("ACL", "DRYRUN", user, "PING")
    except ResponseError as exc:
        doctor.add(
            "commands",
            WARNING,
            f"cannot check with ACL DRYRUN ({exc}); the write check above covers SET, GET, EVALSHA, UNLINK",
            "run doctor as an admin user once to check every command",
        )
        return
    refused: list[str] = []
    optional_refused: list[str] = []
    for commands, found in ((_backend_commands(settings), refused), (_OPTIONAL, optional_refused)):
        for name, args in commands:
            reply = client.execute_command("ACL", "DRYRUN", user, name, *args)
            text = reply.decode() if isinstance(reply, bytes) else str(reply)
            if text != "OK":
                found.append(
                    name if name not in ("CLIENT", "CONFIG", "MEMORY", "OBJECT") else f"{name} {args[0]}"
                )
    if refused:
        doctor.add(
            "commands",
            FAIL,
            f"user {user!r} may not run {', '.join(refused)} (ACL DRYRUN), which the backend sends",
            f"ACL SETUSER {user} " + " ".join(f"+{c.replace(' ', '|').lower()}" for c in refused),
        )
    elif optional_refused:
        doctor.add(
            "commands",
            WARNING,
            f"every command the backend sends is allowed to {user!r}; not {', '.join(optional_refused)}",
            "stats, gc and clear then measure less (they say so); allow them for full reports",
        )
    else:
        doctor.add("commands", OK_, f"every command the backend, stats and gc send is allowed to {user!r}")


def _config_reader(client: Any) -> Callable[[str], str | None]:
    """CONFIG GET name, or None when CONFIG is refused (doctor then reads INFO and says so)."""

    def read(name: str) -> str | None:
        try:
            reply = client.config_get(name)
        except ResponseError:
            return None
        value = reply.get(name)
        return None if value is None else str(value)

    return read


def _info(client: Any, section: str) -> dict[str, Any]:
    reply = client.info(section)
    # A cluster client answers per node: the first node stands for all here (stats shows each).
    if reply and all(isinstance(v, dict) for v in reply.values()):
        return dict(next(iter(reply.values())))
    return dict(reply)


def _check_engine(doctor: Doctor, client: Any, config: Callable[[str], str | None]) -> Engine | None:
    """Redis or Valkey, by INFO's server_name / valkey_version (Valkey pins redis_version at 7.2.4)."""
    try:
        engine = engine_of(_info(client, "server"))
    except ResponseError as exc:
        doctor.add("server", OK_, f"INFO server is refused ({exc}): engine and version unknown")
        return None
    detail = str(engine)
    # Newer Valkey may evict cached scripts: the backend's EVALSHA then gets NOSCRIPT and sends it again.
    scripts = config("maxmemory-scripts")
    if scripts not in (None, "0"):
        detail += f"; maxmemory-scripts {scripts}: an evicted script is sent again on NOSCRIPT"
    doctor.add("server", OK_, detail)
    return engine


def _check_memory(
    doctor: Doctor, client: Any, config: Callable[[str], str | None], engine: Engine | None
) -> None:
    name = engine.name if engine else "Redis"
    conf_file = "valkey.conf" if name == "Valkey" else "redis.conf"
    memory = _info(client, "memory")
    policy = config("maxmemory-policy")
    source = "CONFIG GET"
    if policy is None:
        policy, source = str(memory.get("maxmemory_policy", "?")), "INFO (CONFIG is refused)"
    if policy == "noeviction":
        doctor.add("eviction", OK_, f"maxmemory-policy noeviction ({source})")
    else:
        doctor.add(
            "eviction",
            WARNING,
            f"maxmemory-policy {policy} ({source}): {name} may evict XCom values, pulls then fail",
            f"CONFIG SET maxmemory-policy noeviction (and in {conf_file}; on a managed service, in its "
            "parameter group or configuration)",
        )
    used, limit = int(memory.get("used_memory", 0)), int(memory.get("maxmemory", 0))
    if not limit:
        doctor.add(
            "maxmemory",
            WARNING,
            f"no maxmemory; {human_bytes(used)} used",
            "set maxmemory below the machine's memory, so that a full Redis refuses pushes instead of dying",
        )
    elif used > HEADROOM_WARNING * limit:
        doctor.add(
            "maxmemory",
            WARNING,
            f"{human_bytes(used)} of {human_bytes(limit)} used ({used / limit:.0%})",
            "raise maxmemory, lower [redis_xcom] ttl, or run redis-xcom gc",
        )
    else:
        doctor.add("maxmemory", OK_, f"{human_bytes(used)} of {human_bytes(limit)} used ({used / limit:.0%})")


def _check_persistence(doctor: Doctor, client: Any, config: Callable[[str], str | None]) -> None:
    info = _info(client, "persistence")
    aof = bool(int(info.get("aof_enabled", 0)))
    save = config("save")
    if aof:
        doctor.add("persistence", OK_, "appendonly yes")
    elif save:
        doctor.add("persistence", OK_, f"RDB snapshots (save {save})")
    else:
        known = "" if save is not None else " (CONFIG is refused: RDB snapshots unknown, read INFO)"
        doctor.add(
            "persistence",
            WARNING,
            f"no appendonly{' and no RDB snapshots' if save is not None else ''}{known}: "
            "a restart loses every value",
            "appendonly yes (or save rules) if values must survive a restart",
        )


def _check_bulk_limit(doctor: Doctor, config: Callable[[str], str | None], settings: Settings) -> None:
    raw = config("proto-max-bulk-len")
    if raw is None:
        doctor.add(
            "chunk_bytes",
            WARNING,
            "proto-max-bulk-len unreadable (CONFIG is refused); chunk_bytes "
            f"{human_bytes(settings.chunk_bytes)}",
            "keep [redis_xcom] chunk_bytes at or below the server's proto-max-bulk-len (512 MiB by default)",
        )
        return
    limit = int(raw)
    if settings.chunk_bytes > limit:
        doctor.add(
            "chunk_bytes",
            OK_,
            f"chunk_bytes {human_bytes(settings.chunk_bytes)} above proto-max-bulk-len "
            f"{human_bytes(limit)}: large values are chunked at the server's limit",
        )
    else:
        doctor.add(
            "chunk_bytes",
            OK_,
            f"chunk_bytes {human_bytes(settings.chunk_bytes)} <= proto-max-bulk-len {human_bytes(limit)}",
        )


def _check_topology(doctor: Doctor, client: Any) -> None:
    if hasattr(client, "get_primaries"):
        try:
            info = client.cluster_info()
        except Exception as exc:
            doctor.add("cluster", FAIL, f"CLUSTER INFO failed: {exc}", "check the cluster's nodes")
            return
        if isinstance(info, dict) and all(isinstance(v, dict) for v in info.values()):
            info = next(iter(info.values()))
        state, slots = str(info.get("cluster_state")), int(info.get("cluster_slots_ok", 0))
        if state == "ok" and slots == ALL_SLOTS:
            doctor.add("cluster", OK_, f"cluster_state ok, all {ALL_SLOTS} slots covered")
        else:
            doctor.add(
                "cluster",
                FAIL,
                f"cluster_state {state}, {slots} of {ALL_SLOTS} slots ok",
                "assign every slot to a reachable primary (redis-cli --cluster fix)",
            )
        return
    pool = getattr(client, "connection_pool", None)
    manager = getattr(pool, "sentinel_manager", None)
    if manager is not None:
        service = pool.service_name  # type: ignore[union-attr]
        try:
            host, port = manager.discover_master(service)
        except Exception as exc:
            doctor.add("sentinel", FAIL, f"no master of {service!r}: {exc}", "check the Sentinels")
            return
        doctor.add("sentinel", OK_, f"master of {service!r} is {host}:{port}")
