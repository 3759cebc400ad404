"""Churn model: training, behaviour, reproducibility, scoring, champion/challenger."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from customer720 import warehouse
from ml.churn import registry
from ml.churn.model import raw_scores
from ml.churn.score import predict_frame, score_churn
from ml.churn.train import train_churn
from ml.common import data
from ml.common.config import ChurnConfig


def _cfg(**kw) -> ChurnConfig:
    return dataclasses.replace(ChurnConfig.from_settings(), **kw)


def test_train_beats_baselines_and_registers(synthetic_wh):
    s = train_churn(synthetic_wh["as_of"])
    assert s["gates_passed"] and s["promoted"] and s["champion"] == s["version"]
    assert s["metrics"]["roc_auc"] > 0.8
    assert all(s["metrics"]["roc_auc"] > auc for auc in s["baselines_roc_auc"].values())
    cfg = ChurnConfig.from_settings()
    folder = cfg.model_dir / s["version"]
    assert {"model.txt", "calibrator.joblib", "metadata.json"} <= {p.name for p in folder.iterdir()}
    meta = json.loads((folder / "metadata.json").read_text())
    assert meta["features"]["kinds"]["country"] == "categorical"
    assert {"train", "valid", "calibration", "holdout"} == set(meta["rows"])
    assert meta["cutoffs"]["holdout"] == ["2026-04-01"]  # latest cutoff with a full horizon
    # no label or history column leaked into the features
    assert not any(n.startswith("hist__") or n == "churned" for n in meta["features"]["names"])
    report_dir = cfg.reports_dir / s["version"]
    assert (report_dir / "report.html").stat().st_size > 10_000  # embedded plots
    assert json.loads((report_dir / "metrics.json").read_text())["metrics"]["roc_auc"] > 0.8


def test_the_holdout_judges_a_fit_without_the_purged_rows_and_the_deployed_fit_has_them(
    synthetic_wh,
):
    """Evaluate with a gap, deploy with the fresh rows: the holdout metrics come from a
    booster that fitted train + valid only (no row of the valid cutoff inside the holdout's
    label window), while the registered booster that scores fitted those rows too, with
    the same number of trees (the real LightGBM, refitted here and compared)."""
    from ml.churn.dataset import training_data
    from ml.churn.features import build_matrix
    from ml.churn.model import fit_booster, refit_booster
    from ml.common.evaluate import classification_metrics

    cfg = ChurnConfig.from_settings()
    s = train_churn(synthetic_wh["as_of"])
    td = training_data(synthetic_wh["as_of"], cfg)
    assert len(td.purged)  # the default grid: the valid cutoff is 60 days before the holdout
    meta = registry.load_model(cfg.model_dir, s["version"]).metadata
    refit = meta["deployed_refit"]
    assert refit["purged_rows"] == len(td.purged)
    assert refit["rows"] == meta["rows"]["train"] + meta["rows"]["valid"] + len(td.purged)
    assert refit["cutoffs"] == sorted({c.date().isoformat() for c in td.purged["cutoff_date"]})
    assert refit["cutoffs"] == meta["cutoffs"]["valid"]
    assert not set(refit["cutoffs"]) & set(meta["cutoffs"]["holdout"])
    report = (cfg.reports_dir / s["version"] / "report.html").read_text()
    assert f"plus {len(td.purged):,} rows of cutoff(s) {refit['cutoffs'][0]}" in report

    evaluated = fit_booster(td.X["train"], td.y["train"], td.X["valid"], td.y["valid"], cfg)
    holdout_raw = raw_scores(evaluated, td.X["holdout"])
    # the registered holdout metric is the evaluated booster's
    raw_auc = classification_metrics(td.y["holdout"], holdout_raw)["roc_auc"]
    assert meta["metrics"]["raw_roc_auc"] == pytest.approx(raw_auc, abs=1e-12)
    deployed = registry.load_model(cfg.model_dir, s["version"]).booster
    assert deployed.current_iteration() == evaluated.current_iteration() == meta["trees"]
    assert not np.allclose(raw_scores(deployed, td.X["holdout"]), holdout_raw)
    X = pd.concat(
        [td.X["train"], td.X["valid"], build_matrix(td.purged, td.spec)], ignore_index=True
    )
    y = np.concatenate([td.y["train"], td.y["valid"], td.purged["churned"].to_numpy(int)])
    again = refit_booster(X, y, meta["trees"], cfg)
    np.testing.assert_allclose(
        raw_scores(deployed, td.X["holdout"]), raw_scores(again, td.X["holdout"])
    )
    # as the champion of a later run, the version is judged by its evaluated fit too
    from ml.churn.train import _champion_auc

    champion_auc = _champion_auc(td.parts["holdout"], cfg)(s["version"])
    assert champion_auc == pytest.approx(s["metrics"]["roc_auc"], abs=1e-12)


def test_risky_twin_scores_higher(synthetic_wh):
    """A customer identical to a loyal one but silent for long, with bad tickets, scores higher."""
    train_churn(synthetic_wh["as_of"])
    cfg = ChurnConfig.from_settings()
    model = registry.load_model(cfg.model_dir, registry.champion_version(cfg.model_dir))
    feats = data.load_features([synthetic_wh["as_of"]])
    loyal = feats.sort_values(["recency_days", "frequency"], ascending=[True, False]).head(1)
    assert loyal["negative_tickets_last_90d"].iat[0] == 0
    risky = loyal.copy()
    risky["recency_days"] = 200
    risky["orders_last_90d"] = 0
    risky["negative_tickets_last_90d"] = 3
    risky["tickets_last_90d"] = 3
    risky["avg_ticket_sentiment"] = -0.6
    both = pd.concat([loyal, risky], ignore_index=True)
    from ml.churn.features import build_matrix

    raw = raw_scores(model.booster, build_matrix(both, model.spec))
    assert raw[1] > raw[0]
    pred = predict_frame(both, model, cfg)
    assert pred["churn_probability"].iat[1] > pred["churn_probability"].iat[0]
    assert "raises risk" in pred["top_reasons"].iat[1]
    assert "no order for 200 days" in pred["top_reasons"].iat[1]


def test_irrelevant_key_does_not_change_score(synthetic_wh):
    train_churn(synthetic_wh["as_of"])
    cfg = ChurnConfig.from_settings()
    model = registry.load_model(cfg.model_dir, registry.champion_version(cfg.model_dir))
    feats = data.load_features([synthetic_wh["as_of"]]).head(20)
    a = predict_frame(feats, model, cfg)["churn_probability"].to_numpy()
    b = predict_frame(feats.assign(customer_key="someone else"), model, cfg)["churn_probability"]
    np.testing.assert_array_equal(a, b.to_numpy())


def test_training_is_reproducible(synthetic_wh, monkeypatch, tmp_path):
    first = train_churn(synthetic_wh["as_of"])
    monkeypatch.setenv("C720_MODEL_DIR", str(tmp_path / "models2"))
    monkeypatch.setenv("C720_REPORTS_DIR", str(tmp_path / "reports2"))
    second = train_churn(synthetic_wh["as_of"])
    assert first["version"] == second["version"]  # version = date + hash of the model
    text1 = (tmp_path / "models" / "churn" / first["version"] / "model.txt").read_text()
    text2 = (tmp_path / "models2" / "churn" / second["version"] / "model.txt").read_text()
    assert text1 == text2
    assert first["metrics"] == second["metrics"]
    cfg = ChurnConfig.from_settings()
    feats = data.load_features([synthetic_wh["as_of"]])
    m1 = registry.load_model(tmp_path / "models" / "churn", first["version"])
    m2 = registry.load_model(cfg.model_dir, second["version"])
    np.testing.assert_array_equal(
        predict_frame(feats, m1, cfg)["churn_probability"],
        predict_frame(feats, m2, cfg)["churn_probability"],
    )
    # the real batch-scoring path: both models write the same scores and reasons
    cols = ["customer_key", "churn_probability", "risk_band", "top_reasons"]
    scored = []
    for models in (tmp_path / "models", tmp_path / "models2"):
        monkeypatch.setenv("C720_MODEL_DIR", str(models))
        summary = score_churn(synthetic_wh["as_of"])
        assert summary["model_version"] == first["version"] and summary["rows"] > 100
        scored.append(
            warehouse.query_df("select * from ml.churn_predictions order by customer_key")[cols]
        )
    pd.testing.assert_frame_equal(scored[0], scored[1])


def test_scoring_is_idempotent_and_keeps_history(synthetic_wh):
    as_of = synthetic_wh["as_of"]
    train_churn(as_of)
    s1 = score_churn(as_of)
    earlier = score_churn(pd.Timestamp("2026-05-31").date())
    s2 = score_churn(as_of)
    assert s1["rows"] == s2["rows"] > 100
    df = warehouse.query_df("select * from ml.churn_predictions")
    assert len(df) == s2["rows"] + earlier["rows"]  # re-run replaced only its own date
    assert df["churn_probability"].between(0, 1).all()
    assert set(df["risk_band"]) <= {"low", "medium", "high"}
    assert df.duplicated(["customer_key", "as_of_date"]).sum() == 0
    assert df["top_reasons"].str.count("; ").le(2).all()
    assert (df["model_version"] == s1["model_version"]).all()


def test_worse_challenger_does_not_replace_champion(synthetic_wh):
    good = train_churn(synthetic_wh["as_of"])
    weak = train_churn(synthetic_wh["as_of"], _cfg(num_boost_round=1, num_leaves=2))
    assert weak["version"] != good["version"]
    assert not weak["promoted"]
    assert weak["champion"] == good["version"]
    assert registry.champion_version(ChurnConfig.from_settings().model_dir) == good["version"]


def test_model_failing_gates_is_recorded_and_still_scores(synthetic_wh):
    s = train_churn(synthetic_wh["as_of"], _cfg(max_ece=-1.0))  # impossible gate
    assert not s["gates_passed"] and not s["promoted"] and s["champion"] is None
    assert s["gate_failures"]
    scored = score_churn(synthetic_wh["as_of"])
    assert scored["rows"] > 0
    assert scored["model_status"].startswith("no_champion")
    assert scored["model_passed_gates"] is False


def test_with_no_champion_the_model_that_lost_does_not_score(synthetic_wh):
    # a weak LightGBM loses to its best baseline; every gate is impossible, so neither
    # becomes champion: scores must come from the better of the two, not the newest
    s = train_churn(synthetic_wh["as_of"], _cfg(max_ece=-1.0, num_boost_round=1, num_leaves=2))
    assert s["champion"] is None and "baseline_version" in s, s
    scored = score_churn(synthetic_wh["as_of"])
    assert scored["model_version"] == s["baseline_version"]
    assert scored["model_status"].startswith("no_champion")


def test_scoring_without_a_model_says_what_to_do(synthetic_wh):
    with pytest.raises(FileNotFoundError, match="python -m ml churn train"):
        score_churn(synthetic_wh["as_of"])


def test_a_past_date_is_scored_with_the_champion_of_its_time(tmp_path, caplog):
    """A backfill of D after D + 7 scores D with the model that was champion for D, never
    with one trained on data after D (the replay of D then reproduces its first run)."""
    from datetime import date

    from ml.common import registry as common

    def register(version: str, as_of: date, at: str) -> None:
        common.write_json(
            tmp_path / version / "metadata.json",
            {"version": version, "as_of": as_of, "registered_at": at},
        )

    d = date(2024, 3, 1)
    register("20240301-aaaa", d, "2026-01-01T00:00:01")
    common.set_champion(tmp_path, "20240301-aaaa", "first")
    register("20240308-bbbb", date(2024, 3, 8), "2026-01-01T00:00:02")
    common.set_champion(tmp_path, "20240308-bbbb", "better")
    register("20240301-cccc", d, "2026-01-01T00:00:03")  # D retrained later, not promoted

    assert common.resolve_scoring_version(tmp_path) == ("20240308-bbbb", "champion")
    assert common.resolve_scoring_version(tmp_path, as_of=date(2024, 3, 9))[0] == "20240308-bbbb"
    assert common.resolve_scoring_version(tmp_path, as_of=date(2024, 3, 5)) == (
        "20240301-aaaa",
        "champion_as_of",
    )
    # older than every model: the current one, and the log says so
    assert common.resolve_scoring_version(tmp_path, as_of=date(2024, 2, 1))[0] == "20240308-bbbb"
    assert "no churn model trained for 2024-02-01 or before" in caplog.text


def test_training_on_a_sample_of_customers_keeps_their_every_cutoff(synthetic_wh):
    """C720_CHURN_TRAIN_CUSTOMERS bounds training memory at scale: the frame holds that
    many customers, the same ones on every run (seeded), each with all of its labelled
    cutoffs, so every split keeps whole customers; the model card says it was sampled."""
    from ml.churn.dataset import build_training_frame

    as_of = synthetic_wh["as_of"]
    full, info = build_training_frame(as_of, _cfg(train_customers=0))
    assert info["sampled_customers"] is None
    n = full["customer_key"].nunique() // 3
    sample, sample_info = build_training_frame(as_of, _cfg(train_customers=n))
    again, _ = build_training_frame(as_of, _cfg(train_customers=n))
    assert sample_info["sampled_customers"] == sample["customer_key"].nunique() == n
    pd.testing.assert_frame_equal(sample, again)
    kept = full[full["customer_key"].isin(set(sample["customer_key"]))]
    pd.testing.assert_frame_equal(sample, kept.reset_index(drop=True), check_like=True)
    s = train_churn(as_of, _cfg(train_customers=n))
    meta = registry.load_model(ChurnConfig.from_settings().model_dir, s["version"]).metadata
    assert meta["sampled_customers"] == n
