"""Test helpers around keys.py's one key builder."""

from __future__ import annotations

from redis_xcom.keys import XComCoordinates, build_key_and_index


def build_key(prefix: str, coords: XComCoordinates) -> str:
    """The value key of coords (the backend builds it with its run's index key)."""
    return build_key_and_index(prefix, coords)[0]
