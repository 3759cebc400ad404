"""python -m customer720.orchestrate: run the pipeline through Airflow, or open its UI.

``run`` prepares Airflow's home under .local/ (metadata DB, the warehouse-writer pool)
and runs the daily DAG for one date with ``airflow dags test`` — the real DAG, in one
process, no scheduler needed. Airflow's own log goes to a file; the run summary is
printed at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

from rich.console import Console

from customer720 import cli
from customer720.settings import Settings, get_settings

log = logging.getLogger(__name__)

DAG_ID = "customer720_daily"
WAREHOUSE_POOL = "warehouse_writer"


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
    """Create or migrate Airflow's metadata DB and the pool that serialises DuckDB writers."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    logs = settings.local_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    if _airflow(["db", "migrate"], settings, logs / "airflow_db_migrate.log") != 0:
        raise SystemExit(f"airflow db migrate failed; see {logs / 'airflow_db_migrate.log'}")
    _airflow(["pools", "set", WAREHOUSE_POOL, "1", "DuckDB allows one writing process"], settings)


def default_run_date(settings: Settings) -> date:
    """The demo's last simulated date, else today."""
    meta = settings.sources_dir / "simulation.json"
    if meta.exists():
        info = json.loads(meta.read_text())
        end = info.get("end_date") or info.get("end")
        if end:
            return date.fromisoformat(str(end)[:10])
    return date.today()


def run(run_date: date, settings: Settings) -> int:
    console = Console()
    prepare_airflow(settings)
    log_file = settings.local_dir / "logs" / f"airflow_{DAG_ID}_{run_date.isoformat()}.log"
    console.print(
        f"Running the Airflow DAG [bold]{DAG_ID}[/bold] for {run_date} "
        f"(airflow dags test; log: {log_file})"
    )
    started = time.monotonic()
    code = _airflow(["dags", "test", DAG_ID, run_date.isoformat()], settings, log_file)
    elapsed = time.monotonic() - started
    if code != 0:
        tail = log_file.read_text(errors="replace").splitlines()[-60:]
        failed = [
            line
            for line in log_file.read_text(errors="replace").splitlines()
            if "Error" in line or "failed" in line.lower()
        ][-15:]
        console.print("\n".join(failed or tail), markup=False, highlight=False)
        console.print(f"[red]The pipeline failed after {elapsed:.0f} s.[/red] Full log: {log_file}")
        return code
    summary = settings.reports_dir / "runs" / run_date.isoformat() / "summary.md"
    if not summary.exists() or summary.stat().st_mtime < time.time() - elapsed:
        # A DAG run without tasks "succeeds" too (e.g. a date Airflow will not run).
        console.print(
            f"[red]The DAG run for {run_date} wrote no run summary.[/red] Log: {log_file}"
        )
        return 1
    console.print(summary.read_text(), markup=False, highlight=False, soft_wrap=True)
    console.print(f"[green]Pipeline succeeded in {elapsed:.0f} s.[/green]")
    return 0


UI_PORT = int(os.environ.get("C720_AIRFLOW_PORT", "8080"))


def _pgid_file(settings: Settings) -> Path:
    return settings.airflow_home / "standalone.pgid"


def _ui_up(timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{UI_PORT}/api/v2/monitor/health", timeout=2
            ):
                return True
        except OSError:
            time.sleep(2)
    return False


def ui(settings: Settings) -> int:
    """Start ``airflow standalone`` in its own process group; Ctrl-C stops all of it."""
    console = Console()
    if _pgid_file(settings).exists():
        stop(settings)
    prepare_airflow(settings)
    env = airflow_env(settings)
    env["AIRFLOW__API__PORT"] = str(UI_PORT)
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
        f"Airflow UI: http://localhost:{UI_PORT}  login: "
        + ", ".join(f"{user} / {pw}" for user, pw in login.items())
    )
    console.print(f"DAG: {DAG_ID}. Stop with Ctrl-C (or `make airflow-stop` from another shell).")
    try:
        proc.wait()
    except KeyboardInterrupt:
        console.print("stopping Airflow ...")
    finally:
        stop(settings)
    return 0


def stop(settings: Settings) -> int:
    """Stop every process ``ui`` started: TERM to its process group, KILL if still alive."""
    pgid_file = _pgid_file(settings)
    if not pgid_file.exists():
        return 0
    pgid = int(pgid_file.read_text())
    for sig, wait_s in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.5)
        else:
            continue
        break
    pgid_file.unlink(missing_ok=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m customer720.orchestrate",
        description="Run the customer720 pipeline through Airflow for one date.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="airflow dags test the daily DAG for one date")
    run_p.add_argument(
        "--date",
        type=date.fromisoformat,
        help="logical date YYYY-MM-DD (default: the demo's last simulated date)",
    )
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
    return run(args.date or default_run_date(settings), settings)


if __name__ == "__main__":
    sys.exit(main())
