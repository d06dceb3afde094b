"""The least-privilege ACL of docs/topologies.md, applied to a user of a test server."""

from __future__ import annotations

import redis

# Every command the backend sends (the ACL of docs/topologies.md): values and chunks, the run index (SADD and
# EXPIRE NX/GT in a MULTI), transactions, clear's scans and deletes, the connection's own (PING
# health checks, the client's name and library info, SELECT for db > 0), and the optional reads of
# maxmemory-policy and proto-max-bulk-len, and WAIT for wait_replicas.
DATA_COMMANDS = (
    "+get", "+set", "+sadd", "+srem", "+sscan", "+unlink", "+rpush", "+lrange",
    "+expire", "+ttl", "+multi", "+exec", "+discard", "+scan", "+wait",
)  # fmt: skip
# Lua: only with [redis_xcom] lua_scripts = true (the default); the least-privilege rule leaves it out.
SCRIPT_COMMANDS = ("+evalsha", "+eval")
# CLIENT SETINFO exists from Redis 7.2 (redis-py ignores its refusal on older servers).
CONNECTION_COMMANDS = ("+ping", "+client|setname", "+client|setinfo", "+select")
# Optional: without them the backend warns once that it cannot see the eviction policy.
INSPECTION_COMMANDS = ("+info", "+config|get")


def acl_rule(
    prefix: str, password: str, inspection: tuple[str, ...] = INSPECTION_COMMANDS, scripting: bool = False
) -> list[str]:
    """ACL SETUSER arguments: only keys under prefix, only the backend's commands (Lua if scripting)."""
    return [
        "reset", "on", f">{password}", f"~{prefix}:*", "resetchannels",
        "-@all", *DATA_COMMANDS, *(SCRIPT_COMMANDS if scripting else ()), *CONNECTION_COMMANDS, *inspection,
    ]  # fmt: skip


def add_user(admin: redis.Redis, user: str, rule: list[str]) -> None:
    """ACL SETUSER; a command the server does not have (CLIENT SETINFO before Redis 7.2) is left out."""
    rule = list(rule)
    while True:
        try:
            admin.execute_command("ACL", "SETUSER", user, *rule)
            return
        except redis.ResponseError as exc:
            unknown = [r for r in rule if f"'{r}'" in str(exc) and "Unknown command" in str(exc)]
            if not unknown:
                raise
            rule.remove(unknown[0])


def denials(admin: redis.Redis) -> list[str]:
    """What ACL LOG recorded as refused: 'user: command or key'."""
    return [f"{_text(e['username'])}: {_text(e['object'])} ({_text(e['reason'])})" for e in admin.acl_log()]


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
