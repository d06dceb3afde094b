"""The benchmark suite keeps working: its smoke size runs end to end and writes sane results.

Benchmarks are programs, not timed tests: nothing here checks a speed, only that the figures exist
and make sense (positive times, every backend's DAG run succeeded, one round trip for get_all).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# The smoke run starts Airflow runs of four backends, a deployment and a cluster: several minutes
# while another xdist worker shares the machine.
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench-results")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--smoke", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1400,
        check=False,
    )
    assert proc.returncode == 0, (
        f"python -m benchmarks --smoke failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    )
    return out


def _load(results: Path, name: str) -> dict:
    path = results / f"{name}.json"
    assert path.is_file(), f"{name}.json missing; found {sorted(p.name for p in results.iterdir())}"
    return json.loads(path.read_text())


def _positive(x: float) -> bool:
    return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def test_backend_figures(results: Path) -> None:
    doc = _load(results, "backend")
    assert doc["smoke"] is True
    assert {r["shape"] for r in doc["rows"]} >= {"small dict", "1 KB str"}
    for row in doc["rows"]:
        assert all(_positive(row[k]) for k in ("bare_setget_s", "backend_s", "codec_only_s", "ratio_median"))
        assert row["ratio_p25"] <= row["ratio_median"] <= row["ratio_p75"]
    assert doc["goals"] and all(isinstance(g["met"], bool) for g in doc["goals"])


def test_scaling_figures(results: Path) -> None:
    doc = _load(results, "scaling")
    # get_all is one pipeline whatever N; per-item pulls pay one round trip each.
    for row in doc["pull"]:
        assert row["round_trips_get_all"] == 1
        assert row["round_trips_per_item"] == row["n"]
    assert [r["unrelated_keys"] for r in doc["clear"]] == [0, 1000]
    assert all(_positive(r["backend_clear_s"]["median"]) for r in doc["clear"])


def test_airflow_runs_succeeded_for_every_backend_and_db(results: Path) -> None:
    doc = _load(results, "airflow")
    on_postgres = {r["backend"]: r for r in doc["runs"] if r["db"] == "postgres"}
    assert set(on_postgres) == {"default", "objectstorage_s3", "objectstorage_file", "redis_xcom"}
    assert {r["db"] for r in doc["runs"]} == {"postgres", "sqlite"}
    for run in doc["runs"]:
        assert run["ok"], run.get("log_tail")
        assert _positive(run["xcom_phase_s"]) and _positive(run["wall_s"])
    samples = {b: r["xcom_value_sample"] for b, r in on_postgres.items()}
    assert samples["redis_xcom"].startswith('"redis-xcom://')
    assert samples["objectstorage_file"].startswith('"file://')
    # Above the 1 MB threshold the value went to S3 (moto), gzip-compressed: the row is its path.
    assert samples["objectstorage_s3"].startswith('"s3://')
    in_s3 = on_postgres["objectstorage_s3"]["payload_bytes_outside_db"]
    assert 0 < in_s3 < run_payload(on_postgres["default"])
    # The default backend's values are in the xcom table; the others keep a short reference there.
    assert on_postgres["default"]["xcom_value_bytes"] >= run_payload(on_postgres["default"])
    assert on_postgres["redis_xcom"]["xcom_value_bytes"] < 4096
    assert {s["size"] for s in doc["skipped"]}  # the skipped grid is stated, not hidden


def run_payload(run: dict) -> int:
    return int(run["size"]) * int(run["n"])


def test_deployment_run_and_worker_memory(results: Path) -> None:
    doc = _load(results, "deployment")
    (row,) = doc["rows"]
    ours = row["backends"]["redis_xcom"]
    assert ours["errors"] == 0 and ours["runs"] == 1  # the consumer checked every value
    assert _positive(ours["dag_run_s"]["median"]) and _positive(ours["cpu_s"]["api_server"])
    memory = doc["memory"]["backends"]["redis_xcom"]
    assert memory["run"]["ok"]
    for role, tasks in (("produce", doc["memory"]["n"]), ("consume", 1)):
        assert memory[role]["tasks"] == tasks
        # The value itself is in the task's memory while it is pushed or pulled: at least 1x the payload.
        assert memory[role]["task"]["ratio_to_payload"]["median"] >= 0.9


def test_cluster_figures(results: Path) -> None:
    doc = _load(results, "cluster")
    assert {r["shape"] for r in doc["rows"]} == {"small dict", "1 MB bytes"}
    for row in doc["rows"]:
        assert all(_positive(row[k]) for k in ("bare_setget_s", "backend_s", "ratio_median"))
        assert row["ratio_p25"] <= row["ratio_median"] <= row["ratio_p75"]
    spread = doc["spread"]
    # One value and one run index per run, every key on some master, every master holding some.
    assert sum(spread["keys_per_master"].values()) == 2 * spread["runs"]
    assert len(spread["keys_per_master"]) == 3 and min(spread["keys_per_master"].values()) > 0
    assert spread["max_over_mean"] >= 1.0


def test_hybrid_figures(results: Path) -> None:
    doc = _load(results, "hybrid")
    variants = {"default", "inline_on", "inline_off", "bare_redis"}
    assert doc["threshold"] > 0 and len(doc["rows"]) >= 5
    for row in doc["rows"]:
        assert set(row["seconds"]) == variants and all(_positive(s) for s in row["seconds"].values())
        assert all(
            _positive(row[k]) for k in ("inline_on_over_default", "inline_on_over_inline_off", "decision_s")
        )
    # Every small value stayed inline with the threshold; the large one went to Redis all the same.
    assert [row["inline"] for row in doc["rows"]] == [True] * (len(doc["rows"]) - 1) + [False]


def test_state_store_figures(results: Path) -> None:
    """Every state store backend answered set+get at every size (the benchmark checks each returns the
    value it was given before timing it)."""
    from benchmarks.bench_state_store import COMPETITORS, SIZES

    doc = _load(results, "state_store")
    assert [row["bytes"] for row in doc["rows"]] == list(SIZES)
    for row in doc["rows"]:
        assert set(row["seconds"]) == set(COMPETITORS) and all(_positive(s) for s in row["seconds"].values())
        assert all(_positive(r) for r in row["others_over_ours"].values())
    assert doc["metadata_db"]["postgres"].startswith("PostgreSQL")
    assert len(doc["goals"]) == len(SIZES) * (len(COMPETITORS) - 1)


def test_report_and_chart(results: Path) -> None:
    text = (results / "RESULTS.md").read_text()
    assert "## Goals" in text and "SMOKE RUN" in text
    for section in (
        "Backend push+pull",
        "End to end in Airflow",
        "A real deployment",
        "Scaling",
        "Hybrid mode",
        "State store",
    ):
        assert section in text
    summary = (results / "SUMMARY.md").read_text()
    assert "SMOKE RUN" in summary and "| what is measured |" in summary
    png = (results / "chart.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000


def test_vs_commit_measures_both_trees() -> None:
    """The side-by-side run against an earlier commit measures that commit's package, not this one."""
    tiny = ["--rounds", "1", "--samples", "2", "--calls", "5", "--records", "100", "--large-mb", "1"]
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.vs_commit", "--against", "HEAD", *tiny],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"vs_commit failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| ") and "figure" not in line]
    assert len(rows) == 5, proc.stdout
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert all(_positive(float(c)) for c in cells[1:]), row
