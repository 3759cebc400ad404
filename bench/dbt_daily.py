"""Per-model dbt times of a full build and of the build after one appended day.

``python -m bench.dbt_daily --scratch DIR [--customers 10000 --days 365] [--phase all|full|incr]``

full: simulate (once, cached in DIR/sources-cache), ingest, ``dbt build --selector marts``,
churn training and scoring, ``--selector score_marts``; the state is then copied to
DIR/afterfull. incr: from that copy, one appended day, ingest, the two builds again (no
training). Each build's ``run_results.json`` is kept as DIR/<phase>[-scores].json and a
per-model table of every kept result is printed (execution_time per model; a model's
hooks included). Stages run in child processes with ``C720_LOCAL_DIR=DIR/run``, as in
bench.stages. A shared machine: compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path


def _stage(name: str, as_of: str) -> float:
    code = f"from orchestrate.stages import run_stage; run_stage({name!r}, {as_of!r})"
    start = time.time()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.time() - start


def _last_day(run: Path) -> str:
    return sorted(p.name for p in (run / "sources" / "events").iterdir())[-1].split("=")[1]


def _keep(run: Path, scratch: Path, name: str) -> None:
    shutil.copy(run / "dbt" / "target" / "run_results.json", scratch / f"{name}.json")


def table(scratch: Path, names: list[str]) -> str:
    times: dict[str, dict[str, float]] = {}
    for name in names:
        for r in json.loads((scratch / f"{name}.json").read_text())["results"]:
            if r["unique_id"].startswith(("model.", "snapshot.")):
                times.setdefault(r["unique_id"].split(".")[-1], {})[name] = r["execution_time"]
    lines = ["| model | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for model, t in sorted(times.items(), key=lambda kv: -max(kv[1].values())):
        lines.append(
            f"| {model} | " + " | ".join(f"{t[n]:.2f}" if n in t else "" for n in names) + " |"
        )
    lines.append(
        "| **models** | "
        + " | ".join(f"{sum(t.get(n, 0) for t in times.values()):.2f}" for n in names)
        + " |"
    )
    elapsed = [json.loads((scratch / f"{n}.json").read_text())["elapsed_time"] for n in names]
    lines.append("| **dbt elapsed** | " + " | ".join(f"{e:.2f}" for e in elapsed) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.dbt_daily", description=__doc__.split("\n")[0]
    )
    p.add_argument("--scratch", type=Path, required=True)
    p.add_argument("--customers", type=int, default=10_000)
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--phase", choices=("all", "full", "incr"), default="all")
    args = p.parse_args(argv)
    scratch = args.scratch.resolve()
    run, cache, after = scratch / "run", scratch / "sources-cache", scratch / "afterfull"
    os.environ["C720_LOCAL_DIR"] = str(run)
    if args.phase in ("all", "full"):
        shutil.rmtree(run, ignore_errors=True)
        if not cache.exists():
            sim = ["--customers", str(args.customers), "--days", str(args.days), "--seed", "7"]
            subprocess.run(
                [sys.executable, "-m", "simulator", *sim, "--out", str(cache), "-q"], check=True
            )
        shutil.copytree(cache, run / "sources")
        day = _last_day(run)
        for name in ("ingest_crm", "ingest_events"):
            print(f"full {name} {_stage(name, day):.1f} s", flush=True)
        print(f"full dbt marts {_stage('marts', day):.1f} s", flush=True)
        _keep(run, scratch, "full")
        for name in ("train_churn", "score_churn"):
            print(f"full {name} {_stage(name, day):.1f} s", flush=True)
        print(f"full dbt score_marts {_stage('score_marts', day):.1f} s", flush=True)
        _keep(run, scratch, "full-scores")
        shutil.rmtree(after, ignore_errors=True)
        shutil.copytree(run, after, ignore=shutil.ignore_patterns("logs"))
    if args.phase in ("all", "incr"):
        shutil.rmtree(run, ignore_errors=True)
        shutil.copytree(after, run)
        out = str(run / "sources")
        subprocess.run(
            [sys.executable, "-m", "simulator", "--append-days", "1", "--out", out, "-q"],
            check=True,
        )
        day = _last_day(run)
        for name in ("ingest_crm", "ingest_events"):
            print(f"incr {name} {_stage(name, day):.1f} s", flush=True)
        print(f"incr dbt marts {_stage('marts', day):.1f} s", flush=True)
        _keep(run, scratch, "incr")
        print(f"incr score_churn {_stage('score_churn', day):.1f} s", flush=True)
        print(f"incr dbt score_marts {_stage('score_marts', day):.1f} s", flush=True)
        _keep(run, scratch, "incr-scores")
    names = [
        n
        for n in ("full", "incr", "full-scores", "incr-scores")
        if (scratch / f"{n}.json").exists()
    ]
    print(table(scratch, names))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
