"""`make airflow` as a user meets it: the UI comes up (after a `make run` stopped midway),
a DAG run triggered through the REST API succeeds, and Ctrl-C leaves no Airflow process
behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import date, timedelta
from pathlib import Path

import pytest

TIMEOUT_S = 480


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(port: int, method: str, path: str, body: dict | None = None, token: str = "") -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read() or b"{}")


def _processes_using(home: Path) -> list[int]:
    """Processes whose environment points at this Airflow home."""
    needle = f"AIRFLOW_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if needle in (proc / "environ").read_bytes():
                    found.append(int(proc.name))
            except OSError:
                continue
    return found


def _kill_a_make_run_midway(local: Path, env: dict, day: str) -> None:
    """`make run` killed while a DAG runs: its scheduler's guard ends that scheduler, but
    the run stays "queued"/"running" in Airflow's DB, and with max_active_runs=1 it would
    hold back every later run of that DAG in the UI (or be run again by the next one)."""
    out = local.parent / "killed_run.log"
    run = subprocess.Popen(
        [sys.executable, "-m", "orchestrate", "run", "--date", day],
        env=env,
        stdout=out.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + TIMEOUT_S
    while "customer720_ingest run manual__" not in out.read_text():
        assert run.poll() is None and time.monotonic() < deadline, out.read_text()[-3000:]
        time.sleep(1)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()


def test_ui_rest_trigger_and_clean_stop(tmp_path: Path) -> None:
    local = tmp_path / "local"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "AIRFLOW"))}
    env.update(C720_LOCAL_DIR=str(local), C720_TASK_RETRIES="0", C720_AIRFLOW_PORT=str(port))
    sim = [sys.executable, "-m", "simulator", "--customers", "150", "--days", "30"]
    subprocess.run([*sim, "--out", str(local / "sources"), "-q"], env=env, check=True)
    day = json.loads((local / "sources" / "simulation.json").read_text())["end"]
    _kill_a_make_run_midway(local, env, str(date.fromisoformat(day) - timedelta(days=1)))
    log = tmp_path / "ui.log"
    with log.open("w") as out:
        ui = subprocess.Popen(
            [sys.executable, "-m", "orchestrate", "ui"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            # As a background job (or a test worker) starts it: Ctrl-C must still work.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )
    home = local / "airflow"
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while "Airflow UI:" not in log.read_text():
            assert ui.poll() is None, f"make airflow exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"UI not up:\n{log.read_text()[-3000:]}"
            time.sleep(2)
        assert "login: admin / " in log.read_text().replace("\n", " ")
        # The killed run's ingest run is failed, not left running in front of ours.
        assert "Marked failed: customer720_ingest run manual__" in log.read_text()
        password = json.loads((home / "simple_auth_manager_passwords.json.generated").read_text())
        token = _api(
            port,
            "POST",
            "/auth/token",
            {"username": "admin", "password": password["admin"]},
        )["access_token"]
        dag = "/api/v2/dags/customer720_ingest"
        run = _api(
            port, "POST", f"{dag}/dagRuns", {"logical_date": None, "conf": {"as_of": day}}, token
        )
        _api(port, "PATCH", dag, {"is_paused": False}, token)
        state = run["state"]
        while state not in ("success", "failed"):
            assert time.monotonic() < deadline, f"run still {state}:\n{log.read_text()[-3000:]}"
            time.sleep(5)
            state = _api(port, "GET", f"{dag}/dagRuns/{run['dag_run_id']}", token=token)["state"]
        assert state == "success", log.read_text()[-3000:]
        pgid = int((home / "standalone.pgid").read_text())
    finally:
        ui.send_signal(signal.SIGINT)  # what Ctrl-C in `make airflow` sends
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            ui.kill()
            left = home / "standalone.pgid"
            if left.exists():  # leave nothing running behind a failed test
                os.killpg(int(left.read_text()), signal.SIGKILL)
            pytest.fail("`make airflow` did not stop within 60 s of Ctrl-C")
    # The group is gone once init has reaped the last exited members.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    assert _processes_using(home) == []
