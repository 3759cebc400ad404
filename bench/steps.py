"""python -m bench.steps SCRATCH STAGE[,STAGE...] [--customers N --days D]: run named stages
on a company already in SCRATCH (``C720_LOCAL_DIR``), each in its own process measured by
:func:`bench.measure.measure` (wall, CPU, peak RSS), and print one JSON line per stage.

Unlike ``python -m bench`` it never empties SCRATCH, so one simulated company can be
measured before and after a change (e.g. ``simulate,ingest_crm,ingest_events`` once, then
``train_recommender,recommend`` from two checkouts). Results are appended to
``SCRATCH/steps.jsonl``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.__main__ import _as_of
from bench.measure import measure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steps")
    parser.add_argument("scratch", type=Path)
    parser.add_argument("stages", help="comma-separated keys of bench.stages.STAGES")
    parser.add_argument("--customers", type=int, default=50_000, help="for simulate")
    parser.add_argument("--days", type=int, default=365, help="for simulate")
    parser.add_argument("--tag", default="", help="label stored with each result")
    parser.add_argument("--as-of", help="the run date (default: the simulation's last day)")
    args = parser.parse_args(argv)
    scratch = args.scratch.resolve()
    logs = scratch / "bench-logs"
    logs.mkdir(parents=True, exist_ok=True)
    for stage in args.stages.split(","):
        params = {
            "customers": args.customers,
            "days": args.days,
            "seed": 7,
            "as_of": args.as_of or _as_of(scratch),
            "log_dir": str(logs),
        }
        result = measure(stage, params, scratch, logs / f"{args.tag or 'step'}-{stage}.log")
        row = {"tag": args.tag, "stage": stage, "as_of": params["as_of"]} | {
            k: result.get(k) for k in ("seconds", "cpu_seconds", "peak_rss_mb", "error")
        }
        print(json.dumps(row), flush=True)
        with (scratch / "steps.jsonl").open("a") as out:
            out.write(json.dumps(row | {"summary": result.get("summary")}, default=str) + "\n")
        if result.get("error"):
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
