"""python -m bench.dbt_overhead: what running dbt as Airflow tasks (Cosmos) costs.

Times, on the same warehouse and date, in alternating rounds:

- **plain**: one ``dbt build`` of the ``marts`` selector (``--exclude tag:needs_scores``;
  the dbt command line);
- **cosmos**: ``airflow dags test customer720_transform`` with the marts gate marked
  successful, i.e. the Cosmos task group doing the same models and tests, one task each,
  plus what Airflow itself costs (process start, DAG parse, task bookkeeping).

Both are incremental rebuilds of an already built warehouse (what a daily run does).
Prints wall and CPU time per side and the ratios cosmos / plain per round, and the
medians. CPU time (of the child processes) is the steadier figure on a shared machine.
Needs a built warehouse: run ``make run`` first.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from rich.console import Console

from customer720 import cli
from customer720.dbt import selection
from customer720.settings import PROJECT_ROOT, get_settings
from orchestrate.launcher import (
    TRANSFORM,
    airflow,
    airflow_env,
    default_run_date,
    prepare_airflow,
)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child processes) of ``run()``."""
    wall, cpu = time.monotonic(), _children_cpu()
    run()
    return time.monotonic() - wall, _children_cpu() - cpu


def time_plain(day: date) -> None:
    """The dbt CLI, as a user would run it (its own process: dbt-duckdb keeps its
    connection, and so DuckDB's write lock, open in the process that ran it)."""
    settings = get_settings()
    variables = {
        "as_of": day.isoformat(),
        "cutoff_step_days": settings.cutoff_step_days,
        "cutoff_count": settings.cutoff_count,
        "churn_horizon_days": settings.churn_horizon_days,
        "cutoff_anchor_date": settings.cutoff_anchor_date,
    }
    select, exclude = selection("marts")
    cmd = [str(Path(sys.executable).with_name("dbt")), "build"]
    cmd += [*(["--select", *select] if select else []), "--exclude", *exclude]
    cmd += ["--project-dir", str(settings.dbt_project_dir), "--profiles-dir"]
    cmd += [str(settings.dbt_project_dir), "--vars", json.dumps(variables)]
    log_file = settings.local_dir / "logs" / f"dbt_overhead_plain_{day.isoformat()}.log"
    with log_file.open("w") as out:
        code = subprocess.run(
            cmd, env=airflow_env(settings), stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode
    if code != 0:
        raise SystemExit(f"dbt build failed; see {log_file}")


def time_cosmos(day: date) -> None:
    settings = get_settings()
    log_file = settings.local_dir / "logs" / f"dbt_overhead_cosmos_{day.isoformat()}.log"
    args = ["dags", "test", TRANSFORM, day.isoformat()]
    args += ["--conf", json.dumps({"as_of": day.isoformat()})]
    args += ["--dagfile-path", str(PROJECT_ROOT / "dags" / f"{TRANSFORM}.py")]
    args += ["--mark-success-pattern", "^check_marts$"]  # the gate is not dbt's work
    if airflow(args, settings, log_file) != 0:
        raise SystemExit(f"the transform DAG failed; see {log_file}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dbt_overhead", description=__doc__)
    parser.add_argument("--date", type=date.fromisoformat, help="default: the demo's last date")
    parser.add_argument("--rounds", type=int, default=1, help="alternating plain/cosmos rounds")
    args = parser.parse_args(argv)
    cli.setup()
    console = Console()
    settings = get_settings()
    day = args.date or default_run_date(settings)
    prepare_airflow(settings)
    walls, cpus = [], []
    for i in range(args.rounds):
        plain_wall, plain_cpu = _timed(lambda: time_plain(day))
        cosmos_wall, cosmos_cpu = _timed(lambda: time_cosmos(day))
        walls.append(cosmos_wall / plain_wall)
        cpus.append(cosmos_cpu / plain_cpu)
        console.print(
            f"round {i + 1}: plain dbt build {plain_wall:.1f} s (CPU {plain_cpu:.1f} s), "
            f"Cosmos DAG {cosmos_wall:.1f} s (CPU {cosmos_cpu:.1f} s); "
            f"ratio {walls[-1]:.2f}x wall, {cpus[-1]:.2f}x CPU"
        )
    console.print(
        f"median ratio Cosmos / plain dbt build: {statistics.median(walls):.2f}x wall, "
        f"{statistics.median(cpus):.2f}x CPU"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
