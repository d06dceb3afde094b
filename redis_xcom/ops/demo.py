"""``redis-xcom demo``: run the example DAG end to end and show where each XCom went.

The DAG runs through ``airflow dags test`` in a temporary AIRFLOW_HOME (SQLite) with
``ExclusiveRedisXCom``. Redis is the one the user configured (``--redis-url`` or
``AIRFLOW__REDIS_XCOM__URL``) or, when none is configured or it is unreachable, an embedded
fakeredis server on a free loopback port. The demo never picks a Redis by itself: with nothing
configured it does not try localhost:6379.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, TextIO

from redis_xcom import keys
from redis_xcom.config import Settings
from redis_xcom.errors import RedisXComError
from redis_xcom.ops.airflow_run import AirflowCommandError, AirflowHome, CommandResult
from redis_xcom.redaction import redact_url
from redis_xcom.rows import XComRow

DAG_ID = "redis_xcom_demo"
DAG_FILE = "redis_xcom_demo.py"
EXPECTED_SKIPPED = frozenset({"quiet_day"})
DEFAULT_KEY_PREFIX = "redis-xcom-demo"
URL_VARIABLE = "AIRFLOW__REDIS_XCOM__URL"
_SETTING_PREFIX = "AIRFLOW__REDIS_XCOM__"
SKIPMIXIN_KEY = "skipmixin_key"  # the same as redis_xcom.backend's; not imported, that loads Airflow


class DemoError(Exception):
    """The demo cannot run (bad option, configured Redis unreachable without fallback...)."""


class EmbeddedRedis:
    """A fakeredis server on a free loopback port, served from a thread of this process."""

    def __init__(self) -> None:
        try:
            from fakeredis import TcpFakeServer
        except ImportError as exc:
            raise DemoError(
                "no Redis configured and fakeredis is not installed for the embedded one: "
                "pip install 'redis-xcom[demo]', or pass --redis-url / set AIRFLOW__REDIS_XCOM__URL"
            ) from exc
        self.server = TcpFakeServer(("127.0.0.1", 0))
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


@dataclass
class RedisTarget:
    url: str
    description: str
    embedded: EmbeddedRedis | None = None

    def close(self) -> None:
        if self.embedded is not None:
            self.embedded.stop()


def unreachable_reason(url: str, timeout: float = 2.0) -> str | None:
    """None when a PING to url answers, else why not (without the password)."""
    import redis
    from redis.exceptions import RedisClusterException

    try:
        # build_client: redis+cluster:// and redis+sentinel:// URLs too.
        client = _client(url, timeout, retry_attempts=0)
        try:
            client.ping()
        finally:
            client.close()
    except (redis.RedisError, RedisClusterException, RedisXComError, OSError, ValueError) as exc:
        # Said as doctor and stats say it: what is wrong and what to do.
        from redis_xcom.ops.diagnosis import diagnose

        try:
            settings: Settings | None = Settings(url=url)
        except RedisXComError:
            settings = None
        found = diagnose(exc, settings)
        return f"{found.message} -> {found.advice}" if found.advice else found.message
    return None


def _client(url: str, timeout: float, retry_attempts: int = 3) -> Any:
    """The client the backend would build for url (one node, a cluster or a Sentinel's master)."""
    from redis_xcom.storage.client import build_client

    return build_client(
        Settings(
            url=url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_attempts=retry_attempts
        )
    )


def choose_redis(
    redis_url: str | None,
    env: Mapping[str, str],
    force_embedded: bool = False,
    fallback: bool = True,
    out: TextIO | None = None,
) -> RedisTarget:
    """The Redis the demo writes to: the configured one if it answers, else an embedded server."""
    configured = redis_url or env.get(URL_VARIABLE) or None
    source = "--redis-url" if redis_url else URL_VARIABLE
    if configured and not force_embedded:
        reason = unreachable_reason(configured)
        if reason is None:
            return RedisTarget(configured, f"{redact_url(configured)} (from {source})")
        if not fallback:
            raise DemoError(f"Redis at {redact_url(configured)} (from {source}) is unreachable: {reason}")
        if out is not None:
            print(
                f"Redis at {redact_url(configured)} (from {source}) is unreachable ({reason});\n"
                "using an embedded fakeredis server instead (--no-fallback makes this an error).",
                file=out,
            )
        why = "configured Redis unreachable"
    elif force_embedded:
        why = "--embedded"
    else:
        why = f"no --redis-url and no {URL_VARIABLE}"
    embedded = EmbeddedRedis()
    return RedisTarget(embedded.url, f"embedded fakeredis server at {embedded.url} ({why})", embedded)


@dataclass
class Check:
    ok: bool
    text: str


@dataclass
class Report:
    rows: list[list[str]] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)


def demo_settings(env: Mapping[str, str], url: str, key_prefix: str | None) -> dict[str, str]:
    """AIRFLOW__* variables of the demo's Airflow: the user's [redis_xcom] ones, our URL and prefix."""
    settings = {name: value for name, value in env.items() if name.startswith(_SETTING_PREFIX)}
    settings[URL_VARIABLE] = url
    settings[_SETTING_PREFIX + "KEY_PREFIX"] = key_prefix or DEFAULT_KEY_PREFIX
    settings["AIRFLOW__CORE__XCOM_BACKEND"] = "redis_xcom.ExclusiveRedisXCom"
    # The subprocess must import this very redis_xcom, even from a source checkout.
    package_parent = str(Path(__file__).resolve().parent.parent)
    settings["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
    return settings


def inspect_run(home: AirflowHome, client: Any, run_id: str, prefix: str, ttl: int) -> Report:
    """Compare the run's xcom rows with Redis: the table and the checks of the demo."""
    report = Report()
    states = home.task_states(DAG_ID, run_id)
    expected = {task: "skipped" if task in EXPECTED_SKIPPED else "success" for task in states}
    wrong = {task: state for task, state in states.items() if state != expected[task]}
    counts = ", ".join(f"{n} {s}" for s, n in sorted(_count(states.values()).items()))
    report.checks.append(
        Check(
            not wrong and bool(states),
            f"all {len(states)} task instances ended as expected ({counts})"
            if not wrong
            else "tasks ended wrongly: " + ", ".join(f"{t} is {s}" for t, s in sorted(wrong.items())),
        )
    )

    rows: list[XComRow] = home.xcoms(DAG_ID, run_id)
    inline = [r for r in rows if keys.key_of_reference(r.value) is None]
    bad_inline = [r for r in inline if r.key != SKIPMIXIN_KEY]
    missing: list[str] = []
    bad_ttl: list[str] = []
    referenced: set[str] = set()
    for row in rows:
        redis_key = keys.key_of_reference(row.value)
        map_index = "" if row.map_index < 0 else str(row.map_index)
        if redis_key is None:
            shown = row.raw or ""
            label = "(inline, read by the scheduler)" if row.key == SKIPMIXIN_KEY else "(inline!)"
            report.rows.append([row.task_id, map_index, row.key, "-", "-", f"{label} {shown}"])
            continue
        referenced.add(redis_key)
        size = client.strlen(redis_key)
        key_ttl = int(client.ttl(redis_key))
        if key_ttl == -2:
            missing.append(redis_key)
        elif not 0 < key_ttl <= ttl:
            bad_ttl.append(f"{redis_key} (TTL {key_ttl})")
        report.rows.append(
            [
                row.task_id,
                map_index,
                row.key,
                "missing" if key_ttl == -2 else str(size),
                "-" if key_ttl == -2 else ("none" if key_ttl == -1 else str(key_ttl)),
                str(row.value),
            ]
        )
    report.checks.append(
        Check(
            bool(rows) and not bad_inline,
            f"the xcom table holds only references ({len(rows) - len(inline)} references"
            + (
                f"; {len(inline)} skipmixin_key row kept inline, as the scheduler reads it)"
                if inline
                else ")"
            )
            if not bad_inline
            else "values stored in the DB instead of Redis: "
            + ", ".join(f"{r.task_id}/{r.key}" for r in bad_inline),
        )
    )
    report.checks.append(
        Check(
            not missing and not bad_ttl,
            f"every referenced key exists in Redis with a TTL (0 < TTL <= {ttl} s)"
            if not missing and not bad_ttl
            else "; ".join(
                ([f"missing from Redis: {', '.join(missing)}"] if missing else [])
                + ([f"wrong TTL: {', '.join(bad_ttl)}"] if bad_ttl else [])
            ),
        )
    )
    stray = sorted(set(_scan(client, keys.run_tag(prefix, DAG_ID, run_id) + ":*")) - referenced)
    report.checks.append(
        Check(
            not stray,
            "no key of this run in Redis without a DB row"
            if not stray
            else f"keys in Redis that no DB row references: {', '.join(stray)}",
        )
    )
    index = keys.run_index_key(prefix, DAG_ID, run_id)
    indexed = {m.decode() if isinstance(m, bytes) else m for m in client.smembers(index)}
    report.checks.append(
        Check(
            indexed == referenced,
            f"the run's index {index} names exactly its {len(indexed)} keys (a run-level clear reads it)"
            if indexed == referenced
            else f"the run's index {index} differs from the references: "
            f"{len(indexed - referenced)} extra, {len(referenced - indexed)} missing",
        )
    )
    return report


def _count(values: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for value in values:
        counts[str(value)] = counts.get(str(value), 0) + 1
    return counts


def _scan(client: Any, pattern: str) -> list[str]:
    return [k.decode() if isinstance(k, bytes) else k for k in client.scan_iter(match=pattern, count=1000)]


def format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    # The last column (the DB value) is not padded: long references may wrap, the rest stays aligned.
    widths[-1] = 0
    lines = [header, ["-" * w for w in widths[:-1]] + ["-" * len(header[-1])], *rows]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def run_demo(
    redis_url: str | None = None,
    *,
    force_embedded: bool = False,
    fallback: bool = True,
    key_prefix: str | None = None,
    keep_keys: bool = False,
    keep_home: bool = False,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Run the demo; 0 when every check passed, 1 when one failed, 2 when it could not run."""
    env = dict(os.environ if env is None else env)
    started = time.perf_counter()

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    try:
        target = choose_redis(redis_url, env, force_embedded, fallback, out)
    except DemoError as exc:
        say(f"error: {exc}")
        return 2
    home: AirflowHome | None = None
    result: CommandResult | None = None
    success = False
    try:
        settings = demo_settings(env, target.url, key_prefix)
        try:
            ttl = int(settings.get(_SETTING_PREFIX + "TTL", "") or Settings.ttl)
        except ValueError:
            say(f"error: {_SETTING_PREFIX}TTL must be a whole number of seconds")
            return 2
        prefix = settings[_SETTING_PREFIX + "KEY_PREFIX"]
        home = AirflowHome.create(env=settings, prefix="redis-xcom-demo-")
        with resources.as_file(resources.files("redis_xcom.ops") / "demo_dags" / DAG_FILE) as dag_file:
            home.add_dags(dag_file)
        say("redis-xcom demo")
        say(f"  Redis:        {target.description}")
        say(f"  Airflow home: {home.path} (temporary, SQLite)")
        say(f"  Key prefix:   {prefix}")
        say()
        say("[1/3] airflow db migrate ...")
        migrated = home.migrate(timeout=timeout)
        say(f"      done in {migrated.seconds:.1f} s")
        say(f"[2/3] airflow dags test {DAG_ID} ...")
        result = home.dags_test(DAG_ID, timeout=timeout)
        say(f"      {'done' if result.ok else 'FAILED'} in {result.seconds:.1f} s")
        say("[3/3] comparing the xcom table with Redis")
        say()
        run_id = home.latest_run(DAG_ID).run_id
        client = _client(target.url, 10)
        try:
            report = inspect_run(home, client, run_id, prefix, ttl)
            report.checks.insert(
                0,
                Check(
                    result.ok,
                    "airflow dags test succeeded"
                    if result.ok
                    else f"airflow dags test failed (exit code {result.returncode})",
                ),
            )
            say(f"XComs of run {run_id}:")
            say(
                format_table(
                    ["task", "map", "key", "bytes", "TTL s", "value in the metadata DB"], report.rows
                )
            )
            say()
            say("Checks:")
            for check in report.checks:
                say(f"  {'ok  ' if check.ok else 'FAIL'}  {check.text}")
            say()
            if not target.embedded and not keep_keys:
                found = _scan(client, keys.run_tag(prefix, DAG_ID, run_id) + ":*")
                # The run's keys share its hash tag: one slot, so one UNLINK even on a cluster.
                removed = client.unlink(*found) if found else 0
                client.unlink(keys.run_index_key(prefix, DAG_ID, run_id))
                say(f"Removed the run's {removed} keys from Redis (--keep-keys keeps them).")
        finally:
            client.close()
        success = report.ok
        elapsed = time.perf_counter() - started
        if success:
            say(f"Demo passed in {elapsed:.1f} s.")
        else:
            say(f"Demo FAILED in {elapsed:.1f} s. Airflow's output: {result.log_path}")
        return 0 if success else 1
    except AirflowCommandError as exc:
        say(f"error: {exc}")
        return 1
    except Exception as exc:  # a crash of the demo itself: say where Airflow's output is
        say(f"error: the demo crashed: {type(exc).__name__}: {exc}")
        if result is not None:
            say(f"Airflow's output: {result.log_path}")
        return 1
    finally:
        target.close()
        if home is not None:
            if success and not keep_home:
                home.cleanup()
            else:
                say(f"Airflow home kept: {home.path} (logs in {home.command_logs})")
