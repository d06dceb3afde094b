"""Explain an encoding failure: re-walk the value (only after a failure) to find the offending part."""

from __future__ import annotations

from collections.abc import Iterator

import msgpack

from redis_xcom.codec.hooks import PACK_OPTIONS, Encoder, OutOfBand

# Containers the walk descends into; everything else is tried as one leaf.
_SEQUENCES = (list, tuple)
_SETS = (set, frozenset)
# Deeper than msgpack's own nesting limit: the walk stops and reports the place instead.
_MAX_WALK_DEPTH = 600


def explain_unserializable(value: object, error: Exception) -> TypeError:
    """A TypeError naming the type of the first part that cannot be encoded and its path."""
    found = _find(value, "value", 0)
    if found is None:
        path, obj, reason = "value", value, error
    else:
        path, obj, reason = found
    return TypeError(f"cannot serialize object of type {type(obj).__name__!r} at {path}: {reason}")


def _find(obj: object, path: str, depth: int) -> tuple[str, object, Exception] | None:
    if depth > _MAX_WALK_DEPTH:
        return path, obj, ValueError("nested too deeply (msgpack allows about 500 levels)")
    for child_path, child in _children(obj, path):
        found = _find(child, child_path, depth + 1)
        if found is not None:
            return found
    if isinstance(obj, (dict, *_SEQUENCES, *_SETS)):
        return None if depth else _try_leaf(obj, path)
    return _try_leaf(obj, path)


def _children(obj: object, path: str) -> Iterator[tuple[str, object]]:
    if isinstance(obj, dict):
        for key, item in obj.items():
            yield f"{path} key {key!r}", key
            yield f"{path}[{key!r}]", item
    elif isinstance(obj, _SEQUENCES):
        for index, item in enumerate(obj):
            yield f"{path}[{index}]", item
    elif isinstance(obj, _SETS):
        for item in obj:
            yield f"{path} item {item!r}", item


def _try_leaf(obj: object, path: str) -> tuple[str, object, Exception] | None:
    encoder = Encoder(OutOfBand())
    try:
        msgpack.packb(obj, default=encoder, **PACK_OPTIONS)
    except Exception as exc:
        return path, obj, exc
    return None
