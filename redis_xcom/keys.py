"""XCom coordinates <-> Redis keys, the DB reference format, and the patterns that select keys for clear.

Key layout, readable with ``redis-cli --scan``::

    <prefix>:{<dag_id>/<run_id>}:<task_id>:<map_index>:<key>:<instance>     Airflow 3.4 and later
    <prefix>:{<dag_id>/<run_id>}:<task_id>:<map_index>:<key>                Airflow 3.0 to 3.3

From Airflow 3.4 every attempt and every loop iteration is a task instance of its own with the same
dag, run, task, map index and key, so the instance names which one wrote the value:

* ``ti-<task instance id, 32 hex digits>`` when a task instance (or its trigger) writes its own XCom;
* ``w-<random uuid, 32 hex digits>`` when one task writes another's through coordinates (Airflow
  cannot tell which task instance those resolve to, so every such write gets a key of its own).

``<map_index>`` is what Airflow 3.4's xcom rows show as map index: the task instance's region index
(its map index, or its loop iteration), ``-1`` outside any region, and ``_`` (unknown) for a write
through coordinates. Keys without an instance are those 3.0 to 3.3 write; they keep loading,
clearing and being reclaimed after an upgrade.

Each id is percent-encoded so that it never holds ``% / { } * ? [ ] \\``, spaces or non-ASCII, nor
``:`` outside the hash tag (run ids keep their ``:`` there, for readability). Hence every key has
exactly one ``{``...``}`` (the Redis Cluster hash tag, so all keys of a DAG run share one slot) and
exactly three or four ``:`` after it, whatever the ids hold. Two coordinates never share a key, and a
glob pattern built from encoded ids cannot match outside its selection.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple
from urllib.parse import quote, unquote

from redis_xcom.errors import UntrustedReferenceError

REFERENCE_SCHEME = "redis-xcom://"
# Characters kept as they are: readable, and neither glob syntax nor one of our delimiters.
_SAFE = "-_.~+=,;@!$&'()"
_ALREADY_SAFE = re.compile(r"[A-Za-z0-9\-_.~+=,;@!$&'()]*")
_ALREADY_SAFE_IN_TAG = re.compile(r"[A-Za-z0-9\-_.~+=,;@!$&'():]*")
TASK_INSTANCE = "ti-"
WRITE = "w-"
_INSTANCE = re.compile(r"(?:ti|w)-[0-9a-f]{32}")
_MAP_INDEX = re.compile(r"-?[0-9]+")
UNKNOWN_MAP_INDEX = "_"


class XComCoordinates(NamedTuple):
    """What identifies one XCom value (a tuple: built per push).

    ``instance`` is None for the keys of Airflow 3.0 to 3.3, whose five coordinates were unique;
    ``map_index`` is None only for a 3.4 write through coordinates, whose map index is not known.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int | None
    key: str
    instance: str | None = None

    @property
    def task_instance_id(self) -> uuid.UUID | None:
        """The id of the task instance that wrote the value, when it wrote its own XCom (3.4)."""
        if self.instance is None or not self.instance.startswith(TASK_INSTANCE):
            return None
        return uuid.UUID(hex=self.instance[len(TASK_INSTANCE) :])

    def describe(self) -> str:
        map_index = "unknown" if self.map_index is None else self.map_index
        text = (
            f"XCom(dag_id={self.dag_id!r}, run_id={self.run_id!r}, task_id={self.task_id!r}, "
            f"map_index={map_index}, key={self.key!r}"
        )
        if (ti_id := self.task_instance_id) is not None:
            return f"{text}, task_instance_id={ti_id})"
        return text + ")" if self.instance is None else f"{text}, write={self.instance[len(WRITE) :]})"


def task_instance_of(ti_id: uuid.UUID) -> str:
    """The instance part of the keys one task instance writes for itself."""
    return TASK_INSTANCE + ti_id.hex


def new_write() -> str:
    """The instance part of a write through coordinates: unique, so no two such writes share a key."""
    return WRITE + uuid.uuid4().hex


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
    map_index = UNKNOWN_MAP_INDEX if coords.map_index is None else coords.map_index
    key = f"{tag}:{encode_component(coords.task_id)}:{map_index}:{encode_component(coords.key)}"
    if coords.instance is not None:
        key = f"{key}:{coords.instance}"
    return key, tag + "#index"


def parse_key(redis_key: str, prefix: str | None = None) -> XComCoordinates | None:
    """The coordinates a key was built from, or None when it is not one of our XCom keys.

    With ``prefix``, a key under any other prefix is not ours either.
    """
    head, brace, rest = redis_key.partition("{")
    if prefix is not None and head != prefix + ":":
        return None
    tag, close, tail = rest.partition("}")
    if not brace or not close or not tail.startswith(":"):
        return None
    dag, slash, run = tag.partition("/")
    parts = tail[1:].split(":")
    if not slash or "/" in run or len(parts) not in (3, 4):
        return None
    task, map_index, key = parts[:3]
    instance = parts[3] if len(parts) == 4 else None
    if instance is not None and not _INSTANCE.fullmatch(instance):
        return None
    if map_index == UNKNOWN_MAP_INDEX and instance is not None and instance.startswith(WRITE):
        index: int | None = None
    elif _MAP_INDEX.fullmatch(map_index):
        index = int(map_index)
    else:
        return None
    return XComCoordinates(unquote(dag), unquote(run), unquote(task), index, unquote(key), instance)


def to_reference(redis_key: str) -> str:
    """What the metadata DB row holds (and the UI shows) in place of the value."""
    return REFERENCE_SCHEME + redis_key


def key_of_reference(value: object) -> str | None:
    """The Redis key a DB value names, or None when the value is not a reference at all.

    Rows are user input (REST, the UI, DAG code): the key named here is not yet known to be ours;
    ``own_key_of_reference`` is the one that says so.
    """
    if isinstance(value, str) and value.startswith(REFERENCE_SCHEME):
        return value[len(REFERENCE_SCHEME) :]
    return None


def own_key_of_reference(value: object, prefix: str) -> tuple[str, XComCoordinates] | None:
    """The key and coordinates of a reference to one of our values under ``prefix``.

    None when the value is no reference at all (inline values, REST rows, rows from before the
    backend). A reference naming anything else is refused with UntrustedReferenceError: it could name
    another DAG's value, or a key that is no XCom (a Celery queue in a shared Redis).
    """
    redis_key = key_of_reference(value)
    if redis_key is None:
        return None
    coords = parse_key(redis_key, prefix)
    if coords is None:
        raise UntrustedReferenceError(
            f"the row's reference {value!r} names no redis-xcom value under key_prefix {prefix!r}; it "
            "was not written by this backend (it may have been edited through the REST API or the UI), "
            "so it is neither read nor deleted. Delete or correct the row."
        )
    return redis_key, coords


def belongs_to_row(
    coords: XComCoordinates,
    *,
    dag_id: str,
    run_id: str,
    task_id: str,
    key: str,
    map_index: int | None = None,
    task_instance_id: uuid.UUID | str | None = None,
) -> bool:
    """Whether a reference's coordinates are those of the row holding it (None: not known, not checked).

    A value of 3.4 written by a task instance for itself must name the row's task instance: that is
    what keeps one attempt's or iteration's row from showing another's value.
    """
    if (coords.dag_id, coords.run_id, coords.task_id, coords.key) != (dag_id, run_id, task_id, key):
        return False
    if map_index is not None and coords.map_index is not None and coords.map_index != map_index:
        return False
    own = coords.task_instance_id
    if task_instance_id is None or own is None:
        return True
    return own == uuid.UUID(str(task_instance_id))


@dataclass(frozen=True)
class Selection:
    """Which XComs a clear deletes; None means any."""

    dag_id: str
    run_id: str | None = None
    task_id: str | None = None
    map_index: int | None = None
    key: str | None = None

    def pattern(self, prefix: str) -> str:
        """A SCAN MATCH pattern for this selection; ids are encoded, so they hold no glob syntax.

        It ends in ``*`` so that it matches the keys of every task instance (3.4) as well as those
        without an instance (3.0 to 3.3); ``contains`` then checks each key exactly.
        """

        run = "*" if self.run_id is None else encode_tag_component(self.run_id)
        task = "*" if self.task_id is None else encode_component(self.task_id)
        map_index = "*" if self.map_index is None else str(self.map_index)
        key = "" if self.key is None else encode_component(self.key)
        return f"{prefix}:{{{encode_tag_component(self.dag_id)}/{run}}}:{task}:{map_index}:{key}*"

    def contains(self, coords: XComCoordinates) -> bool:
        """The exact check made on every scanned key before it is deleted.

        A value whose map index is unknown (a 3.4 write through coordinates) is in no selection of
        one map index: clearing its run or task takes it.
        """
        return (
            coords.dag_id == self.dag_id
            and self.run_id in (None, coords.run_id)
            and self.task_id in (None, coords.task_id)
            and (self.map_index is None or self.map_index == coords.map_index)
            and self.key in (None, coords.key)
        )
