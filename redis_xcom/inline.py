"""Whether a value stays inline in the metadata DB ([redis_xcom] inline_max_bytes) instead of going to Redis.

A value stays inline only when Airflow's default backend stores and loads it back exactly, whatever
the metadata DB: plain JSON of exact types (None, bool, int within 64 bits, finite float without an
exponent, str, list, dict with str keys). Anything else (tuples, which JSON turns into lists, bytes,
Decimal, datetime, subclasses such as enums, non-str keys, ...) goes to Redis at any size, so where
a value lives never changes what a pull returns.

The size is the length of the JSON text the DB's JSON column holds (``json.dumps``: ASCII, non-ASCII
escaped). A bounded walk counts it and gives up as soon as the count passes the threshold, so a large
value costs a few steps, never an encoding. The count is exact unless a string needs escaping; then,
for a value still under the threshold by that count, one ``json.dumps`` decides.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

from redis_xcom.keys import REFERENCE_SCHEME

# Airflow's serde and the supervisor carry ints as 64-bit integers.
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
# Deeper values go to Redis: the walk, Airflow's serde and json.dumps all nest per level.
MAX_DEPTH = 64
# Dict keys Airflow's serde reserves for its own markers (__classname__, __var, ...) start with this.
_RESERVED_KEY_START = "__"


class _NotInline(Exception):
    """The value cannot stay inline: a type the default backend does not keep exactly, or too big."""


def kept_inline(value: Any, max_bytes: int) -> bool:
    """Whether value stays in the DB row: Airflow's default backend keeps it exactly, in at most
    max_bytes of JSON text."""
    if max_bytes <= 0:
        return False
    if type(value) is str and value.startswith(REFERENCE_SCHEME):
        return False  # a pull would take it for a reference to Redis
    try:
        length, exact = _json_length(value, max_bytes)
    except _NotInline:
        return False
    if exact:
        return length <= max_bytes
    return len(json.dumps(value)) <= max_bytes


def _json_length(value: Any, limit: int) -> tuple[int, bool]:
    """The length of json.dumps(value) and whether it is exact (else a lower bound).

    Raises _NotInline for a value that cannot stay inline, or once the length passes limit.
    """
    total = 0
    exact = True
    # Iterators of the containers being walked: depth-first, with no recursion.
    stack: list[Iterator[Any]] = []
    item: Any = value
    while True:
        kind = type(item)
        if kind is dict:
            # "{}", ", " between items; each item's key (a str) and ": " are counted below.
            total += 2 + 2 * max(len(item) - 1, 0)
            if len(stack) >= MAX_DEPTH:
                raise _NotInline
            stack.append(_dict_items(item))
        elif kind is list:
            total += 2 + 2 * max(len(item) - 1, 0)
            if len(stack) >= MAX_DEPTH:
                raise _NotInline
            stack.append(iter(item))
        elif kind is str or kind is _DictKey:
            text = item if kind is str else item.text
            size, simple = _str_length(text, limit - total)
            # A key is followed by ": ".
            total += size if kind is str else size + 2
            exact = exact and simple
        elif item is None or item is True:
            total += 4
        elif item is False:
            total += 5
        elif kind is int:
            if not _INT_MIN <= item <= _INT_MAX:
                raise _NotInline
            total += len(int.__repr__(item))
        elif kind is float:
            if not math.isfinite(item):
                raise _NotInline  # NaN and infinities are no JSON
            text = float.__repr__(item)
            # PostgreSQL's JSONB gives an exponent back as an int (1e+16 -> 10000000000000000), -0.0 as 0.0.
            if "e" in text or text == "-0.0":
                raise _NotInline
            total += len(text)
        else:
            raise _NotInline
        if total > limit:
            raise _NotInline
        item = _next(stack)
        if item is _END:
            return total, exact


_END = object()


def _next(stack: list[Iterator[Any]]) -> Any:
    """The next item to count, or _END when the walk is over."""
    while stack:
        for item in stack[-1]:
            return item
        stack.pop()
    return _END


class _DictKey:
    """A dict key on the walk (not copied): its JSON string, then ": "."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


def _dict_items(mapping: dict[Any, Any]) -> Iterator[Any]:
    """A dict's keys (checked here) and values, in turn."""
    for key, item in mapping.items():
        if type(key) is not str or key.startswith(_RESERVED_KEY_START):
            raise _NotInline
        yield _DictKey(key)
        yield item


def _str_length(text: str, budget: int) -> tuple[int, bool]:
    """The JSON length of a string (quotes included; exact=False when escapes make it longer).

    Only looked at closely when it fits the budget, so a huge string costs one len().
    """
    size = len(text) + 2
    if size > budget:
        raise _NotInline
    # No escapes: printable ASCII (DEL and control characters are escaped) without " and \.
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return size, True
    if "\x00" in text:
        raise _NotInline  # PostgreSQL's JSONB refuses \u0000
    try:
        text.encode("utf-8", "strict")
    except UnicodeEncodeError:
        raise _NotInline from None  # a lone surrogate: neither the supervisor nor JSONB takes it
    return size, False
