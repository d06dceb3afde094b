"""Bytes in Redis name classes: a reader that must not run user code never imports them, and advice
to allow a class is given only for a real dotted name."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from redis_xcom.codec import HEADER_SIZE, Codec, SerializedForm
from redis_xcom.codec.envelope import HEADER, seal
from redis_xcom.errors import DisallowedClassError


@dataclasses.dataclass
class Sample:
    name: str


def _renamed(encoded: bytes, old: bytes, new: bytes) -> bytes:
    """The value with a class name of the same length swapped in, re-sealed (a valid checksum)."""
    assert len(old) == len(new)
    payload = encoded[HEADER_SIZE:].replace(old, new)
    flags = HEADER.unpack_from(encoded)[0][3]
    return b"".join(bytes(p) for p in seal([payload], flags, 0, len(payload)))


def test_a_reader_that_does_not_rebuild_classes_gets_the_serialized_form_and_imports_nothing() -> None:
    original = Codec().encode({"s": Sample("a")})
    name = f"{__name__}.Sample".encode()
    planted = b"tests.never_imported_x" + b"." + b"S" * (len(name) - 23)
    forged = _renamed(original, name, planted)
    shown = Codec(rebuild_classes=False).decode(forged)
    assert shown == {"s": SerializedForm(planted.decode(), 0, {"name": "a"})}
    assert "tests.never_imported_x" not in sys.modules


def test_refusal_advice_never_quotes_a_crafted_class_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from redis_xcom.airflow_compat import airflow_serde

    serde = airflow_serde()
    for name in ("_get_patterns", "_get_regexp_patterns", "_match_glob", "_match_regexp"):
        getattr(serde, name).cache_clear()
    monkeypatch.setenv("AIRFLOW__CORE__ALLOWED_DESERIALIZATION_CLASSES", "airflow.*")
    try:
        original = Codec().encode(Sample("a"))
        name = f"{__name__}.Sample".encode()
        # A name holding a newline and a quote: copied into a config file it would inject a line.
        crafted = (b"x\n" + b"'" + b"y" * len(name))[: len(name)]
        with pytest.raises(DisallowedClassError) as refused:
            Codec().decode(_renamed(original, name, crafted))
        assert "\n" not in str(refused.value) and "not a Python dotted name" in str(refused.value)
        with pytest.raises(DisallowedClassError, match=r"Add it \(or a glob such as 'tests\.test_security"):
            Codec().decode(original)
    finally:
        for name_ in ("_get_patterns", "_get_regexp_patterns", "_match_glob", "_match_regexp"):
            getattr(serde, name_).cache_clear()
