"""Real data through the bring-your-own-data path: CDNOW (examples/cdnow/README.md).

convert.py → ingest (CRM folder, no events) → dbt build → python -m ml churn train, each in a
child process with a clean environment and the README's C720_* settings — the folders and
the 26-week horizon, no cutoff grid: it derives from the data (the stages the README's one
`orchestrate run` command chains through Airflow; the Airflow run itself takes minutes and
is shown in examples/cdnow/README.md), then: the holdout is the standard question (cutoff
1997-12-31, 26 weeks), the churn model's holdout ROC-AUC is at least every baseline's, and
the published scores come from a champion whose holdout ROC-AUC is at least every
baseline's, with the paired bootstrap interval of LightGBM against each in the summary and
the report; loading again changes nothing; and the steps after scoring
that differ for a CRM-only folder source (no recommendations, no CRM to write back to) say
so instead of failing.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
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


@pytest.fixture(scope="module")
def cdnow(tmp_path_factory: pytest.TempPathFactory) -> dict:
    local = tmp_path_factory.mktemp("cdnow") / "cdnow"
    env = _env(local)
    out = _run(["examples/cdnow/convert.py", "--out", str(local / "crm")], env)
    assert "23570 contacts, 69659 orders" in out
    first = _run(["-m", "ingest", "crm"], env)
    # No cutoff settings: the grid derives from the data and the horizon (91-day steps).
    _run(
        [
            "-c",
            "import datetime as dt\n"
            "from customer720.dbt import run_dbt\n"
            f"run_dbt('build', as_of=dt.date.fromisoformat('{AS_OF}'), "
            "select='+customer_features', exclude='tag:needs_scores', "
            "args=['--indirect-selection', 'cautious'])",
        ],
        env,
    )
    summary = json.loads(_run(["-m", "ml", "churn", "train", "--as-of", AS_OF], env))
    again = _run(["-m", "ingest", "crm"], env)
    return {"local": local, "env": env, "train": summary, "first": first, "again": again}


def test_cdnow_churn_model_beats_baselines(cdnow: dict) -> None:
    """On the defaults: the derived grid (91-day steps for a 182-day horizon) puts the
    holdout at exactly as_of - 26 weeks, the standard question."""
    summary = cdnow["train"]
    assert summary["holdout_cutoffs"] == ["1997-12-31"]
    assert summary["rows"]["holdout"] == 23570  # everybody bought in Q1 1997
    ours = summary["metrics"]["roc_auc"]
    baselines = summary["baselines_roc_auc"]
    assert set(baselines) == {"recency_rule", "rfm_logistic", "bgnbd"}
    print(f"CDNOW holdout ROC-AUC: model {ours:.4f}, baselines {baselines}")
    for name, auc in baselines.items():
        assert ours >= auc, f"model ROC-AUC {ours:.4f} below baseline {name} ({auc:.4f})"
    assert "oracle_roc_auc" not in summary["metrics"]  # no ground truth for real data


def test_cdnow_runs_for_its_last_day_and_refuses_a_date_outside_it(cdnow: dict) -> None:
    """`python -m orchestrate run` on the example's settings: without --date the run is
    for the data's last day; a date outside the data fails at once, naming the range."""
    env = {**cdnow["env"], "C720_NO_EVENTS": "1"}
    env.pop("C720_EVENTS_DIR")
    days = _run(
        [
            "-c",
            "from rich.console import Console\n"
            "from customer720.settings import get_settings\n"
            "from orchestrate.launcher import preflight\n"
            "days, sources = preflight(get_settings(), None, Console(stderr=True))\n"
            "print([d.isoformat() for d in days], sources.first, sources.newest)",
        ],
        env,
    )
    assert days.strip() == "['1998-06-30'] 1997-01-01 1998-06-30"
    started = time.monotonic()
    refused = subprocess.run(
        [sys.executable, "-m", "orchestrate", "run", "--date", "1999-01-01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert refused.returncode != 0
    assert time.monotonic() - started < 10
    assert "1997-01-01 .. 1998-06-30" in refused.stdout + refused.stderr


def test_cdnow_loads_once_and_reports_the_time(cdnow: dict) -> None:
    assert re.search(r"CRM: 93,229 new or changed rows in [\d.]+ s", cdnow["first"])
    assert re.search(r"CRM: 0 new or changed rows in [\d.]+ s", cdnow["again"])


def test_cdnow_steps_without_products_or_a_crm_database_say_why(
    cdnow: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from activate.summary import render
    from activate.writeback import sync_scores
    from customer720.settings import get_settings
    from orchestrate.stages import json_safe

    for key, value in cdnow["env"].items():
        if key.startswith("C720_"):
            monkeypatch.setenv(key, value)
    sync = sync_scores(dt.date.fromisoformat(AS_OF))
    assert sync.written == 0 and "folder of file exports" in (sync.skipped_reason or "")
    assert sorted(p.name for p in (cdnow["local"] / "crm").iterdir()) == [
        "contacts.csv",
        "orders.csv",
    ]
    # What the recommender reports with nothing to evaluate travels as JSON and renders.
    nothing = float("nan")
    recs = json_safe(
        {
            "rows": 0,
            "customers": 0,
            "method": "blend",
            "offline": {"blend": {"map_at_k": nothing}, "popularity": {"map_at_k": nothing}},
        }
    )
    json.dumps(recs, allow_nan=False)
    text = render(
        dt.date.fromisoformat(AS_OF),
        {"recommendations": recs, "crm_writeback": sync.__dict__},
        get_settings(),
    )
    assert "- recommendations: 0 for 0 customers (blend)\n" in text
    assert "- CRM writeback: skipped, the CRM is a folder of file exports" in text


def test_cdnow_scores_come_from_a_champion_that_beats_or_equals_every_baseline(
    cdnow: dict,
) -> None:
    """LightGBM ties RFM logistic on CDNOW: the best baseline is then the honest champion,
    the scores name it, and the report says why (the paired bootstrap interval)."""
    import duckdb

    summary = cdnow["train"]
    champion = summary["champion"]
    assert champion, summary
    baselines = summary["baselines_roc_auc"]
    vs = summary["vs_baselines"]
    assert set(vs) == set(baselines)
    for v in vs.values():
        assert v["ci95"][0] <= v["difference"] <= v["ci95"][1]
    local = cdnow["local"]
    meta = json.loads((local / "models" / "churn" / champion / "metadata.json").read_text())
    champion_auc = meta["metrics"]["roc_auc"]
    for name, auc in baselines.items():
        assert champion_auc >= auc - 1e-9, f"champion {champion_auc:.4f} below {name} {auc:.4f}"
    best = summary["best_baseline"]
    if vs[best]["ci95"][0] <= 0:  # LightGBM does not beat the best baseline
        assert champion.startswith(f"baseline-{best}-")
        assert summary["champion_kind"] == "baseline"
    print(f"CDNOW champion {champion} (ROC-AUC {champion_auc:.4f}); model vs baselines {vs}")

    scored = json.loads(_run(["-m", "ml", "churn", "score", "--as-of", AS_OF], cdnow["env"]))
    assert scored["model_version"] == champion and scored["model_status"] == "champion"
    con = duckdb.connect(str(local / "warehouse.duckdb"), read_only=True)
    rows = con.sql(
        "select model_version, churn_probability, risk_band, top_reasons from ml.churn_predictions"
    ).df()
    con.close()
    assert len(rows) == scored["rows"] > 0
    assert set(rows["model_version"]) == {champion}
    assert rows["churn_probability"].between(0, 1).all()
    assert set(rows["risk_band"]) <= {"low", "medium", "high"}
    if champion.startswith("baseline-"):
        assert rows["top_reasons"].str.startswith("no order for ").all()

    report = (local / "reports" / "churn" / summary["version"] / "report.html").read_text()
    assert "Champion after this run" in report and champion in report
    assert "95 % CI" in report
