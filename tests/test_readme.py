"""The README is the landing page: short, its two commands the ones CI runs, its links alive."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.version_independent

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_readme_stays_a_landing_page() -> None:
    lines = README.count("\n")
    assert lines <= 250, f"README.md has {lines} lines: move details into a page of docs/ and link it"


def test_the_two_commands_are_make_targets_and_ci_runs_the_test_command() -> None:
    assert "make demo   # " in README and "make test   # " in README
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo: ", makefile, re.M) and re.search(r"^test: ", makefile, re.M)
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert re.search(r'^STAGES=\("make test" ', ci, re.M), "CI's first stage is the README's test command"


def test_every_relative_link_of_the_readme_names_a_file_of_the_repository() -> None:
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README)
    relative = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert relative, "the README links into docs/"
    missing = [t for t in relative if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_the_benchmark_figures_are_the_generated_table() -> None:
    """README.md quotes benchmarks/results/SUMMARY.md (written by benchmarks/report.py), never by hand."""
    summary = (ROOT / "benchmarks" / "results" / "SUMMARY.md").read_text(encoding="utf-8")
    start = README.index("<!-- benchmark-summary: start")
    end = README.index("<!-- benchmark-summary: end -->")
    block = README[README.index("\n", start) + 1 : end].strip()
    assert block == summary.strip(), "run `python -m benchmarks --report-only` to rewrite README.md's table"
