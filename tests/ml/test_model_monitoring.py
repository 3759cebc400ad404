"""Issue #24, monitoring: realised quality of issued scores, and PSI drift with its gate.

One simulated company (1,000 customers × 365 days, stationary: a company in steady state,
without seasons, with two years of history before its first day,
``SimulationConfig.stationary``) goes through ingest and one dbt build of the last day, on
a weekly cutoff grid (``C720_CUTOFF_STEP_DAYS=7``) so that the feature table holds every
weekly date point in time. The churn model is trained once, 120 days before the end; then
the 120 days are replayed weekly without retraining: scores (and recommendation lists on
the first dates) are issued with that model for every weekly date, as the daily DAG's
score stages do, and the monitoring stage runs at the end.

A second company, the same seed and days up to four weeks after the training date, has
the simulator's injected drift: every price × 3 from the day after training. Its
monitoring gate, four weeks after training, names the revenue features; the first
company's gate at the same date is silent.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from simulator.api import generate
from simulator.config import SimulationConfig

CUSTOMERS, SEED, START = 1000, 11, dt.date(2024, 1, 1)
END = dt.date(2024, 12, 30)
NO_TESTS = ["--exclude-resource-type", "test", "--exclude-resource-type", "unit_test"]
# The drift check: four weeks after the training date. After two weeks of tripled prices
# only the buyers of those two weeks move (revenue_last_30d PSI 0.05 on this company: most
# scored customers bought nothing in 30 days); after four, every 30-day buyer has.
DRIFT_CHECK_DAYS = 28


def _point_at(mp: pytest.MonkeyPatch, root: Path) -> None:
    for var in (
        "C720_WAREHOUSE",
        "C720_MODEL_DIR",
        "C720_REPORTS_DIR",
        "C720_SOURCES_DIR",
        "C720_CRM_URL",
        "C720_EVENTS_DIR",
        "C720_TRUTH_DIR",
        "C720_CHURN_HORIZON_DAYS",
    ):
        mp.delenv(var, raising=False)  # fmt: skip
    mp.setenv("C720_LOCAL_DIR", str(root))
    mp.setenv("C720_ML_NUM_THREADS", "2")
    mp.setenv("C720_ML_EXACT_REASONS", "0")  # reasons are not what is tested: the fast ones
    mp.setenv("C720_CUTOFF_STEP_DAYS", "7")
    mp.setenv("C720_CUTOFF_COUNT", "45")


def _build(root: Path, days: int, shift: tuple[float, dt.date] | None) -> dt.date:
    """Simulate, ingest and build the warehouse at the company's last day; return it."""
    from orchestrate.stages import run_stage

    kw = {"price_shift_factor": shift[0], "price_shift_from": shift[1]} if shift else {}
    generate(SimulationConfig(customers=CUSTOMERS, days=days, seed=SEED, start=START,
                              out=root / "sources", stationary=True, **kw))  # fmt: skip
    last = START + dt.timedelta(days=days - 1)
    run_stage("ingest_crm", last)
    run_stage("ingest_events", last)
    run_stage("marts", last, args=NO_TESTS)
    return last


@pytest.fixture(scope="module")
def backfill(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from ml.churn.score import score_churn
    from ml.churn.train import train_churn
    from ml.common import data
    from ml.monitoring.monitor import monitor_models
    from ml.recs.score import recommend

    root = tmp_path_factory.mktemp("monitoring_backfill")
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, root)
        end = _build(root, (END - START).days + 1, None)
        weekly = [c.date() for c in data.feature_cutoffs()]
        trained_at = max(c for c in weekly if c <= end - dt.timedelta(days=120))
        trained = train_churn(trained_at)
        issued = [c for c in weekly if trained_at < c <= end]
        for day in issued:
            score_churn(day)
        # lists for the recent weeks (older weeks are past the monitoring's 8-week lookback)
        for day in [
            d for d in issued if end - dt.timedelta(days=35) <= d <= end - dt.timedelta(days=7)
        ]:
            recommend(day)
        from orchestrate.stages import run_stage

        check_day = trained_at + dt.timedelta(days=DRIFT_CHECK_DAYS)
        quiet = run_stage("monitor_models", check_day).summary
        gate_quiet = run_stage("quality_models", check_day).summary
        summary = monitor_models(end)
        rows = _rows(root)
    return {"root": root, "trained": trained, "issued": issued, "summary": summary,
            "rows": rows, "gate_quiet": gate_quiet, "quiet": quiet, "check_day": check_day,
            "trained_at": trained_at}  # fmt: skip


def _rows(root: Path) -> pd.DataFrame:
    from customer720 import warehouse

    return warehouse.query_df("select * from ml.model_monitoring")


def _holdout_se(root: Path, version: str) -> float:
    """Bootstrap standard error of the holdout ROC-AUC (the model's report keeps its rows)."""
    from sklearn.metrics import roc_auc_score

    pred = pd.read_csv(root / "reports" / "churn" / version / "holdout_predictions.csv")
    y, p = pred["churned"].to_numpy(int), pred["model"].to_numpy(float)
    rng = np.random.default_rng(0)
    aucs = []
    for _ in range(300):
        i = rng.integers(0, len(y), len(y))
        aucs.append(roc_auc_score(y[i], p[i]))
    return float(np.std(aucs))


def _independent_auc(version: str, day: dt.date) -> float:
    """The model's ROC-AUC on the customers scored at ``day``, recomputed apart from the
    monitoring code: its probabilities from the feature rows, the label straight from
    fct_orders (no purchase in the 90 days after)."""
    from sklearn.metrics import roc_auc_score

    from customer720 import warehouse
    from ml.churn import registry
    from ml.churn.features import build_matrix
    from ml.churn.model import predict_proba
    from ml.common import data
    from ml.common.config import ChurnConfig

    model = registry.load_model(ChurnConfig.from_settings().model_dir, version)
    scored = warehouse.query_df(
        f"select customer_key from ml.churn_predictions where as_of_date = date '{day}'"
    )
    feats = data.load_features([day])
    feats = feats[feats["customer_key"].isin(set(scored["customer_key"]))]
    bought = warehouse.query_df(
        "select distinct customer_key from marts.fct_orders where is_purchase "
        f"and ordered_at > timestamp '{day}' "
        f"and ordered_at <= timestamp '{day + dt.timedelta(days=90)}'"
    )
    churned = (~feats["customer_key"].isin(set(bought["customer_key"]))).astype(int)
    prob = predict_proba(model.booster, model.calibrator, build_matrix(feats, model.spec))
    return float(roc_auc_score(churned, prob))


def test_realised_auc_per_week(backfill: dict) -> None:
    """Per issue week: the realised ROC-AUC is the model's true AUC on those scores, the
    weeks agree with each other within their bootstrap noise, and every week is within
    the noise of the holdout on both sides (1.96 × the hypot of the week's and the
    holdout's standard errors): the issue's "within noise of the holdout". It holds on a
    stationary company, not on the default one, whose data begin on its first day (the
    holdout cutoff, in May, sees a younger population than the September scores);
    ml/README.md, "Model monitoring", has the measurements, and those of the holdout leak
    that needed fixing too."""
    rows = backfill["rows"]
    version = backfill["trained"]["version"]
    holdout = backfill["trained"]["metrics"]["roc_auc"]
    # the model judged is the one trained (not a baseline champion scoring in its place)
    assert backfill["trained"]["champion"] == version, backfill["trained"]["champion_note"]
    auc = rows[(rows["metric"] == "roc_auc") & (rows["model_version"] == version)]
    # every issue week whose 90-day window closed by the end is judged: the first 30 days
    assert len(auc) >= 4, auc
    se_holdout = _holdout_se(backfill["root"], version)
    se_weeks = ((auc["ci_high"] - auc["ci_low"]) / (2 * 1.96)).to_numpy()
    mean = float(auc["value"].mean())
    report = []
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, backfill["root"])
        for r, se in zip(auc.itertuples(), se_weeks, strict=True):
            day = pd.Timestamp(r.issued_from).date()
            assert r.value == pytest.approx(_independent_auc(version, day), abs=1e-9)
            assert abs(r.value - mean) <= 1.96 * se, (mean, r.value, se)
            band = 1.96 * float(np.hypot(se, se_holdout))
            report.append((str(r.issue_week)[:10], round(r.value, 4), round(se, 4),
                           round(band, 4), int(r.n_rows)))  # fmt: skip
            assert r.reference_value == pytest.approx(holdout)
            assert r.is_alert == (r.value < holdout - 0.05)
    print(json.dumps({"holdout": holdout, "se_holdout": se_holdout,
                      "weeks (week, AUC, SE, band, scores)": report}))  # fmt: skip
    outside = [w for w in report if abs(w[1] - holdout) > w[3]]
    assert not outside, (holdout, se_holdout, outside)
    brier = rows[rows["metric"] == "brier"]
    assert len(brier) == len(auc) and brier["value"].between(0, 1).all()
    maps = rows[rows["metric"] == "map_at_10"]
    assert len(maps) >= 1 and maps["value"].between(0, 1).all()


def test_no_drift_no_alert(backfill: dict) -> None:
    gate = backfill["gate_quiet"]
    print(json.dumps({"quiet max_psi": backfill["quiet"]["max_psi"]}))
    assert gate["success"], gate
    assert gate["drifted_features"] == []


def test_price_drift_fires_the_gate_naming_the_features(
    backfill: dict, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from ml.churn.score import score_churn
    from ml.churn.train import train_churn
    from orchestrate.stages import run_stage

    trained_at, check_day = backfill["trained_at"], backfill["check_day"]
    root = tmp_path_factory.mktemp("monitoring_drift")
    with pytest.MonkeyPatch.context() as mp:
        _point_at(mp, root)
        days = (check_day - START).days + 1
        _build(root, days, (3.0, trained_at + dt.timedelta(days=1)))
        train_churn(trained_at)
        score_churn(check_day)
        monitored = run_stage("monitor_models", check_day).summary
        gate = run_stage("quality_models", check_day).summary
    print(json.dumps({"drift max_psi": monitored["max_psi"], "named": gate["drifted_features"]}))
    assert not gate["success"]
    drifted = set(gate["drifted_features"])
    assert drifted & {"revenue_last_30d", "revenue_last_90d"}, gate
    # only what prices move: no session, email or ticket feature is named
    assert not {f for f in drifted if f.startswith(("sessions", "emails", "ticket"))}, drifted
    assert any("drifted features" in a or "PSI of feature" in a for a in gate["alerts"])


def test_psi_reads_a_shift_and_ignores_resampling() -> None:
    """PSI near 0 for a new sample of the same population, above 0.25 for the buyers'
    amounts tripled (with most rows at 0, the point mass has a bin of its own), and a
    missing value or an unseen category counts in a bin of its own."""
    from ml.monitoring import psi

    rng = np.random.default_rng(0)

    def revenue(n: int, factor: float = 1.0) -> pd.Series:
        buys = rng.random(n) < 0.25
        return pd.Series(np.where(buys, rng.gamma(2.0, 40.0, n) * factor, 0.0))

    ref = psi.bin_column(revenue(5000))
    assert psi.column_psi(revenue(5000), ref) < 0.02
    assert psi.column_psi(revenue(5000, factor=3.0), ref) > 0.25
    with_missing = revenue(5000).mask(rng.random(5000) < 0.3)
    assert psi.column_psi(with_missing, ref) > 0.25
    cats = psi.bin_column(pd.Series(["DE", "FR"] * 500, dtype=object))
    assert psi.column_psi(pd.Series(["DE", "FR"] * 400 + ["US"] * 200, dtype=object), cats) > 0.25


def test_price_shift_knob_is_checked() -> None:
    with pytest.raises(ValueError, match="factor above 0"):
        SimulationConfig(customers=10, days=1, price_shift_factor=0.0, out=Path("/nonexistent"))
    from simulator.__main__ import _price_shift

    with pytest.raises(ValueError, match="FACTOR@YYYY-MM-DD"):
        _price_shift("3x")
    assert _price_shift("3.0@2024-08-27") == {
        "price_shift_factor": 3.0,
        "price_shift_from": dt.date(2024, 8, 27),
    }
