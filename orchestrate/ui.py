"""The Airflow UI for the local pipeline: ``ui`` (``make airflow``) and ``stop``
(``make airflow-stop``).

``ui`` prepares Airflow (as a run does), marks failed the DAG runs a stopped ``make run``
left "running" (orchestrate/orphans.py), then runs ``airflow standalone`` in a session of
its own until Ctrl-C; ``stop`` ends every process of that session.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
from rich.console import Console

from customer720.settings import Settings, get_settings
from orchestrate import runlock
from orchestrate.launcher import DAG_IDS, airflow_env, prepare_airflow

log = logging.getLogger(__name__)


def fail_orphaned_runs(settings: Settings) -> list[dict[str, str]]:
    """Mark failed the runs a killed ``make run`` left "running" (orchestrate.orphans);
    nothing when an ``run`` is working right now."""
    with runlock.idle(settings.airflow_home) as idle:
        if not idle:
            log.info("a pipeline run is in progress: its running DAG runs are left alone")
            return []
        done = subprocess.run(
            [sys.executable, "-m", "orchestrate.orphans"],
            env=airflow_env(settings),
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        log.warning("could not check for orphaned DAG runs: %s", done.stderr[-2000:])
        return []
    return json.loads(done.stdout or "[]")


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
