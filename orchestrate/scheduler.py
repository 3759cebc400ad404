"""A real Airflow for ``run`` / ``backfill`` / ``train``: the scheduler, and its REST API.

``airflow_for_run(settings)`` yields an ``AirflowApi``: the one ``make airflow`` runs for
this Airflow home when it is up (left running), else Airflow's scheduler (LocalExecutor),
DAG processor and API server started for the command in a session of its own, on a free
port, and stopped at its end. Its DAG runs are ordinary runs: task logs where the UI reads
them, history kept, true durations.

The session leader is a small guard (``python -m orchestrate.scheduler guard PID``): it
starts the three components (what ``airflow standalone`` runs, but its triggerer: no task
of ours defers) and ends the whole session when one of them exits or the launcher that
started it dies without stopping it (``kill -9``, a closed terminal), so no scheduler
outlives its run.

What a run waits for, kept small (README, "What orchestration costs"): the metadata DB is
prepared and orphaned runs failed in one process (orchestrate/airflow_db.py); the API
server's execution API is set up before the first task, not in it; the run's DAG files are
parsed once; the scheduler preloads dbt and Great Expectations for the task processes it
forks (airflow_settings/); and at the end, with every run finished, the components get 3 s
to stop before they are killed (the API server alone would take up to 120 s).

Also here, as ``ui`` needs them too: the Airflow environment, the session's processes and
``stop_session``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console

from customer720.settings import Settings

log = logging.getLogger(__name__)

POLL_S = 1.0  # how often `run` asks the API about its runs: cheap (a few ms a call)
START_TIMEOUT_S = 300
STOP_GRACE_S = 3.0  # a run's own Airflow: TERM, then KILL what is left after this


def airflow_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(settings.tool_env())
    # `airflow standalone` starts its components as `airflow ...` from PATH: use ours.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # airflow_local_settings: the scheduler preloads dbt for the task processes it forks.
    preload = str(Path(__file__).with_name("airflow_settings"))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (preload, env.get("PYTHONPATH")) if p)
    return env


def standalone_env(settings: Settings, port: int) -> dict[str, str]:
    """The environment of ``airflow standalone`` serving on ``port``."""
    env = airflow_env(settings)
    env["AIRFLOW__API__PORT"] = str(port)
    # Task processes report to the API server's execution API: same port, or they fail.
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://localhost:{port}/execution/"
    # One API-server worker on a busy laptop can take longer than the default 5 s to answer.
    env.setdefault("AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT", "60")
    env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"] = "admin:admin"
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the session of processes a standalone Airflow runs in ---


def session_members(sid: int) -> list[int]:
    """Live processes in session ``sid``. Airflow puts each task runner in its own process
    group (so it can signal the task's children), but none leaves the session it was
    started in, so the session, not the group, is what reaches every process."""
    members = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == sid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                members.append(pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def end_session(sid: int, spare: int | None = None, grace_s: float = 20.0) -> None:
    """TERM every process of session ``sid`` (but ``spare``), KILL what is alive after
    ``grace_s`` (Airflow's workers ignore TERM)."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        members = [p for p in session_members(sid) if p != spare]
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while members and time.monotonic() < deadline:
            time.sleep(0.5)
            members = [p for p in session_members(sid) if p != spare]
        if not members:
            return


def stop_session(pgid_file: Path, grace_s: float = 20.0) -> None:
    """Stop the session named in ``pgid_file`` (started with start_new_session: sid ==
    pgid == pid of its leader), then forget it."""
    if not pgid_file.exists():
        return
    end_session(int(pgid_file.read_text()), grace_s=grace_s)
    pgid_file.unlink(missing_ok=True)


def session_alive(pgid_file: Path) -> bool:
    try:
        return bool(session_members(int(pgid_file.read_text())))
    except (OSError, ValueError):
        return False


def run_pgid_file(settings: Settings) -> Path:
    """The session of the Airflow a ``run`` started for itself."""
    return settings.airflow_home / "run_scheduler.pgid"


def ui_files(settings: Settings) -> tuple[Path, Path]:
    """The session and the port of ``make airflow`` (orchestrate/ui.py)."""
    return settings.airflow_home / "standalone.pgid", settings.airflow_home / "standalone.port"


def healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/api/v2/monitor/health", timeout=5):
            return True
    except OSError:
        return False


def wait_healthy(base_url: str, timeout_s: float, proc: subprocess.Popen | None = None) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        if healthy(base_url):
            return True
        time.sleep(0.5)
    return False


# --- the REST API ---


class AirflowError(RuntimeError):
    """Airflow did not start, or its API answered with an error."""


class _ServerBusy(Exception):
    """An HTTP 5xx answer: Airflow's API failed this time, perhaps not the next."""


class AirflowApi:
    """The few calls of Airflow's REST API (``/api/v2``) the launcher makes."""

    def __init__(self, base_url: str, airflow_home: Path, proc: subprocess.Popen | None = None):
        self.base_url = base_url
        self.airflow_home = airflow_home
        self.proc = proc  # our own standalone (None: make airflow's)
        self._token = ""

    def _login(self) -> str:
        passwords = self.airflow_home / "simple_auth_manager_passwords.json.generated"
        password = json.loads(passwords.read_text())["admin"]
        body = {"username": "admin", "password": password}
        return self._request("POST", "/auth/token", body, auth=False)["access_token"]

    # Some HTTP 500s of Airflow 3.3's API pass: its SQLite metadata DB when busy ("database
    # is locked"), and `upstreamAssetEvents` while a run it created is still queued (the
    # run's start_date is null and the response fails validation) — seen in CI. Reads and
    # idempotent writes are tried again for up to a minute; a POST (a trigger) is not: a
    # retry could start a second run.
    RETRIED_METHODS = ("GET", "PATCH")
    RETRY_WAITS_S = (1, 2, 4, 8, 15, 30)

    def _request(self, method: str, path: str, body: Any = None, auth: bool = True) -> Any:
        for wait in (*self.RETRY_WAITS_S, None):
            try:
                return self._request_once(method, path, body, auth)
            except _ServerBusy as exc:
                if wait is None or method not in self.RETRIED_METHODS:
                    raise AirflowError(str(exc)) from None
                log.info("%s; trying again in %d s", exc, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _request_once(self, method: str, path: str, body: Any, auth: bool) -> Any:
        if auth and not self._token:
            self._token = self._login()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self._token}"
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers=headers,
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code == 401 and auth:  # the token expired: once more with a new one
                self._token = ""
                return self._request(method, path, body)
            detail = exc.read().decode(errors="replace")[:500]
            if exc.code >= 500:
                raise _ServerBusy(f"{method} {path}: HTTP {exc.code} {detail}") from None
            raise AirflowError(f"{method} {path}: HTTP {exc.code} {detail}") from None
        except OSError as exc:  # the API server went away (`make airflow-stop`, a crash)
            raise AirflowError(f"Airflow's API at {self.base_url} is unreachable: {exc}") from None

    def call(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        if params:
            path += "?" + urllib.parse.urlencode(params)
        return self._request(method, "/api/v2" + path, body)

    def warm_up(self) -> None:
        """The API server sets up its execution API (the one task processes report to) on
        the first request to it, serving nothing else meanwhile (7-9 s seen on a busy machine): done here
        while the DAGs are parsed, not in the first task's start."""
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{self.base_url}/execution/health", timeout=60).close()

    def alive(self) -> bool:
        return self.proc is None or self.proc.poll() is None

    # the calls, by what they are for
    def dag(self, dag_id: str) -> dict:
        return self.call("GET", f"/dags/{dag_id}")

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self.call("PATCH", f"/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, conf: dict) -> dict:
        return self.call("POST", f"/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})

    def dag_run(self, dag_id: str, run_id: str) -> dict:
        return self.call("GET", f"/dags/{dag_id}/dagRuns/{_q(run_id)}")

    def dag_runs_after(self, dag_id: str, since: str) -> list[dict]:
        return self.call(
            "GET", f"/dags/{dag_id}/dagRuns", run_after_gte=since, order_by="run_after", limit=50
        )["dag_runs"]

    def upstream_events(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{_q(run_id)}/upstreamAssetEvents"
        return self.call("GET", path)["asset_events"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances"
        return self.call("GET", path, limit=100)["task_instances"]

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int) -> str:
        """The task's log as text, one line per record (exceptions with their message)."""
        path = f"/dags/{dag_id}/dagRuns/{_q(run_id)}/taskInstances/{_q(task_id)}/logs/{try_number}"
        return render_log(self.call("GET", path, full_content="true").get("content") or [])


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def render_log(content: list | str) -> str:
    """Airflow 3's structured log records as text lines."""
    if isinstance(content, str):
        return content
    lines = []
    for record in content:
        if not isinstance(record, dict):
            lines.append(str(record))
            continue
        event = str(record.get("event", ""))
        if event.startswith("::"):  # the UI's group markers
            continue
        lines.append(f"{record.get('timestamp', '')} {record.get('level', '')} {event}".strip())
        for error in record.get("error_detail") or []:
            lines.append(f"{error.get('exc_type', 'Error')}: {error.get('exc_value', '')}")
    return "\n".join(lines)


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- starting one for a run ---


def _running_ui(settings: Settings) -> str | None:
    """The URL of the ``make airflow`` serving this Airflow home, if it is up."""
    pgid_file, port_file = ui_files(settings)
    if not (session_alive(pgid_file) and port_file.exists()):
        return None
    url = f"http://127.0.0.1:{int(port_file.read_text())}"
    return url if healthy(url) else None


def prepare_db(settings: Settings, fail_orphans: bool = False) -> list[dict[str, str]]:
    """orchestrate.airflow_db in Airflow's environment: the metadata DB and the writers'
    pool; with ``fail_orphans`` also fail the runs no scheduler works on (returned)."""
    logs = settings.local_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "orchestrate.airflow_db"]
    orphans = settings.airflow_home / "orphans.json"
    orphans.unlink(missing_ok=True)
    left = unpaused_file(settings)
    if fail_orphans:
        cmd += ["--orphans", str(orphans), *(json.loads(left.read_text()) if left.exists() else [])]
    log_file = logs / "airflow_db_prepare.log"
    with log_file.open("w") as out:
        code = subprocess.run(
            cmd, env=airflow_env(settings), stdout=out, stderr=subprocess.STDOUT, check=False
        ).returncode
    if code != 0:
        tail = "\n".join(log_file.read_text(errors="replace").splitlines()[-20:])
        raise AirflowError(f"preparing Airflow's metadata DB failed (log {log_file}):\n{tail}")
    if not fail_orphans:
        return []
    left.unlink(missing_ok=True)
    failed = json.loads(orphans.read_text())
    orphans.unlink()
    return failed


def unpaused_file(settings: Settings) -> Path:
    """The DAGs a run unpaused for itself, while it runs (orchestrate.launcher.unpaused)."""
    return settings.airflow_home / "unpaused_by_run.json"


@contextlib.contextmanager
def airflow_for_run(
    settings: Settings, console: Console, dag_ids: list[str]
) -> Iterator[AirflowApi]:
    """An Airflow scheduler and API for the command (see the module's doc); the ``dag_ids``
    parsed by it before it is handed out."""
    url = _running_ui(settings)
    if url:
        console.print(f"Using the Airflow `make airflow` runs ({url}); it stays up.")
        api = AirflowApi(url, settings.airflow_home)
        _wait_parsed(api, dag_ids, None)
        yield api
        return
    pgid_file = run_pgid_file(settings)
    stop_session(pgid_file)  # a guard whose launcher died ends its session; in case not
    for orphan in prepare_db(settings, fail_orphans=True):
        console.print(
            f"Marked failed: {orphan['dag_id']} run {orphan['run_id']}, left {orphan['state']} "
            "by a stopped run.",
            soft_wrap=True,
        )
    port = free_port()
    env = standalone_env(settings, port)
    # The dates are the command's: no daily / weekly run of the scheduler's own.
    env["C720_TIME_SCHEDULES"] = "0"
    env["AIRFLOW__CORE__PARALLELISM"] = "2"  # 2 cores; DuckDB writers queue in a pool of 1
    # The DAG files do not change during a run: parsed once at the start (waited for
    # below), not again every 30 s (each a process importing them, beside the tasks).
    env["AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL"] = "600"
    # Its tasks run one after another: look for the next one twice as often (default 1 s)
    # when a loop found nothing to do, so less of the run is spent between tasks.
    env["AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME"] = "0.5"
    log_file = settings.local_dir / "logs" / "airflow_scheduler_run.log"
    started = time.time()
    with log_file.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrate.scheduler", "guard", str(os.getpid())],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    pgid_file.write_text(str(proc.pid))
    console.print(f"Starting Airflow's scheduler (LocalExecutor) on port {port}; log: {log_file}")
    try:
        url = f"http://127.0.0.1:{port}"
        if not wait_healthy(url, START_TIMEOUT_S, proc):
            raise AirflowError(
                f"Airflow did not come up within {START_TIMEOUT_S} s; see {log_file}"
            )
        api = AirflowApi(url, settings.airflow_home, proc)
        api.warm_up()
        _wait_parsed(api, dag_ids, started)
        console.print(f"Airflow up in {time.time() - started:.0f} s: http://localhost:{port}")
        yield api
    finally:
        # Every run it served has finished, or the command is failing (a run left running
        # is failed by the next start, orchestrate/orphans.py): nothing is worth the
        # graceful shutdown, 6-10 s of the scheduler's and the API server's each seen.
        stop_session(pgid_file, grace_s=STOP_GRACE_S)
        proc.wait()


def _wait_parsed(api: AirflowApi, dag_ids: list[str], since: float | None) -> None:
    """Wait until the DAG processor has parsed each DAG (after ``since``, when given: our
    own scheduler's DAGs must be parsed with its settings before a run starts)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    pending = list(dag_ids)
    while pending:
        dag_id = pending[0]
        try:
            parsed = parse_time(api.dag(dag_id).get("last_parsed_time"))
        except AirflowError:
            parsed = None
        if parsed is not None and (since is None or parsed.timestamp() >= since):
            pending.pop(0)
            continue
        if time.monotonic() > deadline or not api.alive():
            raise AirflowError(f"Airflow has not parsed {dag_id} (see dags/ and its log)")
        time.sleep(0.5)


# --- the guard: the session leader of a run's Airflow ---

# A run's Airflow: what ``airflow standalone`` starts but its triggerer (no task of ours
# defers), and without standalone's own process (one Airflow import and DB check fewer).
RUN_COMPONENTS = ("scheduler", "dag-processor", "api-server")


def _prefix_lines(name: str, stream: Any, lock: threading.Lock) -> None:
    """Copy a component's output to ours, each line tagged with the component's name."""
    for line in iter(stream.readline, b""):
        with lock:
            sys.stdout.buffer.write(f"{name:<13} | ".encode() + line)
            sys.stdout.buffer.flush()


def guard(parent: int) -> int:
    """Run Airflow's components; end this session when one exits or ``parent`` dies."""
    exe = str(Path(sys.executable).with_name("airflow"))
    lock = threading.Lock()
    children = []
    for name in RUN_COMPONENTS:
        child = subprocess.Popen([exe, name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        threading.Thread(target=_prefix_lines, args=(name, child.stdout, lock), daemon=True).start()
        children.append(child)
    while all(c.poll() is None for c in children) and os.getppid() == parent:
        time.sleep(1)
    for child in children:
        if child.poll() is not None:
            print(f"{'guard':<13} | airflow {child.args[1]} exited with {child.returncode}")
    end_session(os.getsid(0), spare=os.getpid())
    for child in children:
        child.wait()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["guard"]:
        sys.exit(guard(int(sys.argv[2])))
    sys.exit("usage: python -m orchestrate.scheduler guard PARENT_PID")
