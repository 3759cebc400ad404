"""Shared pieces of the fault tests: a small company, the stages in a child, a kill, a compare.

The company is 300 customers x 60 days (seed 11). Its churn horizon is shortened to 14 days
(cutoffs every 7 days, 5 of them) so that 60 days of history give the model labelled
cutoffs to train on. Every pipeline run happens in a child process
(``stage_runner.py``), so the test process never holds the warehouse file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from bench.backfill_twice import _duckdb_fingerprints, fingerprints  # noqa: E402

CUSTOMERS, DAYS, SEED = 300, 60, 11
START = date(2024, 1, 1)
LAST = START + timedelta(days=DAYS - 1)  # the date D the tests run
RUNNER = Path(__file__).with_name("stage_runner.py")
SMALL_COMPANY_ENV = {
    "C720_QUARANTINE_MAX_RATE": "0.2",
    "C720_ML_NUM_THREADS": "2",
    "C720_CHURN_HORIZON_DAYS": "14",
    "C720_CUTOFF_STEP_DAYS": "7",
    "C720_CUTOFF_COUNT": "5",
}


def child_env(local: Path) -> dict[str, str]:
    """The environment of a run on ``local``: nothing of the caller's C720_/Airflow setup."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "AIRFLOW"))}
    return env | SMALL_COMPANY_ENV | {"C720_LOCAL_DIR": str(local), "PYTHONUNBUFFERED": "1"}


def simulate(local: Path, log: Path) -> Path:
    sources = local / "sources"
    cmd = [sys.executable, "-m", "simulator", "--customers", str(CUSTOMERS), "--days",
           str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out",
           str(sources), "-q"]  # fmt: skip
    _check(subprocess.run(cmd, env=child_env(local), stdout=log.open("w"),
                          stderr=subprocess.STDOUT, check=False).returncode, log)  # fmt: skip
    return sources


def _check(code: int, log: Path) -> None:
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-60:])
        raise AssertionError(f"child failed ({code}), {log}:\n{tail}")


def run_date(local: Path, as_of: date, log: Path, *extra: str) -> str:
    """The writing stages for ``as_of`` on ``local``, to the end; returns the child's output."""
    cmd = [sys.executable, str(RUNNER), "--date", as_of.isoformat(), *extra]
    with log.open("w") as out:
        code = subprocess.run(
            cmd, env=child_env(local), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, check=False
        ).returncode
    _check(code, log)
    return log.read_text()


def kill_during(
    local: Path,
    as_of: date,
    stage: str,
    marker: Callable[[str], bool],
    log: Path,
    *extra: str,
    timeout: float = 300,
) -> str:
    """Run the stages for ``as_of`` and ``kill -9`` the child once ``marker(output)`` holds
    after ``@@ start <stage>`` was printed; returns the output. Fails if the stage ended
    before the kill (the kill must land while it runs) or the marker never appeared."""
    cmd = [sys.executable, str(RUNNER), "--date", as_of.isoformat(), *extra]
    with log.open("w") as out:
        child = subprocess.Popen(
            cmd, env=child_env(local), stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
        )
    deadline = time.monotonic() + timeout
    try:
        while True:
            text = log.read_text(errors="replace")
            started = text.find(f"@@ start {stage}\n")
            if started >= 0 and marker(text[started:]):
                os.kill(child.pid, signal.SIGKILL)
                break
            if child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"no marker of {stage} before the child ended:\n{text[-3000:]}"
                )
            time.sleep(0.005)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    text = log.read_text(errors="replace")
    assert f"@@ done {stage}\n" not in text, f"{stage} had finished before the kill"
    return text


def copy_state(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def user_facing_tables(local: Path) -> dict[str, tuple[int, str]]:
    """What ``bench/backfill_twice.py`` compares (published marts, raw data tables, the CRM
    writeback table, run-time stamps left out), plus the warehouse's ML tables (scores,
    recommendations, features)."""
    saved = os.environ.get("C720_LOCAL_DIR")
    os.environ["C720_LOCAL_DIR"] = str(local)
    try:
        from customer720.settings import get_settings

        settings = get_settings()
        out = fingerprints(settings)
        with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
            out.update(
                {f"warehouse {k}": v for k, v in _duckdb_fingerprints(con, {"ml": set()}).items()}
            )
    finally:
        if saved is None:
            os.environ.pop("C720_LOCAL_DIR")
        else:
            os.environ["C720_LOCAL_DIR"] = saved
    return out


def differences(a: dict, b: dict) -> dict[str, tuple]:
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
