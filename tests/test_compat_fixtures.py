"""The compatibility policy: a release reads what the releases before it wrote.

tests/fixtures/compat/v<N>/ holds references and stored bytes written by format version N, committed
once and never rewritten. Today's code must parse every reference into the same coordinates, build
the same keys for them, and decode every stored value to the value it was written from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import fakeredis
import numpy as np
import pandas as pd
import pytest

from redis_xcom import keys
from redis_xcom.codec.envelope import VERSION
from tests.fixtures.compat.values import VALUES
from tests.xcom_calls import pull, redis_key

FIXTURES = Path(__file__).parent / "fixtures" / "compat"
VERSIONS = sorted(path for path in FIXTURES.iterdir() if path.is_dir() and path.name.startswith("v"))
ENTRIES = [
    pytest.param(directory, entry, id=f"{directory.name}-{entry['name']}")
    for directory in VERSIONS
    for entry in json.loads((directory / "manifest.json").read_text())["values"]
]


def test_every_format_version_up_to_today_has_fixtures() -> None:
    assert [path.name for path in VERSIONS] == [f"v{n}" for n in range(1, VERSION + 1)]


@pytest.mark.parametrize(("directory", "entry"), ENTRIES)
def test_a_reference_written_then_names_the_same_xcom_today(directory: Path, entry: dict[str, Any]) -> None:
    prefix = json.loads((directory / "manifest.json").read_text())["key_prefix"]
    written = keys.XComCoordinates(**entry["coordinates"])
    key = redis_key(entry["reference"])
    assert keys.parse_key(key, prefix) == written
    # The same coordinates still get the same key and run index: a change is a new key format.
    assert keys.build_key_and_index(prefix, written) == (key, entry["index"])


@pytest.mark.parametrize(("directory", "entry"), ENTRIES)
def test_a_value_written_then_decodes_to_the_same_value_today(
    directory: Path, entry: dict[str, Any], fake_redis: fakeredis.FakeRedis, xcom_settings: pytest.MonkeyPatch
) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    xcom_settings.setenv("AIRFLOW__REDIS_XCOM__KEY_PREFIX", manifest["key_prefix"])
    key = redis_key(entry["reference"])
    parts = [(directory / file).read_bytes() for file in entry["files"]]
    if len(parts) == 1:
        fake_redis.set(key, parts[0], ex=3600)
    else:  # a chunked value: the manifest, then the chunks, as one Redis list
        fake_redis.rpush(key, *parts)
    got = pull(entry["reference"])
    expected = VALUES[entry["name"]][1]()
    assert type(got) is type(expected)
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    elif isinstance(expected, np.ndarray):
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
    else:
        assert got == expected
        if isinstance(expected, dict):
            assert {k: type(v) for k, v in got.items()} == {k: type(v) for k, v in expected.items()}
