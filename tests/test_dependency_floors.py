"""The extras never admit a release with a known hole in what the codec reads from Redis."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib
from packaging.requirements import Requirement

pytestmark = pytest.mark.version_independent

# CVE-2023-47248: pyarrow before 14.0.1 runs code while reading untrusted Arrow IPC (the codec reads
# IPC streams that anyone who can write to Redis may have written).
VULNERABLE = {"pyarrow": ["0.14.1", "13.0.0", "14.0.0"]}


def test_no_extra_admits_a_vulnerable_release() -> None:
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    checked = 0
    for extra, requirements in project["optional-dependencies"].items():
        for text in requirements:
            requirement = Requirement(text)
            for version in VULNERABLE.get(requirement.name, []):
                checked += 1
                assert not requirement.specifier.contains(version, prereleases=True), (extra, text, version)
    assert checked >= 3, "the extras that read Arrow IPC (arrow, pandas, polars) were checked"
