"""The benchmark report: one JSON file, a Markdown table and PNG charts under bench/results/.

Written after every step, so an interrupted run still leaves what it measured.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.measure import commit
from bench.plan import DAILY, RATIOS, TRAINING

PACKAGES = [
    "duckdb",
    "dbt-core",
    "dbt-duckdb",
    "apache-airflow",
    "great-expectations",
    "lightgbm",
    "pandas",
]


def machine_facts() -> dict[str, Any]:
    mem_kb = 0
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    cpu_model = ""
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "niceness": os.nice(0),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def versions(root: Path) -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    out["customer720 commit"] = commit(root)
    return out


def step_seconds(step: dict | None) -> float | None:
    """The time a ratio uses: a reference's timed core, else the stage call."""
    if not step or step.get("error"):
        return None
    core = (step.get("summary") or {}).get("core_seconds")
    return core if core is not None else step.get("seconds")


def step_cpu(step: dict) -> float | None:
    core = (step.get("summary") or {}).get("core_cpu_seconds")
    return core if core is not None else step.get("cpu_seconds")


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or not den:
        return None
    return round(num / den, 3)


def _daily_total(
    steps: dict[str, dict], phase: str, key: str, skip: tuple[str, ...] = (), prefix: str = ""
) -> float | None:
    """The sum of ``key`` over the daily stages of a phase (step ids ``phase/<prefix><stage>``);
    None unless every one ran without error."""
    ids = [f"{phase}/{prefix}{s}" for s in DAILY if s not in skip]
    values = [steps.get(i, {}).get(key) for i in ids]
    if any(v is None for v in values) or any(steps[i].get("error") for i in ids):
        return None
    return round(sum(values), 2)


def _ok(step: dict | None) -> dict | None:
    return step if step and not step.get("error") else None


def _largest(values: Iterable[float | None]) -> float | None:
    """The largest value, or None when one is missing."""
    known = list(values)
    return None if not known or None in known else max(v for v in known if v is not None)


def spark_vs_duckdb(steps: dict[str, dict]) -> list[dict[str, Any]]:
    """Per daily stage, the full run's DuckDB step against the same stage on Spark
    (``spark/spark_<stage>``), then the whole chain (sums; None unless every stage ran on
    both). Ratios are Spark / DuckDB; ``error`` names a side that failed."""
    rows = []
    for stage in DAILY:
        duck, spark = steps.get(f"full/{stage}"), steps.get(f"spark/spark_{stage}")
        if duck is None and spark is None:
            continue
        d, s = _ok(duck), _ok(spark)
        failed = [
            side for side, step in (("DuckDB", duck), ("Spark", spark)) if step and not _ok(step)
        ]
        rows.append(
            {
                "stage": stage,
                "duckdb_seconds": d and d.get("seconds"),
                "spark_seconds": s and s.get("seconds"),
                "wall": _ratio(s and s.get("seconds"), d and d.get("seconds")),
                "cpu": _ratio(s and s.get("cpu_seconds"), d and d.get("cpu_seconds")),
                "duckdb_peak_rss_mb": d and d.get("peak_rss_mb"),
                "spark_peak_rss_mb": s and s.get("peak_rss_mb"),
                "error": ", ".join(failed) or None,
            }
        )
    if rows:
        duck_sum = {k: _daily_total(steps, "full", k) for k in ("seconds", "cpu_seconds")}
        spark_sum = {k: _daily_total(steps, "spark", k, prefix="spark_") for k in duck_sum}
        rows.append(
            {
                "stage": "whole chain",
                "duckdb_seconds": duck_sum["seconds"],
                "spark_seconds": spark_sum["seconds"],
                "wall": _ratio(spark_sum["seconds"], duck_sum["seconds"]),
                "cpu": _ratio(spark_sum["cpu_seconds"], duck_sum["cpu_seconds"]),
                # the chain's peak: its largest step (one process at a time)
                "duckdb_peak_rss_mb": _largest(r["duckdb_peak_rss_mb"] for r in rows),
                "spark_peak_rss_mb": _largest(r["spark_peak_rss_mb"] for r in rows),
                "error": None,
            }
        )
    return rows


def ratios(steps: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """Time ratios (ours / the other) by wall time (``value``) and by CPU time (``cpu``).

    On a shared machine the CPU ratio is the steadier one: wall time also counts the time
    a stage waited for the neighbours' jobs.
    """
    out = {}
    for name, num, den, meaning in RATIOS:
        a, b = steps.get(num), steps.get(den)
        out[name] = {
            "value": _ratio(step_seconds(a), step_seconds(b)),
            "cpu": _ratio(step_cpu(a), step_cpu(b)) if a and b and not a.get("error") else None,
            "numerator": num,
            "denominator": den,
            "meaning": meaning,
        }
    chain = spark_vs_duckdb(steps)[-1:] or [{"wall": None, "cpu": None}]
    out["spark_chain_vs_duckdb"] = {
        "value": chain[0]["wall"],
        "cpu": chain[0]["cpu"],
        "numerator": f"spark: the {len(DAILY)} daily stages on Spark, one process each",
        "denominator": f"full: the same {len(DAILY)} stages on DuckDB",
        "meaning": "the whole first run (training included) on Spark local[*] vs on DuckDB "
        "(same data, same date, 2 cores; per stage in the table below)",
    }
    full = _daily_total(steps, "full", "seconds")
    incremental = _daily_total(steps, "incremental", "seconds")
    out["daily_incremental_vs_full"] = {
        "value": _ratio(incremental, full),
        "cpu": _ratio(
            _daily_total(steps, "incremental", "cpu_seconds"),
            _daily_total(steps, "full", "cpu_seconds"),
        ),
        "numerator": f"incremental: {len(DAILY)} daily stages ({incremental} s)",
        "denominator": f"full: the same stages ({full} s)",
        "meaning": "the whole daily pipeline after one appended day vs the first full run",
    }
    # Issue #18's measure: a day as the daily DAGs run it (training is the weekly DAG)
    # against the whole first run, training included.
    training = TRAINING
    day = _daily_total(steps, "incremental", "seconds", training)
    out["daily_run_vs_full_run"] = {
        "value": _ratio(day, full),
        "cpu": _ratio(
            _daily_total(steps, "incremental", "cpu_seconds", training),
            _daily_total(steps, "full", "cpu_seconds"),
        ),
        "numerator": f"incremental: the daily stages without training ({day} s)",
        "denominator": f"full: every stage, training included ({full} s)",
        "meaning": "a day's run (ingest, dbt, gates, scoring, publish, writeback) after one "
        "appended day vs the first full run",
    }
    airflow = steps.get("airflow/airflow")
    ok = airflow and not airflow.get("error")
    # `orchestrate run` trains only when no model exists (training is the weekly DAG), and
    # by then the full phase has made one: the direct side leaves training out too.
    skip = training
    direct = _daily_total(steps, "incremental", "process_seconds", skip)
    # whole-process CPU when measured (start-up and imports included, as on Airflow's side)
    cpu_key = "process_cpu_seconds"
    direct_cpu = _daily_total(steps, "incremental", cpu_key, skip)
    if direct_cpu is None:
        cpu_key, direct_cpu = "cpu_seconds", _daily_total(steps, "incremental", "cpu_seconds", skip)
    out["airflow_vs_direct"] = {
        "value": _ratio(airflow["seconds"] if ok else None, direct),
        "cpu": _ratio(airflow["cpu_seconds"] if ok else None, direct_cpu),
        "numerator": "airflow/airflow: python -m orchestrate run --date D",
        "denominator": f"incremental: the same stages but training, one process each ({direct} s wall, "
        f"{direct_cpu} s CPU by {cpu_key})",
        "meaning": "one appended day through Airflow (ingest, transform, score DAGs) vs the "
        "same task functions called directly (both with one new day of data, no training; "
        "process start-up included on both sides)",
    }
    # The transform DAG's dbt tasks (first start to last end, as Airflow recorded them in
    # the airflow step) vs one plain `dbt build` of the same selector, date and warehouse.
    transform = (airflow or {}).get("summary", {}).get("transform") or {} if ok else {}
    plain = steps.get("airflow/dbt_plain")
    plain_ok = plain and not plain.get("error")
    out["dbt_in_airflow_vs_plain"] = {
        "value": _ratio(
            transform.get("dbt_span_seconds"), step_seconds(plain) if plain_ok else None
        ),
        "cpu": None,  # Airflow records no CPU time per task
        "numerator": f"airflow/airflow: the transform DAG's dbt tasks {transform.get('dbt_tasks')} "
        f"({transform.get('dbt_span_seconds')} s first start to last end, "
        f"{transform.get('dbt_task_seconds')} s summed)",
        "denominator": "airflow/dbt_plain: dbt build --selector marts, the same date "
        f"({step_seconds(plain) if plain_ok else None} s)",
        "meaning": "dbt inside Airflow (the transform DAG's dbt task, one dbt build) vs one plain "
        "dbt build of the same models and tests (both after a parse for the day before)",
    }
    return out


def _fmt(value: float | None, unit: str = "") -> str:
    return "–" if value is None else f"{value:,.2f}{unit}"


def _gb(value: int | None) -> str:
    return "–" if value is None else f"{value / 1e9:,.2f}"


def markdown(report: dict[str, Any], charts: dict[str, str]) -> str:
    scale = report["scale"]
    m = report["machine"]
    lines = [
        f"# customer720 benchmark — scale {scale['name']} "
        f"({scale['customers']:,} customers × {scale['days']} days)",
        "",
        f"Run {report['started_at']} → {report.get('finished_at') or 'unfinished'}"
        f" ({report['status']}). Machine: {m['cpus']} cores ({m['cpu_model']}), "
        f"{m['memory_gb']} GB RAM, load at start {m['load_at_start']}, niceness {m['niceness']} "
        "(shared machine: other jobs ran beside this one; compare ratios, not seconds).",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
    ]
    if report.get("data"):
        lines += ["Data: " + ", ".join(f"{k} {v}" for k, v in report["data"].items()), ""]
    lines += [
        "## Ratios (time, ours / the other: 1.0 = parity)",
        "",
        "| ratio | wall time | CPU time | meaning |",
        "|---|---:|---:|---|",
    ]
    for name, r in report["ratios"].items():
        lines.append(f"| {name} | {_fmt(r['value'])} | {_fmt(r.get('cpu'))} | {r['meaning']} |")
    lines += _spark_table(report["steps"])
    lines += [
        "",
        "## Steps",
        "",
        "`seconds` and `CPU s` time the stage call in its own process (imports excluded, "
        "and for a pipeline stage dbt and Great Expectations imported first, as Airflow's "
        "task processes start with them; reference steps: the timed core); "
        "`process s` is the whole child process; "
        "`load` is the 1-minute load average before → after; "
        "`scratch GB` is the scratch folder's size after the step and `+disk GB` the most "
        "the disk's used space rose during it (spills, a publish's second copy).",
        "",
        "| step | seconds | CPU s | peak RSS MB | scratch GB | +disk GB | process s | load "
        "| status |",
        "|---|---:|---:|---:|---:|---:|---:|---|---|",
    ]
    for step_id, s in report["steps"].items():
        status = "error: " + s["error"].splitlines()[0][:80] if s.get("error") else "ok"
        lines.append(
            f"| {step_id} | {_fmt(step_seconds(s) if not s.get('error') else s.get('seconds'))} "
            f"| {_fmt(step_cpu(s))} | {_fmt(s.get('peak_rss_mb'))} "
            f"| {_gb(s.get('scratch_bytes'))} | {_gb(s.get('disk_peak_extra_bytes'))} "
            f"| {_fmt(s.get('process_seconds'))} | {s.get('load_before')} → {s.get('load_after')} "
            f"| {status} |"
        )
    start_commit = report["versions"].get("customer720 commit")
    moved = [
        f"{i} ({s['commit']})"
        for i, s in report["steps"].items()
        if s.get("commit") and s["commit"] != start_commit
    ]
    if moved:
        # a long run (scale L) may take a fix between steps: say which code each step ran
        lines += [
            "",
            f"Steps run on another commit than the run's start ({start_commit}): "
            + ", ".join(moved),
        ]
    if report.get("pending"):
        lines += ["", "Not run (yet): " + ", ".join(report["pending"])]
    if charts:
        lines += [""] + [f"![{title}]({name})" for title, name in charts.items()]
    return "\n".join(lines) + "\n"


def _spark_table(steps: dict[str, dict]) -> list[str]:
    rows = spark_vs_duckdb(steps)
    if not any(r["spark_seconds"] is not None or r["error"] for r in rows):
        return []
    lines = [
        "",
        "## Spark local[*] vs DuckDB",
        "",
        "Each daily stage of the full run (`full/<stage>`, DuckDB) and the same stage with the "
        "warehouse on a local Spark session (`spark/spark_<stage>`): same data, same date, one "
        "process each, so each Spark stage starts its own session (a JVM), as an Airflow task "
        "does. Ratios are Spark / DuckDB (1.0 = parity); Spark's CPU time and peak RSS "
        "include its JVM.",
        "",
        "| stage | DuckDB s | Spark s | wall ratio | CPU ratio | DuckDB peak RSS MB "
        "| Spark peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        name = f"**{r['stage']}**" if r["stage"] == "whole chain" else r["stage"]
        status = f" (failed on {r['error']})" if r["error"] else ""
        lines.append(
            f"| {name}{status} | {_fmt(r['duckdb_seconds'])} | {_fmt(r['spark_seconds'])} "
            f"| {_fmt(r['wall'])} | {_fmt(r['cpu'])} | {_fmt(r['duckdb_peak_rss_mb'])} "
            f"| {_fmt(r['spark_peak_rss_mb'])} |"
        )
    return lines


def charts(report: dict[str, Any], out_dir: Path, stem: str) -> dict[str, str]:
    """PNG charts (time per step; incremental vs full); {title: file name}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = {k: v for k, v in report["steps"].items() if not v.get("error")}
    made: dict[str, str] = {}
    if steps:
        names = list(steps)
        values = [step_seconds(steps[n]) or 0.0 for n in names]
        colours = [
            "tab:gray"
            if n.startswith("reference/")
            else "tab:orange"
            if n.startswith("airflow/")
            else "tab:green"
            if n.startswith("incremental/")
            else "tab:red"
            if n.startswith("spark/")
            else "tab:blue"
            for n in names
        ]
        fig, ax = plt.subplots(figsize=(9, 0.32 * len(names) + 1.5))
        ax.barh(names[::-1], values[::-1], color=colours[::-1])
        ax.set_xlabel("seconds (wall)")
        ax.set_title(f"Time per step — scale {report['scale']['name']}")
        fig.tight_layout()
        name = f"{stem}-time.png"
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        made["time per step"] = name
    pairs = [
        (s, steps[f"full/{s}"]["seconds"], steps[f"incremental/{s}"]["seconds"])
        for s in DAILY
        if f"full/{s}" in steps and f"incremental/{s}" in steps
    ]
    if pairs:
        labels = [p[0] for p in pairs]
        fig, ax = plt.subplots(figsize=(9, 0.4 * len(pairs) + 1.5))
        y = range(len(pairs))
        ax.barh([i + 0.2 for i in y], [p[1] for p in pairs], height=0.4, label="full (history)")
        ax.barh([i - 0.2 for i in y], [p[2] for p in pairs], height=0.4, label="one new day")
        ax.set_yticks(list(y), labels)
        ax.invert_yaxis()
        ax.set_xlabel("seconds (wall)")
        ax.set_title(f"Incremental vs full — scale {report['scale']['name']}")
        ax.legend()
        fig.tight_layout()
        name = f"{stem}-incremental.png"
        fig.savefig(out_dir / name, dpi=110)
        plt.close(fig)
        made["incremental vs full"] = name
    return made
