"""Real data through the bring-your-own-data path: CDNOW (examples/cdnow/README.md).

convert.py → ingest (CRM folder, no events) → dbt build → python -m ml train, each in a
child process with a clean environment (exactly the README's commands), then: the churn
model's holdout ROC-AUC at cutoff 1997-12-31 (26-week horizon) is at least every
baseline's on the same holdout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CDNOW = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
AS_OF = "1998-07-01"

pytestmark = pytest.mark.skipif(
    not CDNOW.is_file(),
    reason=f"CDNOW data not found at {CDNOW} (the shared real-data folder is absent)",
)


def _env(local: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "DBT_"))}
    env.update(
        C720_LOCAL_DIR=str(local),
        C720_CRM_URL=str(local / "crm"),
        C720_EVENTS_DIR=str(local / "no_events"),
        C720_CHURN_HORIZON_DAYS="182",
        C720_ML_NUM_THREADS="2",
        CDNOW_FILE=str(CDNOW),
    )
    return env


def _run(args: list[str], env: dict[str, str]) -> str:
    proc = subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=600, cwd=ROOT
    )
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    return proc.stdout


def test_cdnow_churn_model_beats_baselines(tmp_path: Path) -> None:
    local = tmp_path / "cdnow"
    env = _env(local)
    out = _run(["examples/cdnow/convert.py", "--out", str(local / "crm")], env)
    assert "23570 contacts, 69659 orders" in out
    _run(["-m", "ingest", "crm"], env)
    _run(
        [
            "-c",
            "import datetime as dt\n"
            "from customer720.dbt import run_dbt\n"
            f"run_dbt('build', as_of=dt.date.fromisoformat('{AS_OF}'), "
            "select='+customer_features', exclude='tag:needs_scores', "
            "extra_vars={'cutoff_step_days': 91, 'cutoff_count': 4}, "
            "args=['--indirect-selection', 'cautious'])",
        ],
        env,
    )
    summary = json.loads(_run(["-m", "ml", "train", "--as-of", AS_OF], env))
    assert summary["holdout_cutoffs"] == ["1997-12-31"]
    assert summary["rows"]["holdout"] == 23570  # everybody bought in Q1 1997
    ours = summary["metrics"]["roc_auc"]
    baselines = summary["baselines_roc_auc"]
    assert set(baselines) == {"recency_rule", "rfm_logistic", "bgnbd"}
    print(f"CDNOW holdout ROC-AUC: model {ours:.4f}, baselines {baselines}")
    for name, auc in baselines.items():
        assert ours >= auc, f"model ROC-AUC {ours:.4f} below baseline {name} ({auc:.4f})"
    assert "oracle_roc_auc" not in summary["metrics"]  # no ground truth for real data
