"""Merge results/*.json into results/RESULTS.md (a table per benchmark and a goals table), results/SUMMARY.md
(the one table of headline figures, with the conditions they were measured in) and chart.png.

SUMMARY.md is what the documentation quotes: docs/benchmarks.md includes it, and the block between the
``benchmark-summary`` markers of README.md is rewritten with it when the default results directory is
reported on (so README.md, docs/index.md and docs/benchmarks.md show the same figures).

python -m benchmarks.report [results-dir]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

from benchmarks._common import fmt_bytes, fmt_seconds

ORDER = ("codec", "backend", "scaling", "airflow", "deployment", "cluster")
BACKEND_LABELS = {
    "default": "default (DB)",
    "objectstorage": "object storage (file://)",  # results written before S3 was measured
    "objectstorage_s3": "object storage on S3 (moto)",
    "objectstorage_file": "object storage, local disk (file://, upper bound)",
    "redis_xcom": "redis-xcom",
}
AIRFLOW_BACKENDS = ("default", "objectstorage_s3", "objectstorage_file", "redis_xcom")
CODEC_GOAL_SHAPE = "records_20000"
CODEC_GOAL = 12.0
COLORS = {
    "default": "#7f8c8d",
    "objectstorage": "#2980b9",
    "objectstorage_s3": "#e67e22",
    "objectstorage_file": "#2980b9",
    "redis_xcom": "#c0392b",
}


def load(out: Path) -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(out.glob("*.json")):
        try:
            docs[path.stem] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            print(f"report: skipping {path}: {exc}", file=sys.stderr)
    return docs


def table(headers: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio_text(median: float | None, spread: list[float] | tuple[float, float] | None = None) -> str:
    if median is None:
        return "n/a"
    text = f"{median:.2f}x"
    if spread and spread[0] is not None:
        text += f" [{spread[0]:.2f}-{spread[1]:.2f}]"
    return text


def _quartiles(values: list[float]) -> tuple[float, float, float]:
    if len(values) >= 2:
        p25, _, p75 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        p25 = p75 = values[0]
    return statistics.median(values), p25, p75


# --- goals -------------------------------------------------------------------------------------


def codec_goal(doc: dict[str, Any]) -> dict[str, Any] | None:
    """20k records: Airflow's serde+JSON path / ours, from bench_codec's per-round samples."""
    results = doc.get("results", {})
    shape = (
        CODEC_GOAL_SHAPE
        if CODEC_GOAL_SHAPE in results
        else next((s for s in results if s.startswith("records_")), None)
    )
    if shape is None:
        return None
    ours, serde = results[shape].get("ours", {}), results[shape].get("airflow-serde+json", {})
    if not ours.get("samples") or not serde.get("samples"):
        return None
    median, p25, p75 = _quartiles([s / o for s, o in zip(serde["samples"], ours["samples"], strict=False)])
    return {
        "goal": f"{shape.replace('records_', '')} records: encode+decode at least {CODEC_GOAL:g}x faster "
        "than the default backend's serialize/deserialize path (Airflow serde + JSON)",
        "target": CODEC_GOAL,
        "measured": median,
        "spread": [p25, p75],
        "met": median >= CODEC_GOAL,
        "source": "codec",
    }


def goals(docs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for name in ORDER:
        doc = docs.get(name)
        if doc is None:
            continue
        if name == "codec":
            goal = codec_goal(doc)
            if goal:
                found.append(goal)
            continue
        for goal in doc.get("goals", []):
            found.append({**goal, "source": name})
    return found


def goals_table(found: list[dict[str, Any]]) -> str:
    rows = []
    for g in found:
        measured = g["measured"]
        if isinstance(measured, (int, float)):
            measured = ratio_text(measured, g.get("spread"))
        status = "**met**" if g["met"] else "not met"
        if g.get("note") and not g["met"]:
            status += f" ({g['note']})"
        rows.append(
            [
                g["goal"],
                g["target"] if isinstance(g["target"], str) else f"{g['target']:g}x",
                measured,
                status,
                g["source"],
            ]
        )
    return table(["goal", "target", "measured: median [p25-p75]", "status", "benchmark"], rows)


# --- sections ---------------------------------------------------------------------------------


def codec_section(doc: dict[str, Any]) -> str:
    rows = []
    for shape, info in doc.get("results", {}).items():
        for label, r in info.items():
            if not r.get("supported"):
                rows.append([shape, label, "n/a", "", "", "", r.get("error", "")[:60]])
                continue
            rows.append(
                [
                    shape,
                    label,
                    fmt_seconds(r["median"]),
                    f"{fmt_seconds(r['p25'])} - {fmt_seconds(r['p75'])}",
                    f"{r['ratio']:.2f}x",
                    "yes" if r.get("exact") else "no",
                    f"{r['size']:,}",
                ]
            )
    return (
        "Encode+decode round trip per value (`benchmarks/bench_codec.py`); "
        "`x ours` > 1 means slower than ours.\n\n"
        + table(["shape", "competitor", "median", "p25 - p75", "x ours", "exact", "bytes"], rows)
    )


PER_ROUND_RATIOS = (
    " Times are medians per push+pull; the ratio is the median of per-round ratios [p25-p75].\n\n"
)


def backend_section(doc: dict[str, Any]) -> str:
    rows = []
    for r in doc["rows"]:
        rows.append(
            [
                r["shape"],
                fmt_bytes(r["encoded_bytes"]),
                fmt_seconds(r["bare_setget_s"]),
                fmt_seconds(r["backend_s"]),
                fmt_seconds(r["store_only_s"]) + f" ({r['store_ratio_median']:.2f}x)"
                if "store_only_s" in r
                else "",
                fmt_seconds(r["codec_only_s"]),
                f"{r['bare_codec_ratio_median']:.2f}x" if "bare_codec_ratio_median" in r else "",
                ratio_text(r["ratio_median"], [r["ratio_p25"], r["ratio_p75"]]),
                f"{r['index_ratio_median']:.2f}x / {r['backend_over_indexed_median']:.2f}x"
                if r.get("index_ratio_median")
                else "",
                f"{r['goal_ratio']}x" if r["goal_ratio"] else "",
            ]
        )
    text = (
        doc["description"]
        + PER_ROUND_RATIOS
        + table(
            [
                "shape",
                "encoded",
                "bare SET+GET",
                "backend push+pull",
                "store only (x bare)",
                "codec only",
                "bare + codec / bare",
                "backend / bare",
                "index script / bare; backend / index script",
                "goal",
            ],
            rows,
        )
    )
    profiles = doc.get("profiles") or {}
    for shape, top in profiles.items():
        prow = [
            [
                p["function"],
                p["calls"],
                fmt_seconds(p["tottime_per_call_s"]),
                f"{100 * p['share_of_total']:.0f}%",
            ]
            for p in top[:8]
        ]
        text += (
            f"\n\nWhere a push+pull of **{shape}** spends its time (cProfile, own time per push+pull):\n\n"
        )
        text += table(["function", "calls", "own time", "share"], prow)
    return text


def scaling_section(doc: dict[str, Any]) -> str:
    pull_rows = [
        [
            r["n"],
            r["round_trips_get_all"],
            r["round_trips_per_item"],
            "" if r["server_gets_get_all"] is None else r["server_gets_get_all"],
            fmt_seconds(r["get_all_s"]),
            fmt_seconds(r["per_item_s"]),
            ratio_text(r["speedup_median"]),
        ]
        for r in doc.get("pull", [])
    ]
    clear_rows = [
        [
            f"{r['unrelated_keys']:,}",
            f"{r['dbsize']:,}",
            f"{fmt_seconds(r['backend_clear_s']['median'])} [{fmt_seconds(r['backend_clear_s']['p25'])} - "
            f"{fmt_seconds(r['backend_clear_s']['p75'])}]",
            r["round_trips_backend_clear"],
            fmt_seconds(r["unlink_known_s"]["median"]),
            r["round_trips_unlink_known"],
        ]
        for r in doc.get("clear", [])
    ]
    return (
        "Pulling all outputs of N mapped tasks: `get_all` (the override, one pipeline) against "
        "`deserialize_value` per item (what Airflow's `BaseXCom.get_all` and the lazy sequence of mapped "
        "outputs do). Round trips are counted client side (socket writes of redis-py); server GETs come "
        "from INFO commandstats. The supervisor's answer with the N DB references is faked: only Redis "
        "is timed.\n\n"
        + table(
            [
                "N",
                "get_all round trips",
                "per-item round trips",
                "server GETs (get_all)",
                "get_all",
                "per item",
                "get_all speed-up",
            ],
            pull_rows,
        )
        + "\n\nClearing one run of 100 keys with `ExclusiveRedisXCom.clear(dag_id, run_id)` while other "
        "runs' keys fill the keyspace, against one UNLINK of the 100 known keys (what a per-run index "
        "would cost). Median [p25 - p75].\n\n"
        + table(
            [
                "unrelated keys",
                "DBSIZE",
                "backend.clear",
                "round trips",
                "UNLINK of known keys",
                "round trips",
            ],
            clear_rows,
        )
    )


def airflow_section(doc: dict[str, Any]) -> str:
    rows = []
    for row in doc.get("rows", []):
        for backend, b in row["backends"].items():
            label = BACKEND_LABELS.get(backend, backend)
            if not b.get("ok_runs"):
                rows.append(
                    [
                        row.get("db", "sqlite"),
                        row.get("shape", "text"),
                        fmt_bytes(row["size"]),
                        row["n"],
                        label,
                        f"failed ({b.get('failed_runs', 0)} runs)",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                        "",
                    ]
                )
                continue
            x = b["xcom_phase_s"]
            speed = ""
            if backend != "redis_xcom":
                s = (row.get(f"speedup_vs_{backend}") or {}).get("xcom_phase_s")
                speed = ratio_text(s["median"], [s["p25"], s["p75"]]) if s else ""
            rows.append(
                [
                    row.get("db", "sqlite"),
                    row.get("shape", "text"),
                    fmt_bytes(row["size"]),
                    row["n"],
                    f"{label} ({b['ok_runs']} runs)",
                    f"{fmt_seconds(x['median'])} [{fmt_seconds(x['p25'])} - {fmt_seconds(x['p75'])}]",
                    fmt_seconds(b["dag_run_s"]["median"]),
                    (
                        f"{fmt_seconds(b['produce_tasks_s']['median'])} / "
                        f"{fmt_seconds(b['consume_task_s']['median'])}"
                        if "produce_tasks_s" in b
                        else ""
                    ),
                    fmt_seconds(b["wall_s"]["median"]),
                    fmt_bytes(b["db_growth_bytes"]),
                    fmt_bytes(b["xcom_value_bytes"]),
                    fmt_bytes(b["payload_bytes_outside_db"]),
                    speed,
                ]
            )
    text = (
        doc["description"]
        + f" {doc.get('repetitions', '?')} repetition(s).\n\n"
        + table(
            [
                "metadata DB",
                "payload",
                "S",
                "N",
                "backend",
                "XCom phase: median [p25 - p75]",
                "DAG run",
                "producers (sum) / consumer",
                "wall (process)",
                "DB growth (PostgreSQL: xcom table; SQLite: file)",
                "xcom.value bytes",
                "payload outside DB",
                "redis-xcom speed-up (XCom phase)",
            ],
            rows,
        )
    )
    if doc.get("skipped"):
        text += "\n\nSkipped combinations:\n\n" + "\n".join(
            f"- {s.get('shape', 'text')} S={fmt_bytes(s['size'])} x N={s['n']}: {s['why']}"
            for s in doc["skipped"]
        )
    return text


def deployment_section(doc: dict[str, Any]) -> str:
    rows = []
    for row in doc.get("rows", []):
        for backend, b in row["backends"].items():
            if not b.get("runs"):
                continue
            cpu = b.get("cpu_s", {})
            run = b.get("dag_run_s")
            speed = "" if backend == "redis_xcom" else row.get(f"speedup_vs_{backend}")
            rows.append(
                [
                    row["parallelism"],
                    f"{row['n']} x {fmt_bytes(row['size'])}",
                    BACKEND_LABELS.get(backend, backend),
                    f"{fmt_seconds(run['median'])} [{fmt_seconds(run['min'])} - {fmt_seconds(run['max'])}]"
                    if run
                    else "failed",
                    *(f"{cpu[k]:.1f} s" if cpu.get(k) is not None else "n/a" for k in CPU_COLUMNS),
                    fmt_bytes(b.get("xcom_table_growth_bytes", 0)),
                    f"{b['errors']} / {b['runs']}",
                    f"{speed:.2f}x" if isinstance(speed, float) else "",
                ]
            )
    text = (
        doc["description"]
        + f" {doc.get('repetitions', '?')} repetition(s) per point"
        + (
            "; the goals' points (K = 8, 1 KB and 1 MB): "
            + ", ".join(f"{n} for {BACKEND_LABELS.get(b, b)}" for b, n in doc["goal_point_runs"].items())
            if doc.get("goal_point_runs")
            else ""
        )
        + ".\n\n"
        + table(
            [
                "K",
                "producers x S",
                "backend",
                "DAG run: median [min - max]",
                "CPU api-server",
                "CPU PostgreSQL",
                "CPU scheduler + workers + tasks",
                "CPU Redis",
                "CPU moto (S3)",
                "xcom table growth",
                "errors / runs",
                "redis-xcom speed-up (DAG run)",
            ],
            rows,
        )
    )
    memory = doc.get("memory", {})
    mem_rows = []
    for backend, m in memory.get("backends", {}).items():
        for role in ("produce", "consume"):
            if role not in m:
                continue
            r = m[role]
            mem_rows.append(
                [
                    BACKEND_LABELS.get(backend, backend),
                    f"{role}r ({r['tasks']} task(s), {fmt_bytes(r['payload_bytes'])} each)",
                    f"{fmt_bytes(r['task']['peak_growth_bytes'])} = "
                    f"{r['task']['ratio_to_payload']['median']:.2f}x",
                    f"{fmt_bytes(r['supervisor']['peak_growth_bytes'])} = "
                    f"{r['supervisor']['ratio_to_payload']['median']:.2f}x",
                ]
            )
    if mem_rows:
        text += (
            f"\n\nWorker memory, {memory['n']} producers of {fmt_bytes(memory['size'])} and a consumer "
            f"pulling all of them (K = {memory['parallelism']}): growth of the peak RSS over the push or "
            "the pull (the value itself included), and its ratio to the payload.\n\n"
            + table(["backend", "task", "task process", "its supervisor process"], mem_rows)
        )
    return text


CPU_COLUMNS = ("api_server", "postgres", "scheduler_and_tasks", "redis", "moto")


def cluster_section(doc: dict[str, Any]) -> str:
    rows = [
        [
            r["shape"],
            fmt_bytes(r["encoded_bytes"]),
            fmt_seconds(r["bare_setget_s"]),
            fmt_seconds(r["backend_s"]),
            ratio_text(r["ratio_median"], [r["ratio_p25"], r["ratio_p75"]]),
            r["timing"]["backend"]["ratio"]["n"],
            f"{r['goal_ratio']}x",
        ]
        for r in doc["rows"]
    ]
    text = (
        doc["description"]
        + PER_ROUND_RATIOS
        + table(
            [
                "shape",
                "encoded",
                "bare RedisCluster SET+GET",
                "backend push+pull",
                "backend / bare",
                "rounds",
                "goal",
            ],
            rows,
        )
    )
    spread = doc.get("spread")
    if spread:
        per_master = ", ".join(f"{node}: {count}" for node, count in spread["keys_per_master"].items())
        text += (
            f"\n\nSpread of {spread['runs']} hourly runs of one DAG (one XCom each, value and run index "
            f"keys): {per_master}; max/mean **{spread['max_over_mean']:.3f}** (goal at most 1.1)."
        )
    return text


HYBRID_VARIANTS = ("default", "inline_on", "inline_off", "bare_redis")


def hybrid_section(doc: dict[str, Any]) -> str:
    rows = [
        [
            r["shape"],
            "inline" if r["inline"] else "Redis",
            *(fmt_seconds(r["seconds"][name]) for name in HYBRID_VARIANTS),
            f"{r['inline_on_over_default']:.2f}x",
            f"{r['inline_on_over_inline_off']:.2f}x",
            f"{r['inline_off_over_bare']:.2f}x",
            fmt_seconds(r["decision_s"]) if "decision_s" in r else "",
        ]
        for r in doc["rows"]
    ]
    headers = ["shape", "with the threshold", "default backend", "inline on", "inline off", "bare Redis"]
    headers += ["on / default", "on / off", "off / bare", "the decision alone"]
    return doc["description"] + PER_ROUND_RATIOS + table(headers, rows)


STATE_STORE_COMPETITORS = {
    "redis_xcom": "redis-xcom",
    "metastore_sqlite": "metastore, SQLite",
    "metastore_postgres": "metastore, PostgreSQL",
    "objectstorage_s3": "object storage on S3 (moto)",
}


def state_store_section(doc: dict[str, Any]) -> str:
    """set+get per value size: each backend's median, and its time over redis-xcom's."""
    rows = []
    for r in doc["rows"]:
        cells = [fmt_bytes(r["bytes"])]
        for name in STATE_STORE_COMPETITORS:
            shown = fmt_seconds(r["seconds"][name])
            if name != "redis_xcom":
                ratio = r["timing"][name]["ratio"]
                shown += f" ({ratio_text(ratio['median'], (ratio['p25'], ratio['p75']))})"
            cells.append(shown)
        rows.append(cells)
    headers = ["value (JSON text)", *STATE_STORE_COMPETITORS.values()]
    per_set_get = PER_ROUND_RATIOS.replace("push+pull", "set+get")
    return doc["description"] + per_set_get + table(headers, rows)


SECTIONS = {
    "codec": ("1. Codec", codec_section),
    "backend": ("2. Backend push+pull against bare redis-py", backend_section),
    "scaling": ("4. Scaling: pulling mapped outputs, clearing a run", scaling_section),
    "airflow": ("3. End to end in Airflow (`airflow dags test`)", airflow_section),
    "deployment": ("5. A real deployment: concurrency, CPU, DB growth, worker memory", deployment_section),
    "cluster": ("6. Redis Cluster: push+pull against bare RedisCluster, runs over masters", cluster_section),
    "hybrid": ("7. Hybrid mode: small values inline (inline_max_bytes) or in Redis", hybrid_section),
    "state_store": (
        "8. State store (Airflow 3.3+): set+get against the metastore and S3",
        state_store_section,
    ),
}


def round_trip_s(docs: dict[str, dict[str, Any]]) -> float | None:
    """What the run's Redis round trips cost: the bare redis-py SET+GET of the smallest value."""
    rows = [r for r in docs.get("backend", {}).get("rows", []) if r.get("bare_setget_s")]
    if not rows:
        return None
    return float(min(rows, key=lambda r: r["encoded_bytes"])["bare_setget_s"])


def conditions(docs: dict[str, dict[str, Any]]) -> str:
    """The conditions of the run, in one sentence: cores, versions, servers, the round trip."""
    machine = next((d["machine"] for d in docs.values() if d.get("machine")), {})
    redis_kind = next((d["redis"]["kind"] for d in docs.values() if "redis" in d), "?")
    redis_kind = redis_kind.replace(" (started by the suite)", "")
    postgres = docs.get("airflow", {}).get("metadata_db", {}).get("postgres", "PostgreSQL")
    postgres = postgres.replace(" (started by the suite)", "")
    setget = round_trip_s(docs)
    text = (
        f"Measured by `make bench` on a {machine.get('cpus', '?')}-core Linux machine: Python "
        f"{machine.get('python', '?')}, Airflow {machine.get('airflow', '?')}, redis-py "
        f"{machine.get('redis_py', '?')} with hiredis, {redis_kind}, {postgres} as the metadata DB, and S3 "
        "served by moto, all on loopback"
    )
    if setget is not None:
        took = fmt_seconds(setget)
        text += f"; a bare redis-py `SET` + `GET` of a small value (two round trips) took {took}"
    text += (
        ". Every comparison ran side by side, interleaved round by round; a ratio is the median of the "
        "per-round ratios, with its p25-p75 spread in brackets."
    )
    if any(d.get("smoke") for d in docs.values()):
        text += " **SMOKE RUN**: tiny sizes, few rounds; these figures only show the suite works."
    return text


# The goals the summary shows: PostgreSQL (what deployments run) and the published comparisons; the
# SQLite and local-disk rows stay in RESULTS.md.
def _headline(goal: dict[str, Any]) -> bool:
    text = goal["goal"]
    return ", sqlite:" not in text and "local disk" not in text


def summary(docs: dict[str, dict[str, Any]]) -> str:
    """The one table of headline figures (SUMMARY.md), quoted by README.md and the docs."""
    rows = []
    for g in filter(_headline, goals(docs)):
        measured = g["measured"]
        if isinstance(measured, (int, float)):
            measured = ratio_text(measured, g.get("spread"))
        target = g["target"] if isinstance(g["target"], str) else f"{g['target']:g}x"
        shown = f"**{measured}**" if g["met"] else measured
        rows.append([g["goal"], target, shown, "met" if g["met"] else "not\u00a0met"])  # one line
    return (
        conditions(docs)
        + "\n\n"
        + table(["what is measured", "goal", "measured: median [p25-p75]", "status"], rows)
        + "\n"
    )


def markdown(docs: dict[str, dict[str, Any]]) -> str:
    parts = [
        "# redis-xcom benchmark results",
        "",
        "Generated by `python -m benchmarks` (`benchmarks/report.py`) from the JSON files next to this "
        "one, which hold the raw figures.",
        "",
        conditions(docs),
    ]
    parts += ["", "## Goals", "", goals_table(goals(docs))]
    for name in ("codec", "backend", "airflow", "deployment", "scaling", "cluster", "hybrid", "state_store"):
        if name in docs and name in SECTIONS:
            title, section = SECTIONS[name]
            try:
                body = section(docs[name])
            except (KeyError, TypeError, ValueError) as exc:
                body = f"(could not render {name}.json: {exc!r})"
            parts += ["", f"## {title}", "", body]
    return "\n".join(parts) + "\n"


# --- chart --------------------------------------------------------------------------------------


def chart(docs: dict[str, dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Two panels a row, 1200 px wide: readable at the docs' column width, and linked there at full size.
    plt.rcParams.update({"font.size": 13, "axes.titlesize": 14, "legend.fontsize": 11})
    fig, grid = plt.subplots(6, 2, figsize=(12, 33))
    flat = [ax for row in grid for ax in row]
    axes = [flat[0:3], flat[3:6], flat[6:9], flat[9:12]]
    fig.suptitle(
        "redis-xcom benchmarks (medians; error bars p25-p75)"
        + (" - SMOKE" if any(d.get("smoke") for d in docs.values()) else "")
    )
    _chart_codec(axes[0][0], docs.get("codec"))
    _chart_backend(axes[0][1], docs.get("backend"))
    _chart_airflow(axes[0][2], docs.get("airflow"))
    _chart_airflow_db(axes[1][0], docs.get("airflow"))
    _chart_pull(axes[1][1], docs.get("scaling"))
    _chart_clear(axes[1][2], docs.get("scaling"))
    _chart_deployment_time(axes[2][0], docs.get("deployment"))
    _chart_deployment_cpu(axes[2][1], docs.get("deployment"))
    _chart_memory(axes[2][2], docs.get("deployment"))
    _chart_cluster(axes[3][0], docs.get("cluster"))
    _chart_cluster_spread(axes[3][1], docs.get("cluster"))
    axes[3][2].set_axis_off()
    from matplotlib.ticker import FuncFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:g}")
    blank = FuncFormatter(lambda _v, _pos: "")
    for ax in fig.axes:
        for axis, limits in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
            if axis.get_scale() == "log":
                axis.set_major_formatter(plain)
                # Label the minor ticks only when the axis spans too little for major ones to show.
                wide = min(limits) > 0 and max(limits) / min(limits) > 20
                axis.set_minor_formatter(blank if wide else plain)
    fig.tight_layout(rect=(0, 0, 1, 0.99))  # room for the suptitle
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _empty(ax: Any, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} results", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


def _chart_codec(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc or not doc.get("results"):
        return _empty(ax, "codec")
    shapes = [
        (shape, info["airflow-serde+json"])
        for shape, info in doc["results"].items()
        if info.get("airflow-serde+json", {}).get("supported")
    ]
    if not shapes:
        return _empty(ax, "codec")
    xs = range(len(shapes))
    ratios = [r["ratio"] for _, r in shapes]
    ax.bar(xs, ratios, color="#c0392b")
    for x, ratio in zip(xs, ratios, strict=True):
        ax.text(x, ratio, f"{ratio:.1f}x", ha="center", va="bottom", fontsize=11)
    ax.axhline(
        CODEC_GOAL, color="black", linestyle="dashed", linewidth=1, label=f"goal {CODEC_GOAL:g}x (records)"
    )
    ax.axhline(1.0, color="grey", linewidth=0.8)
    ax.set_xticks(list(xs), [s for s, _ in shapes], rotation=15)
    ax.set_ylabel("Airflow serde+JSON time / redis-xcom codec time")
    ax.set_title("1. Codec: speed-up over the default backend's path")
    ax.legend(fontsize=11)
    return None


BAR_WIDTH = 0.2  # four backends side by side per point


def _backend_bars(rows: list[dict[str, Any]]) -> list[tuple[str, list[float]]]:
    """Each backend with the x positions of its bars: one group of three per (shape, S, N)."""
    present = {b for r in rows for b in r["backends"]}
    backends = [b for b in (*AIRFLOW_BACKENDS, "objectstorage") if b in present]
    middle = (len(backends) - 1) / 2
    return [(b, [j + (i - middle) * BAR_WIDTH for j in range(len(rows))]) for i, b in enumerate(backends)]


def _chart_rows(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows a chart shows: PostgreSQL's when there are any (what deployments run)."""
    rows = doc["rows"]
    return [r for r in rows if r.get("db") == "postgres"] or rows


def _finish_airflow_axes(ax: Any, rows: list[dict[str, Any]], ylabel: str, title: str) -> None:
    ax.set_yscale("log")
    ax.set_xticks(range(len(rows)), [_point_label(r) for r in rows], fontsize=10)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=11)


def _point_label(row: dict[str, Any]) -> str:
    return f"{row.get('shape', 'text')}\n{fmt_bytes(row['size'])}\nx {row['n']}\n{row.get('db', 'sqlite')}"


def _chart_airflow_db(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc or not doc.get("rows"):
        return _empty(ax, "airflow")
    rows = _chart_rows(doc)
    for backend, xs in _backend_bars(rows):
        growth = [max(r["backends"].get(backend, {}).get("db_growth_bytes", 0), 0) / 1024 for r in rows]
        ax.bar(
            xs, [max(g, 0.5) for g in growth], BAR_WIDTH, label=BACKEND_LABELS[backend], color=COLORS[backend]
        )
    _finish_airflow_axes(
        ax, rows, "metadata DB growth per run, KB (log)", "3. Metadata DB growth per DAG run"
    )
    return None


def _ratio_bars(ax: Any, rows: list[dict[str, Any]]) -> range:
    """Per shape, the median ratio over bare with its p25-p75 bar and the goal dashed; returns the xs."""
    xs = range(len(rows))
    med = [r["ratio_median"] for r in rows]
    err = [
        [m - r["ratio_p25"] for m, r in zip(med, rows, strict=True)],
        [r["ratio_p75"] - m for m, r in zip(med, rows, strict=True)],
    ]
    ax.bar(xs, med, yerr=err, capsize=4, color=COLORS["redis_xcom"])
    for x, r in zip(xs, rows, strict=True):
        if r["goal_ratio"]:
            ax.hlines(r["goal_ratio"], x - 0.4, x + 0.4, colors="black", linestyles="dashed")
        ax.text(x, r["ratio_median"], f"{r['ratio_median']:.2f}x", ha="center", va="bottom", fontsize=11)
    ax.axhline(1.0, color="grey", linewidth=0.8)
    return xs


def _chart_backend(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc:
        return _empty(ax, "backend")
    rows = doc["rows"]
    xs = _ratio_bars(ax, rows)
    ax.set_xticks(list(xs), [r["shape"] for r in rows], rotation=15)
    ax.set_yscale("log")  # records are codec-bound (far above 1); the goals sit near 1
    ax.set_ylabel("push+pull time / bare redis-py SET+GET (log)")
    ax.set_title("2. Backend overhead vs bare redis-py (dashed: goal)")
    return None


def _chart_airflow(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc or not doc.get("rows"):
        return _empty(ax, "airflow")
    rows = _chart_rows(doc)
    for backend, xs in _backend_bars(rows):
        meds, lo, hi = [], [], []
        for r in rows:
            b = r["backends"].get(backend, {})
            x = b.get("xcom_phase_s")
            meds.append(x["median"] if x else 0)
            lo.append(x["median"] - x["p25"] if x else 0)
            hi.append(x["p75"] - x["median"] if x else 0)
        ax.bar(
            xs,
            meds,
            BAR_WIDTH,
            yerr=[lo, hi],
            capsize=3,
            label=BACKEND_LABELS[backend],
            color=COLORS[backend],
        )
    _finish_airflow_axes(
        ax,
        rows,
        "XCom phase of the DAG run (s, log)",
        "3. End to end, airflow dags test: N producers of S bytes + consumer",
    )
    return None


DEPLOYMENT_BACKENDS = ("default", "objectstorage_s3", "redis_xcom")


def _deployment_bars(ax: Any, doc: dict[str, Any], value: Any, ylabel: str, title: str) -> None:
    rows = doc["rows"]
    middle = (len(DEPLOYMENT_BACKENDS) - 1) / 2
    for i, backend in enumerate(DEPLOYMENT_BACKENDS):
        xs = [j + (i - middle) * 0.27 for j in range(len(rows))]
        ys = [value(r["backends"].get(backend, {})) or 0 for r in rows]
        ax.bar(xs, ys, 0.27, label=BACKEND_LABELS[backend], color=COLORS[backend])
    labels = [f"K={r['parallelism']}\n{r['n']} x {fmt_bytes(r['size'])}" for r in rows]
    ax.set_xticks(range(len(rows)), labels, fontsize=10)
    ax.set_yscale("log")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=11)


def _chart_deployment_time(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc or not doc.get("rows"):
        return _empty(ax, "deployment")
    _deployment_bars(
        ax,
        doc,
        lambda b: b.get("dag_run_s", {}).get("median"),
        "DAG run (s, log)",
        "5. Real deployment (LocalExecutor, PostgreSQL): DAG run time",
    )
    return None


def _chart_deployment_cpu(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc or not doc.get("rows"):
        return _empty(ax, "deployment")
    _deployment_bars(
        ax,
        doc,
        lambda b: b.get("cpu_s", {}).get("api_server"),
        "api-server CPU per DAG run (s, log)",
        "5. Real deployment: api-server CPU",
    )
    return None


def _chart_memory(ax: Any, doc: dict[str, Any] | None) -> None:
    backends = (doc or {}).get("memory", {}).get("backends", {})
    if not backends:
        return _empty(ax, "memory")
    names = [b for b in DEPLOYMENT_BACKENDS if b in backends]
    for i, role in enumerate(("produce", "consume")):
        xs = [j + (i - 0.5) * 0.35 for j in range(len(names))]
        ys = [
            backends[b].get(role, {}).get("task", {}).get("ratio_to_payload", {}).get("median", 0)
            for b in names
        ]
        ax.bar(xs, ys, 0.35, label=f"{role}r task process")
    ax.axhline(2.0, color="black", linestyle="dashed", linewidth=0.8)
    ax.set_xticks(range(len(names)), [BACKEND_LABELS[b] for b in names], fontsize=11)
    ax.set_ylabel("peak RSS growth / payload")
    ax.set_title("5. Worker memory per value (dashed: goal 2x)")
    ax.legend(fontsize=11)
    return None


def _chart_cluster(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc or not doc.get("rows"):
        return _empty(ax, "cluster")
    rows = doc["rows"]
    xs = _ratio_bars(ax, rows)
    ax.set_xticks(list(xs), [f"{r['shape']}\n({fmt_bytes(r['encoded_bytes'])})" for r in rows])
    ax.set_ylabel("push+pull time / bare RedisCluster SET+GET")
    ax.set_title("6. Redis Cluster (3 masters): overhead vs bare RedisCluster (dashed: goal)")
    return None


def _chart_cluster_spread(ax: Any, doc: dict[str, Any] | None) -> None:
    spread = (doc or {}).get("spread")
    if not spread:
        return _empty(ax, "cluster spread")
    nodes = list(spread["keys_per_master"])
    counts = [spread["keys_per_master"][n] for n in nodes]
    mean = statistics.mean(counts)
    ax.bar(range(len(nodes)), counts, color=COLORS["redis_xcom"])
    ax.axhline(mean, color="grey", linewidth=0.8, label=f"mean {mean:.0f}")
    ax.axhline(1.1 * mean, color="black", linestyle="dashed", linewidth=0.8, label="goal: max <= 1.1 x mean")
    ax.set_xticks(range(len(nodes)), [f"master {i + 1}\n{n}" for i, n in enumerate(nodes)], fontsize=11)
    ax.set_ylabel("keys held (values and run indexes)")
    ax.set_title(
        f"6. {spread['runs']} DAG runs over a cluster's masters: max/mean {spread['max_over_mean']:.3f}"
    )
    ax.legend(fontsize=8, loc="lower right")
    return None


def _chart_pull(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc or not doc.get("pull"):
        return _empty(ax, "scaling")
    pull = doc["pull"]
    ns = [r["n"] for r in pull]
    ax.loglog(
        ns, [r["round_trips_per_item"] for r in pull], "o-", color="#7f8c8d", label="round trips, per item"
    )
    ax.loglog(
        ns, [r["round_trips_get_all"] for r in pull], "o-", color="#c0392b", label="round trips, get_all"
    )
    ax.set_xlabel("N mapped outputs pulled")
    ax.set_ylabel("Redis round trips")
    twin = ax.twinx()
    twin.loglog(
        ns, [r["per_item_s"] * 1e3 for r in pull], "s--", color="#7f8c8d", alpha=0.6, label="ms, per item"
    )
    twin.loglog(
        ns, [r["get_all_s"] * 1e3 for r in pull], "s--", color="#c0392b", alpha=0.6, label="ms, get_all"
    )
    twin.set_ylabel("time (ms, dashed)")
    lines = ax.get_legend_handles_labels()
    tlines = twin.get_legend_handles_labels()
    ax.legend(lines[0] + tlines[0], lines[1] + tlines[1], fontsize=8, loc="upper left")
    ax.set_title("4. Pulling N mapped outputs")
    return None


def _chart_clear(ax: Any, doc: dict[str, Any] | None) -> None:
    if not doc or not doc.get("clear"):
        return _empty(ax, "clear")
    clear = doc["clear"]
    xs = [max(r["unrelated_keys"], 1) for r in clear]
    for key, label, color in (
        ("backend_clear_s", "backend.clear(dag_id, run_id) (run index)", "#c0392b"),
        ("unlink_known_s", "UNLINK of the 100 known keys", "#27ae60"),
    ):
        med = [r[key]["median"] * 1e3 for r in clear]
        err = [
            [(r[key]["median"] - r[key]["p25"]) * 1e3 for r in clear],
            [(r[key]["p75"] - r[key]["median"]) * 1e3 for r in clear],
        ]
        ax.errorbar(xs, med, yerr=err, fmt="o-", capsize=3, color=color, label=label)
    ax.set_xscale("symlog", linthresh=1000)
    ax.set_yscale("log")
    ax.set_xlabel("unrelated keys in Redis")
    ax.set_ylabel("clear of one run of 100 keys (ms, log)")
    ax.set_title("4. Clearing one run")
    ax.legend(fontsize=11)
    return None


def build(out: Path) -> None:
    docs = load(out)
    if not docs:
        print(f"report: no results in {out}", file=sys.stderr)
        return
    (out / "RESULTS.md").write_text(markdown(docs))
    text = summary(docs)
    (out / "SUMMARY.md").write_text(text)
    if out.resolve() == DEFAULT_RESULTS and not any(d.get("smoke") for d in docs.values()):
        update_readme(text)
    chart(docs, out / "chart.png")


README = Path(__file__).resolve().parent.parent / "README.md"
DEFAULT_RESULTS = Path(__file__).resolve().parent / "results"
README_START, README_END = "<!-- benchmark-summary: start", "<!-- benchmark-summary: end -->"


def update_readme(text: str, readme: Path = README) -> None:
    """Rewrite README.md's block between the benchmark-summary markers with SUMMARY.md's text."""
    if not readme.exists():
        return
    current = readme.read_text()
    start, end = current.find(README_START), current.find(README_END)
    if start < 0 or end < start:
        print(f"report: no benchmark-summary markers in {readme}", file=sys.stderr)
        return
    start = current.index("\n", start) + 1
    readme.write_text(current[:start] + "\n" + text + "\n" + current[end:])


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "results")
