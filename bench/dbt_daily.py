"""python -m bench.dbt_daily COMPANY WORK: the dbt build of one appended day against the
first full build, per model — the figure ``make bench`` reports as ``dbt_incremental_vs_full``,
without the rest of the pipeline.

COMPANY is a scratch folder holding a simulated and ingested company (``python -m
bench.steps COMPANY simulate,ingest_crm,ingest_events``); it is copied to WORK (emptied
first), so the same company can be measured from two checkouts. In WORK, each step in its
own measured process (``bench.measure``, as ``make bench``): ``dbt_build`` (the ``marts``
selector, empty warehouse), ``append_day``, ``ingest_crm``, ``ingest_events``, ``dbt_build``
again. After each build dbt's ``run_results.json`` is kept, and dbt's log says whether the
build parsed the project fully or partially.

Prints the two builds' wall and CPU seconds, their ratio, and the models (each with its
tests' seconds) ranked by the incremental build's time; writes all of it to
``WORK/dbt_daily.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any

from bench.__main__ import _as_of
from bench.measure import measure

STEPS = ("dbt_build", "append_day", "ingest_crm", "ingest_events", "dbt_build")
# dbt's own log lines about parsing (dbt/parser/manifest.py, dbt/events/types.py)
PARSE_MESSAGES = {
    "Unable to do partial parsing": "full",
    "Partial parsing enabled": "partial",
    "No changes found, skipping parsing": "partial",
}


def _parse_kind(log_text: str) -> str:
    kinds = [kind for text, kind in PARSE_MESSAGES.items() if text in log_text]
    return "full" if "full" in kinds or not kinds else "partial"


def per_model(run_results: dict[str, Any]) -> dict[str, float]:
    """Seconds per model, seed or snapshot; data tests and unit tests summed as one line each
    (run_results does not name the model a data test is attached to)."""
    out: dict[str, float] = {}
    for result in run_results["results"]:
        kind, _, name = result["unique_id"].split(".")[:3]
        if kind in ("test", "unit_test"):
            name = f"({kind.replace('_', ' ')}s)"
        out[name] = round(out.get(name, 0.0) + float(result["execution_time"] or 0.0), 2)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbt_daily")
    parser.add_argument("company", type=Path, help="a simulated and ingested scratch folder")
    parser.add_argument("work", type=Path, help="a scratch folder to copy it to (emptied)")
    parser.add_argument("--tag", default="", help="label stored with the result")
    args = parser.parse_args(argv)
    work = args.work.resolve()
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(args.company.resolve(), work, ignore=shutil.ignore_patterns("dbt", "*.jsonl"))
    logs = work / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    dbt_log = work / "dbt" / "logs" / "dbt.log"
    builds: list[dict[str, Any]] = []
    for number, stage in enumerate(STEPS):
        log_start = dbt_log.stat().st_size if dbt_log.exists() else 0
        params = {"as_of": _as_of(work), "log_dir": str(logs), "seed": 7}
        result = measure(stage, params, work, logs / f"{number}-{stage}.log")
        if result.get("error"):
            print(json.dumps({"stage": stage, "error": result["error"]}))
            return 1
        if stage != "dbt_build":
            continue
        run_results = json.loads((work / "dbt" / "target" / "run_results.json").read_text())
        with dbt_log.open(errors="replace") as log:
            log.seek(log_start)
            parse = _parse_kind(log.read())
        builds.append(
            {
                "as_of": params["as_of"],
                "seconds": result["seconds"],
                "cpu_seconds": result["cpu_seconds"],
                "peak_rss_mb": result["peak_rss_mb"],
                "parse": parse,
                "dbt_elapsed": round(run_results["elapsed_time"], 2),
                "models": per_model(run_results),
            }
        )
        # what is not a node's execution: start-up, parsing, hooks, the graph
        builds[-1]["models"]["(outside nodes)"] = round(
            result["seconds"] - sum(builds[-1]["models"].values()), 2
        )
    full, incremental = builds
    summary = {
        "tag": args.tag,
        "full": full,
        "incremental": incremental,
        "ratio_wall": round(incremental["seconds"] / full["seconds"], 3),
        "ratio_cpu": round(incremental["cpu_seconds"] / full["cpu_seconds"], 3),
    }
    (work / "dbt_daily.json").write_text(json.dumps(summary, indent=1))
    print(
        f"{args.tag}: full {full['seconds']:.1f} s ({full['cpu_seconds']:.1f} CPU s, parse "
        f"{full['parse']}), incremental {incremental['seconds']:.1f} s "
        f"({incremental['cpu_seconds']:.1f} CPU s, parse {incremental['parse']}): ratio "
        f"{summary['ratio_wall']:.3f} wall, {summary['ratio_cpu']:.3f} CPU"
    )
    ranking = sorted(incremental["models"].items(), key=lambda kv: -kv[1])
    print("| node | incremental s | full s |\n|---|---:|---:|")
    for name, seconds in ranking[:25]:
        print(f"| {name} | {seconds:.2f} | {full['models'].get(name, 0.0):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
