"""Run the DAG chain through Airflow without a scheduler: ``run``, ``backfill``, ``train``.

The pipeline is a chain of DAGs linked by Airflow assets (ingest → transform → score, and
train weekly; see orchestrate/dag_support.py; the order is ``orchestrate.stages.chain``).
A scheduler starts each DAG when its upstream asset is updated. Without a scheduler, ``run`` and ``backfill`` walk the same
chain themselves: ``airflow dags test`` of each DAG in order for a date — the real DAGs,
in one process each — and stop at the first failed DAG (a failed quality gate stops the
date there, before anything is published). Airflow's own logs go to files; the run
summary is printed at the end.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console

from customer720.settings import PROJECT_ROOT, WAREHOUSE_POOL, Settings
from orchestrate import runlock, stages
from orchestrate.preflight import PreflightError, Sources, check_date, check_sources
from orchestrate.stages import chain, dag_id

log = logging.getLogger(__name__)

TRANSFORM, TRAIN = dag_id(stages.TRANSFORM), dag_id(stages.TRAIN)
DAG_IDS = tuple(chain(train=True))


def airflow_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.tool_env())
    # `airflow standalone` starts its components as `airflow ...` from PATH: use ours.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def airflow(args: list[str], settings: Settings, log_file: Path | None = None) -> int:
    exe = str(Path(sys.executable).with_name("airflow"))
    if log_file is None:
        return subprocess.run(
            [exe, *args], env=airflow_env(settings), capture_output=True, text=True, check=False
        ).returncode
    with log_file.open("w") as out:
        return subprocess.run(
            [exe, *args],
            env=airflow_env(settings),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode


def prepare_airflow(settings: Settings) -> None:
    """Airflow's metadata DB, the pool that serialises DuckDB writers, dbt's manifest."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    logs = settings.local_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if airflow(["db", "migrate"], settings, logs / "airflow_db_migrate.log") != 0:
        raise SystemExit(f"airflow db migrate failed; see {logs / 'airflow_db_migrate.log'}")
    airflow(["pools", "set", WAREHOUSE_POOL, "1", "DuckDB allows one writing process"], settings)
    # Cosmos draws the dbt task groups from dbt's manifest (LoadMode.DBT_MANIFEST).
    from customer720.dbt import run_dbt

    run_dbt("parse")


def preflight(
    settings: Settings, days: list[date] | None, console: Console
) -> tuple[list[date], Sources]:
    """Before the first task: the sources there, and ``days`` within the data they hold
    (default: their newest day). Raises ``PreflightError`` naming what is wrong."""
    sources = check_sources(settings)
    if not days:
        if sources.newest is None:
            raise PreflightError("the sources hold no dated data: give --date")
        days = [sources.newest]
    for day in days:
        check_date(day, sources)
    for warning in sources.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    return days, sources


def default_run_date(settings: Settings) -> date:
    """The newest day in the sources (CRM orders, event day folders)."""
    newest = check_sources(settings).newest
    if newest is None:
        raise PreflightError("the sources hold no dated data: give --date")
    return newest


def _iso(days: list[date | None]) -> list[str]:
    return [d.isoformat() for d in days if d is not None]


def _failure_reason(log_file: Path) -> str:
    """The lines of an ``airflow dags test`` log that say why a task failed."""
    lines = log_file.read_text(errors="replace").splitlines()
    for i, line in enumerate(lines):
        if "QualityGateFailed" in line or "quality gate '" in line:
            # The gate's message: the failed expectations, one a line, then its data docs.
            block = [line]
            for follow in lines[i + 1 : i + 40]:
                block.append(follow)
                if "Data docs:" in follow:
                    break
            return "\n".join(block)
    failed = [ln for ln in lines if "Error" in ln or "failed" in ln.lower()][-15:]
    return "\n".join(failed or lines[-40:])


def run_dag(dag_id: str, day: date, settings: Settings, console: Console) -> tuple[bool, float]:
    """``airflow dags test`` one DAG of the chain for ``day``; return (succeeded, seconds)."""
    log_file = settings.local_dir / "logs" / f"airflow_{dag_id}_{day.isoformat()}.log"
    console.print(f"  {dag_id} for {day} (log: {log_file})")
    started = time.monotonic()
    args = [
        "dags",
        "test",
        dag_id,
        day.isoformat(),
        "--conf",
        json.dumps({"as_of": day.isoformat()}),
    ]
    # Parse only this DAG's file: much faster than the whole folder, same DAG.
    args += ["--dagfile-path", str(PROJECT_ROOT / "dags" / f"{dag_id}.py")]
    code = airflow(args, settings, log_file)
    elapsed = time.monotonic() - started
    ok = code == 0
    if not ok:
        console.print(_failure_reason(log_file), markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"[red]{dag_id} failed for {day} after {elapsed:.0f} s.[/red] Log: {log_file}"
        )
    return ok, elapsed


def needs_training(settings: Settings) -> bool:
    """No churn model yet, or the recommender never trained: daily scoring would have
    nothing to score with. (A recommender training that found too little data to fit a
    ranker still makes its folder; scoring then uses the blend until the weekly run.)"""
    models = settings.model_dir
    return not any(models.glob("churn/*/metadata.json")) or not (models / "recommend").is_dir()


def run_chain(day: date, settings: Settings, console: Console, train: bool | None = None) -> bool:
    """Run the asset chain for one date, in order; stop at the first failed DAG."""
    train = needs_training(settings) if train is None else train
    dag_ids = chain(train)
    console.print(f"[bold]{day}[/bold]: {' → '.join(dag_ids)}")
    for dag in dag_ids:
        ok, _ = run_dag(dag, day, settings, console)
        if not ok:
            console.print(
                f"[red]Stopped the chain for {day} at {dag}[/red]: nothing after it "
                f"ran, the published snapshot ({settings.published}) is unchanged."
            )
            return False
    return True


def run(run_date: date | None, settings: Settings, train: bool | None = None) -> int:
    """The chain for one date (default: the newest day in the sources). Holds the chain
    lock; raises ``runlock.ChainBusy`` / ``PreflightError`` before any Airflow work."""
    console = Console()
    with runlock.hold(settings.airflow_home, "run", _iso([run_date])) as record:
        (run_date,), sources = preflight(settings, [run_date] if run_date else None, console)
        record(_iso([run_date]))
        prepare_airflow(settings)
        started = time.monotonic()
        if not run_chain(run_date, settings, console, train):
            return 1
    elapsed = time.monotonic() - started
    summary = settings.reports_dir / "runs" / run_date.isoformat() / "summary.md"
    if not summary.exists() or summary.stat().st_mtime < time.time() - elapsed:
        # A DAG run without tasks "succeeds" too (e.g. a date Airflow will not run).
        console.print(f"[red]The runs for {run_date} wrote no run summary.[/red]")
        return 1
    console.print(summary.read_text(), markup=False, highlight=False, soft_wrap=True)
    for warning in sources.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    console.print(f"[green]Pipeline succeeded in {elapsed:.0f} s.[/green]")
    return 0


def train(run_date: date | None, settings: Settings) -> int:
    """Train (and maybe promote) a churn model on the marts built for ``run_date``
    (default: the newest day in the sources)."""
    console = Console()
    with runlock.hold(settings.airflow_home, "train", _iso([run_date])) as record:
        (run_date,), _ = preflight(settings, [run_date] if run_date else None, console)
        record(_iso([run_date]))
        prepare_airflow(settings)
        ok, elapsed = run_dag(TRAIN, run_date, settings, console)
    if ok:
        console.print(f"[green]Training done in {elapsed:.0f} s.[/green]")
    return 0 if ok else 1


def backfill(start: date, end: date, settings: Settings) -> int:
    """Replay ``start``..``end`` (inclusive) in date order; every date is idempotent."""
    if end < start:
        raise SystemExit(f"backfill: END {end} is before START {start}")
    console = Console()
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    with runlock.hold(settings.airflow_home, "backfill", _iso([start, end])):
        preflight(settings, [start, end], console)
        prepare_airflow(settings)
        results: dict[date, bool] = {}
        started = time.monotonic()
        for day in days:
            results[day] = run_chain(day, settings, console)
            if not results[day]:
                break  # later dates build on this one: fix it, then re-run the backfill
    done = sum(results.values())
    console.print(
        f"backfill {start} .. {end}: {done} of {len(days)} dates succeeded "
        f"in {time.monotonic() - started:.0f} s"
    )
    return 0 if done == len(days) else 1
