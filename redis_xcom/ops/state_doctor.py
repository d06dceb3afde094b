"""`redis-xcom doctor`'s state store checks: which of the two settings names our backend, and the
commands the state store sends (Airflow 3.3+)."""

from __future__ import annotations

import importlib.util
from typing import Any

from redis.exceptions import RedisError

from redis_xcom import airflow_compat

OK_, WARNING, FAIL = "ok", "warning", "fail"
STATE_CLASS = "redis_xcom.RedisStateStoreBackend"
SERVER = ("state_store", "backend")
WORKERS = ("workers", "state_store_backend")
# What RedisStateStoreBackend sends besides the XCom backend's commands (storage.write and friends).
STATE_COMMANDS = [
    ("HSET", ["k", "f", "v"]),
    ("HGET", ["k", "f"]),
    ("HDEL", ["k", "f"]),
    ("HSCAN", ["k", "0"]),
    ("PEXPIREAT", ["k", "1", "NX"]),
    ("SADD", ["k", "m"]),
    ("SREM", ["k", "m"]),
    ("UNLINK", ["k"]),
    ("MULTI", []),
    ("EXEC", []),
]


def _is_ours(name: str) -> bool:
    if not name:
        return False
    if name == STATE_CLASS:
        return True
    try:
        from airflow.sdk._shared.module_loading import import_string

        from redis_xcom.state.backend import RedisStateStoreBackend

        chosen = import_string(name)
        return isinstance(chosen, type) and issubclass(chosen, RedisStateStoreBackend)
    except Exception:
        return False


def settings_in_effect() -> tuple[str, str]:
    """The two settings as configured: ([state_store] backend, [workers] state_store_backend)."""
    conf = airflow_compat.airflow_conf()
    return conf.get(*SERVER, fallback="") or "", conf.get(*WORKERS, fallback="") or ""


def check_state_store(doctor: Any) -> bool:
    """Add the ``state_store`` check when either setting names our backend; whether it is in use."""
    server, workers = settings_in_effect()
    ours_server, ours_workers = _is_ours(server), _is_ours(workers)
    if importlib.util.find_spec("airflow.sdk.state") is None:
        if ours_server or ours_workers:
            doctor.add(
                "state_store",
                FAIL,
                f"{STATE_CLASS} is configured but this Airflow has no task and asset state store",
                "upgrade to Airflow 3.3+, or remove [state_store] backend / [workers] state_store_backend",
            )
        return False
    shown = (
        f"[state_store] backend = {server or '(default)'}; "
        f"[workers] state_store_backend = {workers or '(unset)'}"
    )
    if ours_server and ours_workers:
        detail = "both in effect: values and the references to them in Redis (the state tables stay empty)"
    elif ours_server:
        detail = "the server-side backend is in effect: state in Redis, the state tables stay empty"
    elif ours_workers:
        detail = "the worker-side backend is in effect: values in Redis, references in the metadata DB"
    else:
        return False  # not in use: nothing to say (the XCom checks stay as they were)
    doctor.add("state_store", OK_, f"{shown}: {detail}")
    return True


def check_state_commands(doctor: Any, client: Any) -> None:
    """ACL DRYRUN of the commands the state store sends, for the configured user."""
    try:
        user = client.execute_command("ACL", "WHOAMI")
        user = user.decode() if isinstance(user, bytes) else str(user)
        refused = []
        for name, args in STATE_COMMANDS:
            reply = client.execute_command("ACL", "DRYRUN", user, name, *args)
            if (reply.decode() if isinstance(reply, bytes) else str(reply)) != "OK":
                refused.append(name)
    except RedisError as exc:
        doctor.add("state_commands", WARNING, f"cannot check with ACL DRYRUN ({exc})")
        return
    if refused:
        doctor.add(
            "state_commands",
            FAIL,
            f"user {user!r} may not run {', '.join(refused)} (ACL DRYRUN), which the state store sends",
            f"ACL SETUSER {user} " + " ".join(f"+{c.lower()}" for c in refused),
        )
    else:
        doctor.add("state_commands", OK_, f"every command the state store sends is allowed to {user!r}")
