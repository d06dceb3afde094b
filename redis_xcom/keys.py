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
    elif (digits := map_index[1:] if map_index[:1] == "-" else map_index).isdigit() and digits.isascii():
        index = int(map_index)
    else:
        return None
    if "%" not in redis_key:  # nothing escaped (most keys): no unquote calls
        return XComCoordinates(dag, run, task, index, key, instance)
    return XComCoordinates(unquote(dag), unquote(run), unquote(task), index, unquote(key), instance)


def to_reference(redis_key: str) -> str:
    """What the metadata DB row holds (and the UI shows) in place of the value."""
    return REFERENCE_SCHEME + redis_key


def key_of_reference(value: object) -> str | None:
    """The Redis key a DB value names, or None when the value is not a reference at all.

    Rows are user input (REST, the UI, DAG code): the key named here is not yet known to be ours;
    ``owned_key`` is the one that says so.
    """
    if isinstance(value, str) and value.startswith(REFERENCE_SCHEME):
        return value[len(REFERENCE_SCHEME) :]
    return None


class RowCoordinates(NamedTuple):
    """Where an xcom row is, as far as its reader knows it; None: not known, so not compared.

    ``map_index`` is the index rows and keys record (on Airflow 3.4 the task instance's region index:
    the loop iteration of a task in a loop). ``public_map_index`` is the one Airflow's requests name
    (-1 for a loop iteration): it says nothing of a 3.4 key, so it is compared only with the keys of
    3.0 to 3.3, which predate loops.
    """

    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    key: str | None = None
    map_index: int | None = None
    public_map_index: int | None = None
    task_instance_id: uuid.UUID | None = None
    try_number: int | None = None  # named in messages only: the task instance id is what is compared

    def describe(self) -> str:
        """The row as messages name it: ``XCom(dag_id=..., ..., key=...)``, with what is known of it."""
        map_index = self.map_index if self.map_index is not None else self.public_map_index
        known = [
            ("dag_id", self.dag_id),
            ("run_id", self.run_id),
            ("task_id", self.task_id),
            ("map_index", map_index),
            ("key", self.key),
            ("try_number", self.try_number),
        ]
        shown = ", ".join(f"{name}={value!r}" for name, value in known if value is not None)
        return f"XCom({shown})" if shown else "An XCom row"


def as_uuid(value: object) -> uuid.UUID | None:
    """A task instance id as compared: drivers and Airflow versions hand it back as UUID or text."""
    return None if value is None else uuid.UUID(str(value))


def owned_key(value: object, row: RowCoordinates, prefix: str, *, unbound_legacy: bool = True) -> str | None:
    """The Redis key of the row's own value; None when the row holds no reference at all (inline
    values, REST rows, rows from before the backend).

    The check every reader of a row makes (pulls, purge, gc, the UI): anything but a reference to one
    of our values under ``prefix`` that belongs to this row (``belongs_to_row``) raises
    UntrustedReferenceError naming the row, and nothing is to be read, probed or deleted for it. With
    ``unbound_legacy`` False (Airflow 3.4's load_value), a reference in the form 3.0 to 3.3 wrote,
    which anyone can compute from a DAG's ids, is followed only for a row whose DAG is known.
    """
    redis_key = key_of_reference(value)
    if redis_key is None:
        return None
    coords = parse_key(redis_key, prefix)
    if coords is None:
        raise UntrustedReferenceError(
            _untrusted(row, f"its reference {value!r} names no redis-xcom value under key_prefix {prefix!r}")
        )
    if not belongs_to_row(coords, row):
        why = f"its reference names {coords.describe()}, not this row's value"
        raise UntrustedReferenceError(_untrusted(row, why))
    if coords.instance is None and not unbound_legacy and row.dag_id is None:
        raise UntrustedReferenceError(
            _untrusted(
                row,
                f"its reference names {coords.describe()} in the form Airflow 3.0 to 3.3 wrote (no task "
                "instance), which anyone can compute from a DAG's ids; on Airflow 3.4 it is followed only "
                "when the pull names the row's DAG, as xcom_pull and a task's mapped inputs do",
            )
        )
    return redis_key


def _untrusted(row: RowCoordinates, why: str) -> str:
    return (
        f"{row.describe()}: {why}. The row was not written by redis-xcom for this XCom (it may have "
        "been edited through the REST API or the UI), so nothing is read from Redis for it, probed or "
        "deleted. Delete or correct the row, or clear and re-run the task that writes it."
    )


def belongs_to_row(coords: XComCoordinates, row: RowCoordinates, *, confirmed: bool = False) -> bool:
    """Whether a reference's coordinates are those of the row holding it: the one ownership check.

    A coordinate of the row its reader does not know is not compared, unless ``confirmed`` (a purge
    deletes nothing on a guess): then whatever identifies the value must be known of the row and
    equal. A value of 3.4 written by a task instance for itself is identified by that task instance
    (one attempt's or iteration's row never resolves to another's); a write through coordinates by
    a random id no row records, so it is never confirmed.
    """
    for theirs, ours, identifies in _compared(coords, row):
        if ours is None:
            if confirmed and identifies:
                return False
        # A value that does not record a coordinate (a write through coordinates' map index) cannot
        # contradict the row's.
        elif theirs is not None and theirs != ours:
            return False
    return True


def _compared(coords: XComCoordinates, row: RowCoordinates) -> list[tuple[object, object, bool]]:
    """(the value's coordinate, the row's, whether it identifies the value) for each coordinate."""
    pairs: list[tuple[object, object, bool]] = [
        (coords.dag_id, row.dag_id, True),
        (coords.run_id, row.run_id, True),
        (coords.task_id, row.task_id, True),
        (coords.key, row.key, True),
    ]
    if coords.instance is None:
        # 3.0 to 3.3 (no loops): the map index identifies the value, whichever one the reader knows.
        known = row.map_index if row.map_index is not None else row.public_map_index
        return [*pairs, (coords.map_index, known, True)]
    if coords.task_instance_id is not None:
        # The task instance fixes the region index too; a row that records it must agree.
        instance = (coords.task_instance_id, row.task_instance_id, True)
        return [*pairs, instance, (coords.map_index, row.map_index, False)]
    return [*pairs, (coords.instance, None, True), (coords.map_index, row.map_index, False)]


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
        within = RowCoordinates(self.dag_id, self.run_id, self.task_id, self.key, self.map_index)
        return belongs_to_row(coords, within) and (self.map_index is None or coords.map_index is not None)
