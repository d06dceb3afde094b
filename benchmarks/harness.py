"""Side-by-side benchmark helper: interleaved rounds in one process, robust statistics, JSON output.

Typical use::

    from benchmarks.harness import compare, markdown_table, write_json

    stats = compare({"ours": lambda: f(x), "theirs": lambda: g(x)}, baseline="theirs", rounds=15)
    print(markdown_table(["name", "median", "ratio"],
                         [[s.name, format_seconds(s.median), f"{s.ratio:.2f}"] for s in stats.values()]))
    write_json("benchmarks/results/mine.json", {"stats": [s.as_dict() for s in stats.values()]})

Why interleaved: machine noise (turbo, other processes, GC) drifts over seconds; running every
competitor once per round, in a rotating order, spreads that drift evenly instead of biasing
whoever ran last. Each sample times ``calls`` back-to-back calls (calibrated so a sample lasts
at least ``min_sample_time``) and records seconds per call; we report the median and quartiles
over rounds, and the ratio to the baseline as the median of per-round ratios (a competitor's
sample over the baseline's sample of the same round), which cancels drift between rounds.
Above 1 means slower than the baseline.
"""

from __future__ import annotations

import gc
import json
import math
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Stats:
    """Seconds per call for one competitor, over all rounds."""

    name: str
    median: float
    p25: float
    p75: float
    calls_per_sample: int
    ratio: float | None = None  # median over rounds of (this sample / baseline sample)
    samples: list[float] = field(default_factory=list)

    @property
    def iqr(self) -> float:
        return self.p75 - self.p25

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "iqr": self.iqr}


def calibrate(fn: Callable[[], object], min_sample_time: float, max_calls: int) -> int:
    """How many back-to-back calls make one sample last at least min_sample_time (after a warm-up)."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-9)
    return max(1, min(max_calls, math.ceil(min_sample_time / once)))


def time_sample(fn: Callable[[], object], calls: int) -> float:
    """Seconds per call over `calls` consecutive calls, with the garbage collector paused."""
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        return (time.perf_counter() - start) / calls
    finally:
        if gc_was_enabled:
            gc.enable()


def compare(
    competitors: Mapping[str, Callable[[], object]],
    *,
    baseline: str | None = None,
    rounds: int = 15,
    min_sample_time: float = 0.02,
    max_calls: int = 100_000,
) -> dict[str, Stats]:
    """Time every competitor once per round, rotating the order each round; return Stats by name."""
    names = list(competitors)
    calls = {name: calibrate(competitors[name], min_sample_time, max_calls) for name in names}
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(time_sample(competitors[name], calls[name]))
        gc.collect()
    stats = {name: _summarise(name, samples[name], calls[name]) for name in names}
    if baseline is not None:
        base = samples[baseline]
        stats = {
            name: _with_ratio(s, statistics.median(a / b for a, b in zip(samples[name], base, strict=True)))
            for name, s in stats.items()
        }
    return stats


def _summarise(name: str, samples: list[float], calls: int) -> Stats:
    ordered = sorted(samples)
    if len(ordered) >= 2:
        p25, _, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        p25 = p75 = ordered[0]
    return Stats(name, statistics.median(ordered), p25, p75, calls, samples=samples)


def _with_ratio(stats: Stats, ratio: float) -> Stats:
    return Stats(stats.name, stats.median, stats.p25, stats.p75, stats.calls_per_sample, ratio, stats.samples)


def peak_memory(fn: Callable[[], T]) -> tuple[T, int]:
    """(result, peak bytes allocated while fn ran, as tracemalloc sees it); slow, never mix with timing."""
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def format_seconds(seconds: float) -> str:
    """Human units: 850 ns, 12.3 µs, 4.56 ms, 1.23 s."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def environment() -> dict[str, str]:
    """Where the figures came from, to store next to them."""
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "machine": platform.machine(),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def write_json(path: str | Path, payload: Mapping[str, Any]) -> Path:
    """Write raw figures (with the environment) as indented JSON, creating the directory."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"environment": environment(), **payload}, indent=2, default=str))
    return target
