"""python -m bench: measure every pipeline stage at one scale against the engines' limits.

    python -m bench --scale S          # 10k customers × 365 days, a few minutes
    python -m bench --scale M          # 100k × 730 days (~22M events), hours on 2 cores

Simulates a company into a scratch folder (default ``.local/bench/<scale>/``, replaced
each run), runs the pipeline stages one process each (see ``bench.plan``) and writes
``bench/results/bench-<scale>-<time>.{json,md}`` plus PNG charts, after every step.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bench import report as rep
from bench.measure import ROOT, measure
from bench.plan import SCALES, Scale, Step, plan_for

RESULTS = ROOT / "bench" / "results"
MARKER = ".bench-scratch"  # only a folder carrying this is ever deleted


def _prepare_scratch(scratch: Path) -> None:
    if scratch.exists() and any(scratch.iterdir()):
        if not (scratch / MARKER).exists():
            raise SystemExit(
                f"error: {scratch} is not empty and was not made by the benchmark; "
                "choose another --scratch"
            )
        shutil.rmtree(scratch)
    (scratch / "bench-logs").mkdir(parents=True)
    (scratch / MARKER).write_text("made by python -m bench; deleted by the next run\n")


def disk_problem(scratch: Path, needed: int) -> str | None:
    """Why ``scratch`` cannot take a run needing ``needed`` bytes, else None: found before
    a run that would otherwise fill the disk after half an hour of simulation."""
    free = shutil.disk_usage(scratch).free
    if free >= needed:
        return None
    return (
        f"this run needs about {needed / 1e9:.0f} GB of free disk and {scratch} has "
        f"{free / 1e9:.0f} GB: choose a --scratch on a larger disk, or a smaller --scale"
    )


def _as_of(scratch: Path) -> str | None:
    meta = scratch / "sources" / "simulation.json"
    if not meta.exists():
        return None
    info = json.loads(meta.read_text())
    return str(info.get("end_date") or info.get("end"))[:10]


def _data_facts(scratch: Path) -> dict[str, Any]:
    meta = scratch / "sources" / "simulation.json"
    if not meta.exists():
        return {}
    info = json.loads(meta.read_text())
    events = info.get("events", {})
    return {
        "first day": info.get("start"),
        "last day": info.get("end"),
        "events": events.get("lines"),
        "orders": info.get("rows", {}).get("orders"),
        "contacts": info.get("rows", {}).get("contacts"),
    }


class Run:
    """One benchmark run; ``save()`` rewrites its report files."""

    def __init__(self, scale: Scale, steps: list[Step], scratch: Path, out_dir: Path) -> None:
        self.scale, self.steps, self.scratch, self.out_dir = scale, steps, scratch, out_dir
        started = datetime.now(UTC)
        self.stem = f"bench-{scale.name}-{started:%Y%m%dT%H%M%S}"
        self.report: dict[str, Any] = {
            "scale": {"name": scale.name, "customers": scale.customers, "days": scale.days},
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": None,
            "status": "running",
            "scratch": str(scratch),
            "machine": rep.machine_facts(),
            "versions": rep.versions(ROOT),
            "data": {},
            "steps": {},
            "pending": [s.id for s in steps],
            "ratios": {},
        }

    def record(self, step: Step, result: dict[str, Any]) -> None:
        self.report["steps"][step.id] = result
        self.report["pending"].remove(step.id)
        self.report["data"] = _data_facts(self.scratch)
        self.save()

    def save(self) -> None:
        self.report["ratios"] = rep.ratios(self.report["steps"])
        self.out_dir.mkdir(parents=True, exist_ok=True)
        made = rep.charts(self.report, self.out_dir, self.stem)
        self.report["charts"] = made
        (self.out_dir / f"{self.stem}.json").write_text(
            json.dumps(self.report, indent=2, default=str) + "\n"
        )
        (self.out_dir / f"{self.stem}.md").write_text(rep.markdown(self.report, made))


def render(path: Path) -> None:
    """Rewrite a report's ratios, Markdown and charts from its JSON (with this code)."""
    report = json.loads(path.read_text())
    report["ratios"] = rep.ratios(report["steps"])
    report["charts"] = rep.charts(report, path.parent, path.stem)
    path.write_text(json.dumps(report, indent=2, default=str) + "\n")
    path.with_suffix(".md").write_text(rep.markdown(report, report["charts"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__.split("\n\n")[0].split(": ", 1)[1],
        epilog="Scales: "
        + "; ".join(
            f"{s.name} = {s.customers:,} customers × {s.days} days"
            + (f" ({s.note})" if s.note else "")
            for s in SCALES.values()
        ),
    )
    parser.add_argument("--scale", choices=list(SCALES), default="S", help="default S")
    parser.add_argument(
        "--scratch",
        type=Path,
        help="folder for the simulated company and the warehouse (default .local/bench/<scale>); "
        "emptied at the start of each run",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="where the report goes")
    parser.add_argument(
        "--only",
        help="comma-separated step ids to run (e.g. setup/simulate,full/ingest_events); "
        "default: the whole plan of the scale",
    )
    parser.add_argument(
        "--allow-large", action="store_true", help="let scale L run (hours, > 6 GB RSS)"
    )
    parser.add_argument(
        "--skip-disk-check",
        action="store_true",
        help="start even if the scratch disk has less free space than the scale's estimate "
        "(which assumes the whole plan, the Spark phase's copy included); each step's disk "
        "use is in the report",
    )
    parser.add_argument(
        "--clean", action="store_true", help="delete the scratch folder after the run"
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="only rewrite that report's Markdown, ratios and charts from its JSON",
    )
    args = parser.parse_args(argv)
    if args.render:
        render(args.render)
        return 0
    scale = SCALES[args.scale]
    if scale.name == "L" and not args.allow_large:
        parser.error("scale L needs --allow-large (see README, Benchmarks)")
    try:
        steps = plan_for(scale, args.only.split(",") if args.only else None)
    except ValueError as exc:
        parser.error(str(exc))
    scratch = (args.scratch or ROOT / ".local" / "bench" / scale.name).resolve()
    _prepare_scratch(scratch)
    if not args.skip_disk_check and (problem := disk_problem(scratch, scale.disk_bytes)):
        parser.error(problem)
    logs = scratch / "bench-logs"

    console = Console(stderr=True)
    run = Run(scale, steps, scratch, args.out.resolve())
    run.save()
    console.print(
        f"Benchmark scale {scale.name}: {scale.customers:,} customers × {scale.days} days, "
        f"{len(steps)} steps; data in {scratch}; report {args.out / run.stem}.md"
    )
    failed = 0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("starting", total=len(steps))
        for i, step in enumerate(steps):
            bar.update(task, description=step.id)
            params = {
                "customers": scale.customers,
                "days": scale.days,
                "seed": 7,
                "as_of": _as_of(scratch),
                "log_dir": str(logs),
            }
            result = measure(
                step.stage, params, scratch, logs / f"{i:02d}-{step.id.replace('/', '-')}.log"
            )
            run.record(step, result)
            if result.get("error"):
                failed += 1
                first = result["error"].splitlines()[0][:160]
                bar.console.print(f"[red]{step.id} failed[/red]: {first}", markup=True)
            else:
                bar.console.print(
                    f"{step.id:32s} {rep.step_seconds(result):8.2f} s  "
                    f"CPU {rep.step_cpu(result):8.2f} s  peak {result['peak_rss_mb']:6.0f} MB"
                )
            bar.advance(task)
    run.report["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    run.report["status"] = "finished" if not failed else f"finished, {failed} step(s) failed"
    run.save()
    for name, r in run.report["ratios"].items():
        value = "–" if r["value"] is None else f"{r['value']:.2f}"
        console.print(f"  {name:32s} {value:>8s}  {r['meaning']}")
    console.print(f"Report: {args.out / run.stem}.md (and .json, PNGs)")
    if args.clean:
        shutil.rmtree(scratch)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
