"""The decoder under coverage-guided fuzzing (fuzz/decode.py, atheris), briefly: every input decodes
or raises a CodecError; a crash, any other exception, a hang or runaway memory fails the test.
`make fuzz FUZZ_SECONDS=600` runs it for longer."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.version_independent

pytest.importorskip("atheris", reason="atheris (the test extra) has wheels for Linux only")

TARGET = Path(__file__).parent.parent / "fuzz" / "decode.py"
SECONDS = int(os.environ.get("REDIS_XCOM_FUZZ_SECONDS", "30"))


def test_decoder_survives_coverage_guided_fuzzing(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            str(TARGET),
            f"-max_total_time={SECONDS}",
            "-timeout=10",  # one input taking 10 s is a hang
            "-rss_limit_mb=2048",  # and more than 2 GiB a memory bomb
            f"-artifact_prefix={tmp_path}/",
            str(corpus),
        ],
        env={**os.environ, "FUZZ_CORPUS": str(corpus)},
        capture_output=True,
        text=True,
        timeout=SECONDS + 120,
    )
    log = run.stderr[-3000:]
    assert run.returncode == 0, log
    assert "Done" in log and "files found in" in run.stderr, log
    seeded = [p for p in corpus.iterdir() if p.name.startswith("seed-")]
    assert len(seeded) >= 12, "it started from real encoded values"
    assert not list(tmp_path.glob("crash-*")) and not list(tmp_path.glob("oom-*"))
