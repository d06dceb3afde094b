"""XCom coordinates <-> Redis keys, the DB reference format, and the patterns that select keys for clear.

Key layout, readable with ``redis-cli --scan``::

    <prefix>:{<dag_id>/<run_id>}:<task_id>:<map_index>:<key>

Each id is percent-encoded so that it never holds ``% / { } * ? [ ] \\``, spaces or non-ASCII, nor
``:`` outside the hash tag (run ids keep their ``:`` there, for readability). Hence every key has
exactly one ``{``...``}`` (the Redis Cluster hash tag, so all keys of a DAG run share one slot) and
exactly three ``:`` after it, whatever the ids hold. Two coordinates never
share a key, and a glob pattern built from encoded ids cannot match outside its selection.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, unquote

REFERENCE_SCHEME = "redis-xcom://"
# Characters kept as they are: readable, and neither glob syntax nor one of our delimiters.
_SAFE = "-_.~+=,;@!$&'()"
_ALREADY_SAFE = re.compile(r"[A-Za-z0-9\-_.~+=,;@!$&'()]*")
_ALREADY_SAFE_IN_TAG = re.compile(r"[A-Za-z0-9\-_.~+=,;@!$&'():]*")


class XComCoordinates(NamedTuple):
    """What identifies one XCom: the five coordinates Airflow keys it by (a tuple: built per push)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    key: str

    def describe(self) -> str:
        return (
            f"XCom(dag_id={self.dag_id!r}, run_id={self.run_id!r}, task_id={self.task_id!r}, "
            f"map_index={self.map_index}, key={self.key!r})"
        )


def encode_component(text: str) -> str:
    """Percent-encode one id; most ids are already safe and skip the encoder."""
    if _ALREADY_SAFE.fullmatch(text):
        return text
    return quote(text, safe=_SAFE)


def encode_tag_component(text: str) -> str:
    """Percent-encode a dag or run id; inside the hash tag a ``:`` is no delimiter and stays."""
    if _ALREADY_SAFE_IN_TAG.fullmatch(text):
        return text
    return quote(text, safe=_SAFE + ":")


def run_tag(prefix: str, dag_id: str, run_id: str) -> str:
    """The part of every key of one DAG run up to and including its hash tag."""
    return f"{prefix}:{{{encode_tag_component(dag_id)}/{encode_tag_component(run_id)}}}"


def run_index_key(prefix: str, dag_id: str, run_id: str) -> str:
    """The set naming every value key of one DAG run, so a run-level clear never scans the keyspace.

    It shares the run's hash tag; nothing follows the tag with ``#`` in an XCom key (ids are encoded
    and a ``:`` always follows the tag), so it never passes for an XCom and no clear pattern matches it.
    """
    return run_tag(prefix, dag_id, run_id) + "#index"


def run_index_of(redis_key: str) -> str | None:
    """The index of the run a value key belongs to, or None for a key that is not an XCom key."""
    if parse_key(redis_key) is None:
        return None
    return redis_key[: redis_key.index("}") + 1] + "#index"


def group_by_run_index(redis_keys: Iterable[str]) -> dict[str, list[str]]:
    """XCom keys grouped under their run's index (keys that are not XCom keys are left out)."""
    groups: dict[str, list[str]] = {}
    for redis_key in redis_keys:
        index = run_index_of(redis_key)
        if index is not None:
            groups.setdefault(index, []).append(redis_key)
    return groups


def build_key(prefix: str, coords: XComCoordinates) -> str:
    return build_key_and_index(prefix, coords)[0]


# A task pushes and pulls the same few coordinates: three regex checks and two f-strings per push
# become one dict lookup (bounded, so a long-lived process never grows it without end).
@functools.lru_cache(maxsize=1024)
def build_key_and_index(prefix: str, coords: XComCoordinates) -> tuple[str, str]:
    """The value key of coords and its run's index key (the run tag is encoded once for both)."""
    tag = run_tag(prefix, coords.dag_id, coords.run_id)
    key = f"{tag}:{encode_component(coords.task_id)}:{coords.map_index}:{encode_component(coords.key)}"
    return key, tag + "#index"


def parse_key(redis_key: str) -> XComCoordinates | None:
    """The coordinates a key was built from, or None when it is not one of our XCom keys."""
    _, brace, rest = redis_key.partition("{")
    tag, close, tail = rest.partition("}")
    if not brace or not close or not tail.startswith(":"):
        return None
    dag, slash, run = tag.partition("/")
    parts = tail[1:].split(":")
    if not slash or "/" in run or len(parts) != 3:
        return None
    task, map_index, key = parts
    if not re.fullmatch(r"-?[0-9]+", map_index):
        return None
    return XComCoordinates(unquote(dag), unquote(run), unquote(task), int(map_index), unquote(key))


def to_reference(redis_key: str) -> str:
    """What the metadata DB row holds (and the UI shows) in place of the value."""
    return REFERENCE_SCHEME + redis_key


def key_of_reference(value: object) -> str | None:
    """The Redis key a DB value refers to, or None when the value is not a reference of ours."""
    if isinstance(value, str) and value.startswith(REFERENCE_SCHEME):
        return value[len(REFERENCE_SCHEME) :]
    return None


@dataclass(frozen=True)
class Selection:
    """Which XComs a clear deletes; None means any."""

    dag_id: str
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    key: str | None = None

    def pattern(self, prefix: str) -> str:
        """A SCAN MATCH pattern for this selection; ids are encoded, so they hold no glob syntax."""

        run = "*" if self.run_id is None else encode_tag_component(self.run_id)
        task = "*" if self.task_id is None else encode_component(self.task_id)
        map_index = "*" if self.map_index is None else str(self.map_index)
        key = "*" if self.key is None else encode_component(self.key)
        return f"{prefix}:{{{encode_tag_component(self.dag_id)}/{run}}}:{task}:{map_index}:{key}"

    def contains(self, coords: XComCoordinates) -> bool:
        """The exact check made on every scanned key before it is deleted."""
        return (
            coords.dag_id == self.dag_id
            and self.run_id in (None, coords.run_id)
            and self.task_id in (None, coords.task_id)
            and self.map_index in (None, coords.map_index)
            and self.key in (None, coords.key)
        )
