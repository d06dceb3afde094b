"""Which server answers, and its own version: Valkey's INFO pins ``redis_version:7.2.4`` for old
clients and names itself in ``server_name`` / ``valkey_version``; Redis has neither field."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# server_name values shown with their usual spelling; any other is shown as the server gives it.
_NAMES = {"redis": "Redis", "valkey": "Valkey"}


@dataclass(frozen=True)
class Engine:
    name: str  # "Redis", "Valkey", or the server_name of another server
    version: str  # the engine's own version, "?" when INFO has none

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def version_tuple(self) -> tuple[int, ...]:
        """(8, 0, 1) for "8.0.1": for comparing versions of the same engine; () when unknown."""
        numbers = []
        for part in self.version.split("."):
            if not part.isdigit():
                break
            numbers.append(int(part))
        return tuple(numbers)


def engine_of(info: Mapping[str, Any]) -> Engine:
    """The engine of an INFO (or INFO server) reply as redis-py parses it."""
    server = str(info.get("server_name") or "redis").strip().lower()
    version = info.get(f"{server}_version") or info.get("redis_version") or "?"
    return Engine(_NAMES.get(server, server), str(version))
