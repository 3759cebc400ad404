"""python -m customer720.orchestrate: run the pipeline through Airflow, or open its UI.

The pipeline is a chain of DAGs linked by Airflow assets (ingest → transform → score, and
train weekly; see customer720/airflow_dags.py). A scheduler starts each DAG when its
upstream asset is updated. Without a scheduler, ``run`` and ``backfill`` walk the same
chain themselves: ``airflow dags test`` of each DAG in order for a date — the real DAGs,
in one process each — and stop at the first failed DAG (a failed quality gate stops the
date there, before anything is published). Airflow's own logs go to files; the run
summary is printed at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import psutil
from rich.console import Console

from customer720 import cli
from customer720.settings import PROJECT_ROOT, WAREHOUSE_POOL, Settings, get_settings

log = logging.getLogger(__name__)

INGEST, TRANSFORM, TRAIN, SCORE = (
    "customer720_ingest",
    "customer720_transform",
    "customer720_train",
    "customer720_score",
)
DAG_IDS = (INGEST, TRANSFORM, TRAIN, SCORE)


def airflow_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.tool_env())
    # `airflow standalone` starts its components as `airflow ...` from PATH: use ours.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def _airflow(args: list[str], settings: Settings, log_file: Path | None = None) -> int:
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
    if _airflow(["db", "migrate"], settings, logs / "airflow_db_migrate.log") != 0:
        raise SystemExit(f"airflow db migrate failed; see {logs / 'airflow_db_migrate.log'}")
    _airflow(["pools", "set", WAREHOUSE_POOL, "1", "DuckDB allows one writing process"], settings)
    # Cosmos draws the dbt task groups from dbt's manifest (LoadMode.DBT_MANIFEST).
    from customer720.dbt import run_dbt

    run_dbt("parse")


def default_run_date(settings: Settings) -> date:
    """The demo's last simulated date, else today."""
    meta = settings.sources_dir / "simulation.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        end = info.get("end_date") or info.get("end")
        if end:
            return date.fromisoformat(str(end)[:10])
    return date.today()


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
    code = _airflow(args, settings, log_file)
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


@contextlib.contextmanager
def _chain_lock(settings: Settings, exclusive: bool = False) -> Iterator[bool]:
    """Shared while ``airflow dags test`` runs the chain; ``ui`` takes it exclusively (without
    waiting) to know that no run in Airflow's DB is still being worked on. Yields whether
    the lock was taken."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    with (settings.airflow_home / "chain.lock").open("w") as handle:
        mode = fcntl.LOCK_EX | fcntl.LOCK_NB if exclusive else fcntl.LOCK_SH
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            yield False
            return
        yield True


def run_chain(day: date, settings: Settings, console: Console, train: bool | None = None) -> bool:
    """Run the asset chain for one date, in order; stop at the first failed DAG."""
    train = needs_training(settings) if train is None else train
    chain = [INGEST, TRANSFORM, *([TRAIN] if train else []), SCORE]
    console.print(f"[bold]{day}[/bold]: {' → '.join(chain)}")
    with _chain_lock(settings):
        for dag_id in chain:
            ok, _ = run_dag(dag_id, day, settings, console)
            if not ok:
                console.print(
                    f"[red]Stopped the chain for {day} at {dag_id}[/red]: nothing after it "
                    f"ran, the published snapshot ({settings.published}) is unchanged."
                )
                return False
    return True


def fail_orphaned_runs(settings: Settings) -> list[dict[str, str]]:
    """Mark failed the runs a killed ``make run`` left "running" (customer720.airflow_orphans);
    nothing when an ``orchestrate run`` is working right now."""
    with _chain_lock(settings, exclusive=True) as idle:
        if not idle:
            log.info("a pipeline run is in progress: its running DAG runs are left alone")
            return []
        done = subprocess.run(
            [sys.executable, "-m", "customer720.airflow_orphans"],
            env=airflow_env(settings),
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        log.warning("could not check for orphaned DAG runs: %s", done.stderr[-2000:])
        return []
    return json.loads(done.stdout or "[]")


def run(run_date: date, settings: Settings, train: bool | None = None) -> int:
    console = Console()
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
    console.print(f"[green]Pipeline succeeded in {elapsed:.0f} s.[/green]")
    return 0


def train(run_date: date, settings: Settings) -> int:
    """Train (and maybe promote) a churn model on the marts built for ``run_date``."""
    console = Console()
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
    prepare_airflow(settings)
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
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


def _pgid_file(settings: Settings) -> Path:
    return settings.airflow_home / "standalone.pgid"


def _ui_up(timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{get_settings().airflow_port}/api/v2/monitor/health", timeout=2
            ):
                return True
        except OSError:
            time.sleep(2)
    return False


def _stop_on_signal(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def ui(settings: Settings) -> int:
    """Start ``airflow standalone`` in its own process group; Ctrl-C (or a TERM to this
    process) stops all of it."""
    console = Console()
    # Set explicitly: a process started with SIGINT ignored (a background job, a test
    # runner's worker) inherits that, and Ctrl-C would leave Airflow running.
    signal.signal(signal.SIGINT, _stop_on_signal)
    signal.signal(signal.SIGTERM, _stop_on_signal)
    if _pgid_file(settings).exists():
        stop(settings)
    prepare_airflow(settings)
    for orphan in fail_orphaned_runs(settings):
        console.print(
            f"Marked failed: {orphan['dag_id']} run {orphan['run_id']}, left running by a "
            "stopped `make run`."
        )
    env = airflow_env(settings)
    env["AIRFLOW__API__PORT"] = str(get_settings().airflow_port)
    # Task processes report to the API server's execution API: same port, or they fail.
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = (
        f"http://localhost:{get_settings().airflow_port}/execution/"
    )
    # One API-server worker on a busy laptop can take longer than the default 5 s to answer.
    env.setdefault("AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT", "60")
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin"
    log_file = settings.local_dir / "logs" / "airflow_standalone.log"
    exe = str(Path(sys.executable).with_name("airflow"))
    with log_file.open("w") as out:
        # Its own session, so one signal to the group reaches every worker it forks.
        proc = subprocess.Popen(
            [exe, "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _pgid_file(settings).write_text(str(os.getpgid(proc.pid)))
    console.print(f"Starting Airflow (log: {log_file}) ...")
    if not _ui_up(180):
        console.print("[red]Airflow did not come up within 3 minutes[/red]; see the log.")
        stop(settings)
        return 1
    passwords = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    login = json.loads(passwords.read_text()) if passwords.exists() else {}
    console.print(
        f"Airflow UI: http://localhost:{get_settings().airflow_port}  login: "
        + ", ".join(f"{user} / {pw}" for user, pw in login.items())
    )
    console.print(
        f"DAGs: {', '.join(DAG_IDS)}. Stop with Ctrl-C (or `make airflow-stop` from another shell)."
    )
    try:
        proc.wait()
    except KeyboardInterrupt:
        console.print("stopping Airflow ...")
    finally:
        stop(settings)
        proc.wait()  # reap it: an unreaped child would keep its group alive as a zombie
    return 0


def _session_members(sid: int) -> list[int]:
    """Live processes in session ``sid``. Airflow puts each task runner in its own process
    group (so it can signal the task's children), but none leaves the session that
    ``ui`` started, so the session, not the group, is what reaches every process."""
    members = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                members.append(pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def stop(settings: Settings) -> int:
    """Stop every process ``ui`` started: TERM to its session, KILL what is still alive."""
    pgid_file = _pgid_file(settings)
    if not pgid_file.exists():
        return 0
    sid = int(pgid_file.read_text())  # started with start_new_session: sid == pgid == pid
    for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        members = _session_members(sid)
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while members and time.monotonic() < deadline:
            time.sleep(0.5)
            members = _session_members(sid)
        if not members:
            break
    pgid_file.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m customer720.orchestrate",
        description="Run the customer720 DAG chain through Airflow (one date, a range), or its UI.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="run the DAG chain for one date (airflow dags test)")
    run_p.add_argument(
        "--date",
        type=date.fromisoformat,
        help="logical date YYYY-MM-DD (default: the demo's last simulated date)",
    )
    run_p.add_argument(
        "--train",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also run the training DAG (default: only when a model has never been trained)",
    )
    train_p = sub.add_parser("train", help="run the training DAG for one date (make train)")
    train_p.add_argument("--date", type=date.fromisoformat, help="default: the demo's last date")
    back_p = sub.add_parser("backfill", help="run the chain for every date START..END, in order")
    back_p.add_argument("--start", type=date.fromisoformat, required=True)
    back_p.add_argument("--end", type=date.fromisoformat, required=True)
    sub.add_parser("prepare", help="create/migrate Airflow's metadata DB and pools only")
    sub.add_parser("ui", help="start the Airflow UI (airflow standalone) until Ctrl-C")
    sub.add_parser("stop", help="stop an Airflow UI started with `ui`")
    args = parser.parse_args(argv)
    cli.setup()
    settings = get_settings()
    if args.command == "prepare":
        prepare_airflow(settings)
        return 0
    if args.command == "ui":
        return ui(settings)
    if args.command == "stop":
        return stop(settings)
    if args.command == "backfill":
        return backfill(args.start, args.end, settings)
    if args.command == "train":
        return train(args.date or default_run_date(settings), settings)
    return run(args.date or default_run_date(settings), settings, args.train)


if __name__ == "__main__":
    sys.exit(main())
