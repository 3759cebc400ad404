"""Shared pieces of the fault tests: a small company, the stages for a date in a child.

The company is 300 customers x 60 days (seed 11). Its churn horizon is shortened to 14 days
(cutoffs every 7 days, 5 of them) so that 60 days of history give the model labelled
cutoffs to train on. Every pipeline run happens in a child process
(``tests/activate/pipeline_stages.py``), so the test process never holds the warehouse file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

CUSTOMERS, DAYS, SEED = 300, 60, 11
START = date(2024, 1, 1)
LAST = START + timedelta(days=DAYS - 1)  # the date D the tests run
RUNNER = ROOT / "tests" / "activate" / "pipeline_stages.py"
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


def simulate(local: Path, log: Path, *extra: str) -> Path:
    """The small company into ``local/sources``; ``extra``: more simulator options."""
    sources = local / "sources"
    cmd = [sys.executable, "-m", "simulator", "--customers", str(CUSTOMERS), "--days",
           str(DAYS), "--seed", str(SEED), "--start", START.isoformat(), "--out",
           str(sources), "-q", *extra]  # fmt: skip
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
