"""What one decode may build, relative to the value's recorded length, whatever the value's shape.

Bytes in Redis can be written by anyone with access to it, and a few stored bytes can describe a
great deal of memory: an empty map is one byte and a Python dict, an Arrow view or a numpy array of
a zero-width dtype reuses or needs no bytes at all. The bounds here count what a decode builds,
not the shapes that build it:

    objects    maps, arrays and extension values (a set counts SET_COST): at most one per
               BYTES_PER_OBJECT bytes of the recorded length, past FREE_OBJECTS. A cheap scan of
               the body finds the values that could exceed it; only those are decoded with
               counting hooks, which stop the decode as the allowance runs out, so the bound
               holds by construction.
    elements   what numpy arrays and Arrow tables materialize (an element, plus its bytes for
               Arrow): ELEMENTS_PER_BYTE per stored byte of each, and FREE_ELEMENTS shared by the
               whole decode, so that many small values cannot each claim a free allowance.
    hashes     maps and sets of FLOOD_CHECK_MIN items or more whose keys share one hash value
               (ints', tuples' and UUIDs' hashes are not randomized) would take quadratic time:
               sets are checked as a whole; a map that large stops msgpack's first pass, and the
               second watches the extension values its keys are made of (HashWatch).
    region     out-of-band buffers are referenced once: references add up to the region at most.

A crafted or corrupt value is refused with DecodeLimitError before it is built, or as soon as it
outgrows its allowance.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Any

from redis_xcom.errors import DecodeLimitError

# A Python container costs 56 bytes or more (an empty dict 64, a set 216) plus its slot in its
# parent: one per 4 recorded bytes keeps containers within about 20x the recorded length.
BYTES_PER_OBJECT = 4
# Values of up to a million containers decode without a scan (about 70 MB of empty dicts).
FREE_OBJECTS = 1 << 20
# One element per stored bit (a bool column), and a free allowance shared by the decode.
ELEMENTS_PER_BYTE = 8
FREE_ELEMENTS = 1 << 22
# Maps and sets from this size are checked for keys sharing one hash value.
FLOOD_CHECK_MIN = 1024
FLOOD_SHARED_HASHES = 64
# msgpack refuses larger maps (ValueError), and the caller decodes again with the hash check.
GUARDED_MAP_LEN = FLOOD_CHECK_MIN - 1
# The fewest bytes that can hold a map of FLOOD_CHECK_MIN entries (a key and a value, a byte each).
GUARDED_MIN_BYTES = 2 * FLOOD_CHECK_MIN

# A set (216 bytes empty) costs four lists; every other extension value (a datetime, a Decimal,
# a tuple) about one.
SET_COST = 4

# Bytes that start a msgpack map, array or extension: fixmap, fixarray, array 16/32, map 16/32,
# fixext 1-16, ext 8/16/32. Every object the bound counts starts with one of them.
_EXT_MARKERS = frozenset([*range(0xD4, 0xD9), 0xC7, 0xC8, 0xC9])
_MARKERS = frozenset([*range(0x80, 0xA0), 0xDC, 0xDD, 0xDE, 0xDF, *_EXT_MARKERS])
_OTHER_BYTES = bytes(b for b in range(256) if b not in _MARKERS)
_NOT_EXT_MARKERS = bytes(b for b in range(256) if b not in _EXT_MARKERS)
# The scan copies this much at a time (cache-sized), never the whole body.
_SCAN_CHUNK = 1 << 18


class NeedsBudget(Exception):
    """Raised by a decoder that needs the decode's shared allowance where there is none (the small
    values' fast path): the value is decoded again on the general path, which has one."""


def refuse_hash_flood(keys: Iterable[object], count: int, what: str) -> None:
    """DecodeLimitError if more than FLOOD_SHARED_HASHES of count distinct keys share one hash."""
    # Counting hashes is linear: equal hash values are equal ints, which never collide. The keys
    # of a map or items of a set a writer stored are distinct, so a shared hash is a collision.
    ((_, shared),) = collections.Counter(map(hash, keys)).most_common(1)
    if shared > FLOOD_SHARED_HASHES:
        raise DecodeLimitError(
            f"a {what} of {count} items, {shared} of which share one hash value: "
            "refused, since building it would take quadratic time (a crafted value)"
        )


def guarded_map(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    """msgpack's object_pairs_hook: a dict, refused first if its keys flood one hash value."""
    if len(pairs) >= FLOOD_CHECK_MIN:
        refuse_hash_flood((key for key, _ in pairs), len(pairs), "dict")
    return dict(pairs)


class HashWatch:
    """The distinct extension values of one decode that share each hash value.

    A map's keys that share one hash are distinct values sharing it; msgpack builds the map in C
    as its keys come from the extension hook, so watching what the hook returns stops a flood
    after FLOOD_SHARED_HASHES colliding keys, before building it turns quadratic. Equal values
    (a value repeated in a list) are one value here, so real data never comes near the limit.
    """

    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen: dict[int, object] = {}

    def see(self, value: object) -> None:
        try:
            key = hash(value)
        except Exception:  # unhashable (a list inside a tuple): it cannot be a key
            return
        first = self.seen.setdefault(key, value)
        if first is value:  # the common case: the first value with this hash
            return
        if _equal(first, value):
            return
        # A second distinct value with this hash: keep the distinct ones (a list, rarely made).
        bucket = first if type(first) is _Bucket else _Bucket([first])
        if not any(_equal(seen, value) for seen in bucket):
            bucket.append(value)
            if len(bucket) > FLOOD_SHARED_HASHES:
                raise DecodeLimitError(
                    f"more than {FLOOD_SHARED_HASHES} distinct values share one hash value: refused, "
                    "since a map keyed by them would take quadratic time to build (a crafted value)"
                )
        self.seen[key] = bucket


def _equal(a: object, b: object) -> bool:
    """a == b, False where comparing them fails (a user class's __eq__)."""
    try:
        return bool(a is b or a == b)
    except Exception:
        return False


class _Bucket(list[object]):
    """Distinct values sharing one hash (a type of its own: a decoded value is never one)."""


def most_objects(body: Any) -> int:
    """An upper bound of the objects body can build: every byte that could start a map or an array
    counts one, every byte that could start an extension value SET_COST (it may be a set)."""
    view = memoryview(body).cast("B")
    count = 0
    for start in range(0, len(view), _SCAN_CHUNK):
        markers = view[start : start + _SCAN_CHUNK].tobytes().translate(None, _OTHER_BYTES)
        # The markers are few: counting the extension ones among them costs next to nothing.
        count += len(markers) + (SET_COST - 1) * len(markers.translate(None, _NOT_EXT_MARKERS))
    return count


class DecodeBudget:
    """What one decode (on the general path) may still build; shared by every hook it calls."""

    __slots__ = ("counting", "elements_left", "objects_left", "recorded", "region_left")

    def __init__(self, recorded: int, region: int = 0) -> None:
        self.recorded = recorded
        self.objects_left = FREE_OBJECTS + recorded // BYTES_PER_OBJECT
        self.elements_left = FREE_ELEMENTS
        self.region_left = region
        # True: the body may hold more objects than allowed, and msgpack counts them as it builds
        # (set before the decode's Decoder is made: it reads this once).
        self.counting = False

    def must_count(self, body: Any) -> bool:
        """Whether body could hold more objects than allowed: only then are they counted one by one."""
        # An empty set (3 bytes: a fixext and an empty array) costs the most per byte: 5 in 3.
        return len(body) * (SET_COST + 1) // 3 > self.objects_left and most_objects(body) > self.objects_left

    def spend_object(self, cost: int = 1) -> None:
        self.objects_left -= cost
        if self.objects_left < 0:
            allowed = FREE_OBJECTS + self.recorded // BYTES_PER_OBJECT
            raise DecodeLimitError(
                f"the value builds more than {allowed} objects (maps, arrays, extension values) from "
                f"{self.recorded} recorded bytes: refused, since each costs 50 bytes or more of memory "
                f"(at most one per {BYTES_PER_OBJECT} recorded bytes past the first {FREE_OBJECTS}); "
                "a crafted or corrupt value. Store many small records as a numpy array or a DataFrame."
            )

    def count_list(self, items: list[Any]) -> list[Any]:
        """msgpack's list_hook while counting."""
        self.spend_object()
        return items

    def count_map(self, pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
        """msgpack's object_pairs_hook while counting."""
        self.spend_object()
        return guarded_map(pairs)

    def snapshot(self) -> tuple[int, int, int]:
        """What is left now: a decode that starts over (the map check's second pass) restores it."""
        return self.objects_left, self.elements_left, self.region_left

    def restore(self, state: tuple[int, int, int]) -> None:
        self.objects_left, self.elements_left, self.region_left = state

    def spend_region(self, length: int) -> None:
        """An out-of-band reference of length bytes: the references add up to the region at most."""
        self.region_left -= length
        if self.region_left < 0:
            raise DecodeLimitError(
                "out-of-band buffer references add up to more than the stored buffers: refused, since "
                "each reference is copied (buffers referenced twice; a crafted or corrupt value)"
            )


def spend_elements(budget: DecodeBudget | None, needed: int, stored: int, what: str) -> None:
    """Charge needed elements (and bytes) against stored bytes, then against the decode's free allowance.

    NeedsBudget where the free allowance is needed and there is no budget (the fast path).
    """
    excess = needed - ELEMENTS_PER_BYTE * stored
    if excess <= 0:
        return
    if budget is None:
        raise NeedsBudget
    if excess > budget.elements_left:
        raise DecodeLimitError(
            f"{what} materializes {needed} elements and bytes from {stored} stored bytes: refused, "
            f"since that costs far more memory than the value's size (at most {ELEMENTS_PER_BYTE} per "
            f"stored byte, and {FREE_ELEMENTS} more for the whole value; a crafted or corrupt value)"
        )
    budget.elements_left -= excess
