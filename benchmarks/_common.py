"""What every benchmark shares: the Redis it runs against, the backend's configuration, result files."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shutil
import socket
import statistics
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from benchmarks.harness import compare
from redis_xcom.ops.engine import engine_of
from tests.redis_process import REDIS_SERVER, RedisServer, free_port


@dataclass
class BenchContext:
    """One invocation of the suite: where Redis is, how big to go, where results go."""

    redis_url: str
    redis_kind: str  # "redis-server (started by the suite)", "fakeredis (embedded)" or "given URL"
    owns_server: bool  # True only for a server this process started: never flush any other
    smoke: bool
    out: Path
    full_grid: bool = False
    postgres_url: str | None = None  # a PostgreSQL of your own; default: the suite starts one
    databases: tuple[str, ...] = ()  # end to end: metadata DBs to run on (default: all)
    airflow_points: tuple[str, ...] = ()  # end to end: only these sizes, e.g. ("50.0MB",)
    airflow_shapes: tuple[str, ...] = ()  # end to end: only these payload shapes ("text", "records")
    reps: int = 0  # repetitions of the end-to-end and deployment runs (0: each benchmark's own)
    # Every key the suite writes starts with this prefix, so a shared Redis is left as it was.
    prefix: str = field(default_factory=lambda: f"redis-xcom-bench-{secrets.token_hex(4)}")

    def client(self) -> redis.Redis:
        """A plain redis-py client, as a user would build it: the 'bare Redis' of the comparisons."""
        return redis.Redis.from_url(self.redis_url)

    def cleanup_prefix(self, prefix: str | None = None) -> int:
        """UNLINK every key under the suite's prefix (or a narrower one); returns how many."""
        client = self.client()
        deleted = 0
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix or self.prefix}*", count=10_000):
            batch.append(key)
            if len(batch) >= 10_000:
                deleted += int(client.unlink(*batch))  # type: ignore[arg-type]
                batch = []
        if batch:
            deleted += int(client.unlink(*batch))  # type: ignore[arg-type]
        return deleted


@contextlib.contextmanager
def provide_redis(url: str | None) -> Iterator[tuple[str, str, bool]]:
    """(url, kind, owned): the given URL, else a redis-server of our own, else embedded fakeredis.

    Never the Redis on the default port unless it is given: other people's data lives there.
    """
    if url:
        yield url, "given URL", False
        return
    if REDIS_SERVER is not None:
        with RedisServer() as server:
            yield server.url, f"{_engine(server.url)} (started by the suite)", True
        return
    from fakeredis import TcpFakeServer

    port = free_port()
    fake = TcpFakeServer(("127.0.0.1", port), server_type="redis")
    thread = threading.Thread(target=fake.serve_forever, daemon=True)
    thread.start()
    try:
        yield (
            f"redis://127.0.0.1:{port}/0",
            "fakeredis TcpFakeServer (embedded; no redis-server binary)",
            True,
        )
    finally:
        fake.shutdown()
        fake.server_close()


def _engine(url: str) -> str:
    """ "Redis 7.0.15" or "Valkey 8.0.1" (REDIS_XCOM_TEST_SERVER picks which the suite starts)."""
    try:
        return str(engine_of(redis.Redis.from_url(url).info("server")))
    except redis.RedisError:
        return "? (INFO failed)"


def configure_backend(ctx: BenchContext, **extra: str) -> None:
    """Point ExclusiveRedisXCom of this process at the suite's Redis, under the suite's prefix."""
    os.environ.update(backend_env(ctx, **extra))
    from redis_xcom.runtime import reset_runtime

    reset_runtime()


def backend_env(ctx: BenchContext, **extra: str) -> dict[str, str]:
    env = {
        "AIRFLOW__REDIS_XCOM__URL": ctx.redis_url,
        "AIRFLOW__REDIS_XCOM__KEY_PREFIX": ctx.prefix,
    }
    env.update({f"AIRFLOW__REDIS_XCOM__{k.upper()}": v for k, v in extra.items()})
    return env


def machine() -> dict[str, Any]:
    """Enough about the machine to tell two result files apart."""
    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "hostname": socket.gethostname(),
    }
    with contextlib.suppress(OSError, ValueError):
        info["load_avg_1m"] = os.getloadavg()[0]
    with contextlib.suppress(Exception):
        import airflow

        info["airflow"] = airflow.__version__
    info["redis_py"] = redis.__version__
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5, check=False
        )
        info["git_commit"] = rev.stdout.strip()
    return info


def write_result(ctx: BenchContext, name: str, doc: dict[str, Any]) -> Path:
    """results/<name>.json with the raw figures and the context they were measured in."""
    doc = {
        "benchmark": name,
        "smoke": ctx.smoke,
        "redis": {"kind": ctx.redis_kind, "url": _redact(ctx.redis_url)},
        "machine": machine(),
        **doc,
    }
    ctx.out.mkdir(parents=True, exist_ok=True)
    path = ctx.out / f"{name}.json"
    path.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    return path


def _redact(url: str) -> str:
    from redis_xcom.config import redact_url

    return redact_url(url)


def dir_size(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def fmt_seconds(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.2f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.1f} µs"


def fmt_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(size) < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def summary(samples: list[float]) -> dict[str, Any]:
    """Median and spread (quartiles, min, max, IQR relative to the median) of a list of figures."""
    ordered = sorted(samples)
    if len(ordered) >= 2:
        p25, _, p75 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        p25 = p75 = ordered[0]
    median = statistics.median(ordered)
    return {
        "median": median,
        "p25": p25,
        "p75": p75,
        "min": ordered[0],
        "max": ordered[-1],
        "iqr_rel": (p75 - p25) / median if median else 0.0,
        "n": len(ordered),
    }


def timed(
    competitors: Mapping[str, Callable[[], object]],
    *,
    baseline: str,
    rounds: int,
    min_sample_time: float = 0.02,
) -> dict[str, Any]:
    """benchmarks.harness.compare (interleaved rounds), plus the spread of the per-round ratios.

    Per competitor: seconds per call (median, p25, p75, raw samples) and ``ratio``, the summary of
    (its sample / the baseline's sample of the same round) over rounds.
    """
    stats = compare(competitors, baseline=baseline, rounds=rounds, min_sample_time=min_sample_time)
    base = stats[baseline].samples
    return {
        name: {
            "seconds": summary(s.samples),
            "ratio": summary([a / b for a, b in zip(s.samples, base, strict=True)]),
            "calls_per_sample": s.calls_per_sample,
            "raw_seconds": s.samples,
        }
        for name, s in stats.items()
    }
