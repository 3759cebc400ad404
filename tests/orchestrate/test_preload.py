"""The scheduler preloads dbt and Great Expectations for the task processes it forks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from orchestrate.stages import PRELOADED_MODULES

SETTINGS_DIR = Path(__file__).resolve().parents[2] / "orchestrate" / "airflow_settings"

PROBE = """
import sys
sys.argv = ["airflow", sys.argv[1]]
import airflow_local_settings  # what Airflow imports first in each of its processes
print(",".join(m for m in {modules!r} if m in sys.modules))
"""


def _loaded(component: str) -> set[str]:
    env = dict(os.environ, PYTHONPATH=str(SETTINGS_DIR))
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(modules=PRELOADED_MODULES), component],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return set(filter(None, out.stdout.strip().split(",")))


def test_scheduler_preloads_what_tasks_import() -> None:
    # Forked workers (and their task processes) inherit these: no 2-4 s import per dbt
    # task or gate. Other components (the API server, the DAG processor) stay lean.
    assert _loaded("scheduler") == set(PRELOADED_MODULES)
    assert _loaded("api-server") == set()
