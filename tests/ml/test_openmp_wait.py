"""LightGBM's OpenMP threads must not spin-wait: beside another busy process (an Airflow
worker running two tasks) spinning made training many times slower (ml/__init__.py)."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = (
    "import sys, os; import ml.churn.model; "
    "print(os.environ.get('OMP_WAIT_POLICY'), 'lightgbm' in sys.modules)"
)


def _probe(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_lightgbm_loads_with_passive_waiting_unless_the_user_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    # set before LightGBM (and its OpenMP runtime) loaded, which the import did
    assert _probe(env) == "PASSIVE True"
    assert _probe(env | {"OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE True"
