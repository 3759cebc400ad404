"""The Airflow UI for the local pipeline: ``ui`` (``make airflow``) and ``stop``
(``make airflow-stop``).

``ui`` prepares Airflow (as a run does) and marks failed the DAG runs a stopped ``make
run`` left "running" (orchestrate/airflow_db.py, one process), then runs ``airflow standalone`` in a session of
its own until Ctrl-C; ``stop`` ends every process of that session.
"""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from pathlib import Path

from rich.console import Console

from customer720.settings import Settings, get_settings
from orchestrate import runlock
from orchestrate.launcher import DAG_IDS
from orchestrate.scheduler import (
    AirflowError,
    prepare_db,
    run_pgid_file,
    session_alive,
    standalone_env,
    stop_session,
    ui_files,
    wait_healthy,
)

log = logging.getLogger(__name__)


def prepare_and_fail_orphans(settings: Settings) -> list[dict[str, str]]:
    """Prepare Airflow's DB (as a run does) and mark failed the runs a stopped ``make
    run`` left "running" (orchestrate.orphans); no orphans when a ``run`` is working now."""
    with runlock.idle(settings.airflow_home) as idle:
        if not idle:
            log.info("a pipeline run is in progress: its running DAG runs are left alone")
        return prepare_db(settings, fail_orphans=idle)


def _pgid_file(settings: Settings) -> Path:
    return ui_files(settings)[0]


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
    with runlock.idle(settings.airflow_home) as idle:
        if idle:  # a run's scheduler whose run is gone: its guard is ending it; finish that
            stop_session(run_pgid_file(settings))
    if session_alive(run_pgid_file(settings)):
        console.print(
            "[red]A `make run` is using its own Airflow scheduler for this Airflow home[/red]; "
            "start `make airflow` when it has finished (a run then uses this one)."
        )
        return 2
    if _pgid_file(settings).exists():
        stop(settings)
    try:
        orphans = prepare_and_fail_orphans(settings)
    except AirflowError as exc:
        console.print(f"[red]{exc}[/red]", highlight=False)
        return 1
    for orphan in orphans:
        console.print(
            f"Marked failed: {orphan['dag_id']} run {orphan['run_id']}, left "
            f"{orphan['state']} by a stopped `make run`."
        )
    port = get_settings().airflow_port
    env = standalone_env(settings, port)
    log_file = settings.local_dir / "logs" / "airflow_standalone.log"
    exe = str(Path(sys.executable).with_name("airflow"))
    with log_file.open("w") as out:
        # Its own session, so one signal to the session reaches every worker it forks.
        proc = subprocess.Popen(
            [exe, "standalone"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pgid_file, port_file = ui_files(settings)
    pgid_file.write_text(str(proc.pid))
    port_file.write_text(str(port))  # `make run` finds it here and uses it
    console.print(f"Starting Airflow (log: {log_file}) ...")
    if not wait_healthy(f"http://127.0.0.1:{port}", 180, proc):
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


def stop(settings: Settings) -> int:
    """Stop every process ``ui`` started: TERM to its session, KILL what is still alive."""
    pgid_file, port_file = ui_files(settings)
    stop_session(pgid_file)
    port_file.unlink(missing_ok=True)
    return 0
