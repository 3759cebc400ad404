"""python -m bench.dbt_overhead: what running dbt inside Airflow costs against a plain build.

Times, on the same warehouse and date, in alternating rounds:

- **plain**: one ``dbt build`` of the ``marts`` selector (``--exclude tag:needs_scores``,
  the same vars), the dbt command line in its own process;
- **in Airflow**: ``airflow dags test customer720_transform`` with the marts gate marked
  successful — its dbt tasks (one ``dbt build`` per layer) — read back from Airflow's
  metadata DB: the span from the first dbt task's start to the last one's end, and the sum
  of their durations; plus the whole command (Airflow's start-up and DAG parse included).

Before each side, dbt's partial-parse state is put where the previous day's run leaves it
(a parse with the day before as ``DBT_AS_OF``): a daily build re-parses the one file that
reads the date (an env var, not a var: ``customer720.dbt.AS_OF_ENV``), both sides alike. Both are incremental rebuilds of an
already built warehouse (what a daily run does). CPU time (of the child processes) is the
steadier figure on a shared machine; the dbt task span is the figure ``make bench``
reports (``dbt_in_airflow_vs_plain``, from a real scheduler run). Needs a built
warehouse: run ``make run`` first.
"""

from __future__ import annotations

import argparse
import json
import resource
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from customer720.dbt import AS_OF_ENV, project_vars, selection
from customer720.settings import PROJECT_ROOT, Settings, get_settings

TRANSFORM = "customer720_transform"


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(run) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child processes) of ``run()``."""
    wall, cpu = time.monotonic(), _children_cpu()
    run()
    return time.monotonic() - wall, _children_cpu() - cpu


def _dbt(args: list[str], day: date, settings: Settings, log_file: Path) -> None:
    """The dbt CLI, as a user would run it (its own process: dbt-duckdb keeps its
    connection, and so DuckDB's write lock, open in the process that ran it)."""
    from orchestrate.scheduler import airflow_env

    cmd = [str(Path(sys.executable).with_name("dbt")), *args]
    cmd += ["--project-dir", str(settings.dbt_project_dir)]
    cmd += ["--profiles-dir", str(settings.dbt_project_dir)]
    cmd += ["--vars", json.dumps(project_vars(settings))]
    env = airflow_env(settings) | {AS_OF_ENV: day.isoformat()}
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w") as out:
        code = subprocess.run(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode
    if code != 0:
        raise SystemExit(f"dbt {args[0]} failed; see {log_file}")


def as_after_the_day_before(day: date) -> None:
    """dbt's partial-parse state as the previous day's run leaves it (parsed for the day
    before): the next build re-parses what reads the date, as every daily build does."""
    settings = get_settings()
    log_file = settings.local_dir / "logs" / f"dbt_overhead_parse_{day.isoformat()}.log"
    _dbt(["parse"], day - timedelta(days=1), settings, log_file)


def time_plain(day: date) -> None:
    """One plain ``dbt build`` of the ``marts`` selector for ``day``."""
    settings = get_settings()
    select, exclude = selection("marts")
    args = ["build", *(["--select", *select] if select else []), "--exclude", *exclude]
    _dbt(args, day, settings, settings.local_dir / "logs" / f"dbt_overhead_plain_{day}.log")


def _airflow(args: list[str], settings: Settings, log_file: Path) -> int:
    """The Airflow CLI in the pipeline's Airflow environment, its output in ``log_file``."""
    from orchestrate.scheduler import airflow_env

    with log_file.open("w") as out:
        return subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env=airflow_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode


def time_in_airflow(day: date) -> None:
    settings = get_settings()
    log_file = settings.local_dir / "logs" / f"dbt_overhead_airflow_{day.isoformat()}.log"
    args = ["dags", "test", TRANSFORM, day.isoformat()]
    args += ["--conf", json.dumps({"as_of": day.isoformat()})]
    args += ["--dagfile-path", str(PROJECT_ROOT / "dags" / f"{TRANSFORM}.py")]
    args += ["--mark-success-pattern", "^check_marts$"]  # the gate is not dbt's work
    if _airflow(args, settings, log_file) != 0:
        raise SystemExit(f"the transform DAG failed; see {log_file}")


def dbt_task_times(settings: Settings | None = None, dag_id: str = TRANSFORM) -> dict[str, Any]:
    """The dbt tasks of ``dag_id``'s newest run, from Airflow's metadata DB (SQLite):
    ``dbt_span_seconds`` from the first one's start to the last one's end (Airflow's
    scheduling between them included), ``dbt_task_seconds`` the sum of their durations,
    each task's duration, and the run's own wall time."""
    settings = settings or get_settings()
    with sqlite3.connect(settings.airflow_home / "airflow.db") as db:
        run_id, run_start, run_end = db.execute(
            "select run_id, start_date, end_date from dag_run where dag_id = ? "
            "order by id desc limit 1",
            (dag_id,),
        ).fetchone()
        rows = db.execute(
            "select task_id, start_date, end_date, duration, state from task_instance "
            "where dag_id = ? and run_id = ? and task_id like 'dbt\\_%' escape '\\' "
            "order by start_date",
            (dag_id, run_id),
        ).fetchall()
    if not rows or any(state != "success" for *_, state in rows):
        raise RuntimeError(f"{dag_id} run {run_id}: dbt tasks not all successful: {rows}")

    def ts(text: str) -> datetime:
        return datetime.fromisoformat(text)

    return {
        "run_id": run_id,
        "dbt_span_seconds": round((ts(rows[-1][2]) - ts(rows[0][1])).total_seconds(), 2),
        "dbt_task_seconds": round(sum(r[3] for r in rows), 2),
        "dbt_tasks": {r[0]: round(r[3], 2) for r in rows},
        "run_seconds": round((ts(run_end) - ts(run_start)).total_seconds(), 2),
    }


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from customer720 import cli
    from orchestrate.launcher import default_run_date, prepare_airflow

    parser = argparse.ArgumentParser(prog="python -m bench.dbt_overhead", description=__doc__)
    parser.add_argument("--date", type=date.fromisoformat, help="default: the demo's last date")
    parser.add_argument("--rounds", type=int, default=1, help="alternating plain/Airflow rounds")
    args = parser.parse_args(argv)
    cli.setup()
    console = Console()
    settings = get_settings()
    day = args.date or default_run_date(settings)
    prepare_airflow(settings)
    ratios = []
    for i in range(args.rounds):
        as_after_the_day_before(day)
        plain_wall, plain_cpu = _timed(lambda: time_plain(day))
        as_after_the_day_before(day)
        dag_wall, dag_cpu = _timed(lambda: time_in_airflow(day))
        tasks = dbt_task_times(settings)
        ratios.append(tasks["dbt_span_seconds"] / plain_wall)
        console.print(
            f"round {i + 1}: plain dbt build {plain_wall:.1f} s (CPU {plain_cpu:.1f} s); "
            f"in Airflow: dbt tasks {tasks['dbt_span_seconds']:.1f} s from first start to "
            f"last end ({tasks['dbt_task_seconds']:.1f} s summed: {tasks['dbt_tasks']}), "
            f"whole `airflow dags test` {dag_wall:.1f} s (CPU {dag_cpu:.1f} s); "
            f"ratio {ratios[-1]:.2f}x"
        )
    console.print(
        f"median ratio dbt tasks in Airflow / plain dbt build: {statistics.median(ratios):.2f}x"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
