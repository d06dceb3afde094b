"""The UI sandbox on its own, without an api-server: a value that breaches a worker's memory cap, CPU
limit, wall time or output bound comes back as too costly and its worker is replaced; a worker that
dies is replaced; one that cannot start is a failure of the sandbox, not of the value; workers get no
secret of the API server's and run under the limits asked for."""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from redis_xcom.codec import Codec
from redis_xcom.ui import protocol, sandbox
from redis_xcom.ui.preview import Preview, preview
from redis_xcom.ui.sandbox import Busy, Failed, Limits, Rendered, Sandbox, TooCostly
from redis_xcom.ui.sandbox_worker import LIFETIME_VALUES
from tests.ui.hostile import empty_maps

MiB = 1 << 20
SMALL = Limits(memory_bytes=256 * MiB, cpu_seconds=2, timeout_seconds=20, max_output_bytes=MiB, workers=1)
MAX_DECODED = 1 << 30


@pytest.fixture
def make() -> Iterator[Callable[..., Sandbox]]:
    """Sandboxes with SMALL's limits but those given; each closed at the end of the test."""
    made: list[Sandbox] = []

    def build(**overrides: Any) -> Sandbox:
        made.append(Sandbox(Limits(**{**SMALL.__dict__, **overrides})))
        return made[-1]

    yield build
    for box in made:
        box.close()


def _preview(box: Sandbox, data: bytes, budget: int = 4096) -> Any:
    return box.render(protocol.PREVIEW, data, max_decoded_bytes=MAX_DECODED, preview_bytes=budget)


def _json(box: Sandbox, data: bytes) -> Any:
    return box.render(protocol.JSON, data, max_decoded_bytes=MAX_DECODED, preview_bytes=0)


def _spinning_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers under the real limits whose rendering never ends (it spins on the CPU): what the
    sandbox does with a value too costly to finish, whichever shape the codec lets through."""
    spin = "import redis_xcom.ui.render as r; r.render = lambda *a: any(iter(int, 1)); "
    monkeypatch.setattr(sandbox, "BOOT", sandbox.BOOT.replace("from redis_xcom", spin + "from redis_xcom", 1))


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_value_comes_back_rendered_as_the_api_server_would_render_it(make: Callable[..., Sandbox]) -> None:
    import datetime
    import decimal

    box = make()
    value = {"rows": [1, 2, 3], "when": datetime.date(2024, 1, 2), "amount": decimal.Decimal("1.10")}
    data = Codec().encode(value)
    shown = _preview(box, data)
    assert isinstance(shown, Rendered)
    assert Preview.from_json(json.loads(shown.body)) == preview(value, 4096)
    whole = _json(box, data)
    assert isinstance(whole, Rendered)
    assert json.loads(whole.body) == {"rows": [1, 2, 3], "when": "2024-01-02", "amount": "1.10"}


def test_a_value_above_the_memory_cap_is_too_costly_and_its_worker_replaced(
    make: Callable[..., Sandbox],
) -> None:
    # CPU time to spare: on a loaded machine building 256 MB of dicts can take over SMALL's 2 s.
    box = make(cpu_seconds=30, timeout_seconds=60)
    (before,) = box.pids()
    refused = _preview(box, empty_maps())  # 30M dicts: about 2 GB, in 29 KB
    assert isinstance(refused, TooCostly) and "ui_sandbox_memory_mb" in refused.reason, refused
    (after,) = box.pids()
    assert after != before and not _alive(before)
    assert isinstance(_preview(box, Codec().encode([1, 2])), Rendered)


def test_a_value_over_the_cpu_limit_is_too_costly(
    make: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    _spinning_workers(monkeypatch)
    box = make(cpu_seconds=1, timeout_seconds=60)
    started = time.monotonic()
    refused = _preview(box, Codec().encode("spins"))
    assert isinstance(refused, TooCostly) and "ui_sandbox_cpu_seconds = 1" in refused.reason, refused
    assert time.monotonic() - started < 30


def test_a_value_over_the_wall_time_is_too_costly_and_its_worker_killed(
    make: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    _spinning_workers(monkeypatch)
    box = make(cpu_seconds=600, timeout_seconds=1)
    (worker,) = box.pids()
    started = time.monotonic()
    refused = _json(box, Codec().encode("spins"))
    assert isinstance(refused, TooCostly) and "ui_sandbox_timeout_seconds = 1" in refused.reason, refused
    assert time.monotonic() - started < 6
    assert not _alive(worker)
    assert box.pids() and box.pids() != [worker], "a new worker took its place"


def test_an_output_above_the_bound_is_too_costly_and_a_preview_still_shows(
    make: Callable[..., Sandbox],
) -> None:
    box = make(max_output_bytes=64 * 1024)
    data = Codec().encode([f"item-{i}" for i in range(100_000)])  # about 1.5 MB of JSON
    refused = _json(box, data)
    assert isinstance(refused, TooCostly) and "ui_sandbox_max_output_bytes" in refused.reason, refused
    shown = _preview(box, data, budget=1000)
    assert isinstance(shown, Rendered) and json.loads(shown.body)["truncated"] is True


def test_a_preview_is_bounded_by_its_budget_whatever_the_value(make: Callable[..., Sandbox]) -> None:
    pa = pytest.importorskip("pyarrow")
    wide = pa.table({f"column-{i:05d}": [i] for i in range(5000)})  # its names and types: 150 KB
    refused = _preview(make(), Codec().encode(wide), budget=1000)
    assert isinstance(refused, TooCostly) and "8 times ui_preview_bytes" in refused.reason, refused


def test_the_api_server_reads_no_more_than_the_bound_whatever_a_worker_claims(
    make: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker gone wrong: it answers every request with a reply claiming a terabyte.
    liar = (
        "import os, struct, time; os.read(0, 1 << 16); "
        "os.write(1, struct.pack('>BQ', 0, 1 << 40) + b'x' * 4096); time.sleep(60)"
    )
    monkeypatch.setattr(sandbox, "BOOT", liar)
    box = make(max_output_bytes=64 * 1024)
    started = time.monotonic()
    refused = _json(box, Codec().encode(1))
    assert isinstance(refused, TooCostly) and f"{1 << 40} bytes" in refused.reason, refused
    assert time.monotonic() - started < 5


def test_a_worker_killed_while_idle_is_replaced_without_blaming_the_next_value(
    make: Callable[..., Sandbox],
) -> None:
    box = make()
    (worker,) = box.pids()
    os.kill(worker, signal.SIGKILL)
    while _alive(worker):
        time.sleep(0.01)
    assert isinstance(_preview(box, Codec().encode({"a": 1})), Rendered)
    assert box.pids() != [worker]


def test_a_worker_killed_during_a_value_is_replaced(
    make: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    _spinning_workers(monkeypatch)  # busy with the value until it is killed
    box = make(cpu_seconds=600, timeout_seconds=60)
    (worker,) = box.pids()
    data = Codec().encode("spins")
    killer = threading.Timer(1.0, os.kill, (worker, signal.SIGKILL))
    killer.start()
    try:
        refused = _preview(box, data)
    finally:
        killer.cancel()
    assert isinstance(refused, TooCostly) and "SIGKILL" in refused.reason, refused
    assert box.pids() and box.pids() != [worker], "a new worker took its place"


def test_a_worker_that_cannot_start_is_the_sandboxs_failure_not_the_values(
    make: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox, "BOOT", "import sys; sys.exit(3)")
    failed = _preview(make(), Codec().encode(1))
    assert isinstance(failed, Failed) and failed.stage == "sandbox", failed
    assert "exited with status 3" in failed.message


def test_no_worker_that_can_start_is_a_failure_of_the_sandbox_never_an_exception(
    make: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox.sys, "executable", "/nonexistent/python")
    box = make()
    assert box.pids() == []
    failed = _preview(box, Codec().encode(1))
    assert isinstance(failed, Failed) and "worker could be started" in failed.message, failed
    monkeypatch.undo()
    assert isinstance(_preview(box, Codec().encode(1)), Rendered), "the slot starts a worker once it can"


def test_every_worker_busy_answers_busy_after_the_timeout(make: Callable[..., Sandbox]) -> None:
    box = make(timeout_seconds=0.5)
    held = box._acquire(time.monotonic() + 5)  # the only worker, busy elsewhere
    assert held is not None
    try:
        started = time.monotonic()
        answer = _preview(box, Codec().encode(1))
        assert isinstance(answer, Busy) and "ui_sandbox_workers = 1" in answer.message, answer
        assert 0.4 < time.monotonic() - started < 3
    finally:
        box._release(held, keep=True)
    assert isinstance(_preview(box, Codec().encode(1)), Rendered)


def test_workers_get_no_secret_no_descriptor_and_the_limits_asked_for(
    make: Callable[..., Sandbox], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://airflow:s3cret-pw@db/airflow")
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        box = make(memory_bytes=300 * MiB, cpu_seconds=3)
        (worker,) = box.pids()
        assert isinstance(_preview(box, Codec().encode(1)), Rendered)  # booted and limited
        environment = Path(f"/proc/{worker}/environ").read_bytes()
        descriptors = [os.readlink(f"/proc/{worker}/fd/{fd}") for fd in os.listdir(f"/proc/{worker}/fd")]
    assert b"s3cret-pw" not in environment and b"AIRFLOW__" not in environment
    assert not [target for target in descriptors if target.startswith("socket:")], descriptors
    limits = {
        line[:26].strip(): line[26:].split()[:2]
        for line in Path(f"/proc/{worker}/limits").read_text().splitlines()
    }
    assert limits["Max data size"] == [str(300 * MiB)] * 2
    assert limits["Max address space"] == [str(300 * MiB + (1 << 30))] * 2
    assert limits["Max cpu time"][1] == str(3 * LIFETIME_VALUES)
    assert limits["Max core file size"] == ["0", "0"]


def test_closing_the_sandbox_stops_its_workers(make: Callable[..., Sandbox]) -> None:
    box = make(workers=2)
    workers = box.pids()
    assert len(workers) == 2
    box.close()
    assert not any(_alive(pid) for pid in workers)
