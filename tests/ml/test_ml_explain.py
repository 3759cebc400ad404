"""Derived features, contributions and reasons, and the oracle's absence without truth."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.churn.features import DERIVED, FeatureSpec, add_derived, build_matrix, infer_spec
from ml.churn.model import contributions, same_score
from ml.churn.reasons import confirm_raising, top_reasons
from ml.common.oracle import oracle_metrics


def _booster(seed: int = 0, **params) -> tuple[lgb.Booster, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(600, 5)), columns=[f"f{i}" for i in range(5)])
    X.loc[rng.random(600) < 0.1, "f3"] = np.nan
    X["f4"] = np.where(rng.random(600) < 0.3, 0.0, X["f4"].round(1))  # zeros and ties
    X["cat"] = pd.Categorical(rng.choice(["a", "b", "c"], 600))
    X.loc[rng.random(600) < 0.05, "cat"] = np.nan
    y = (
        X["f0"] + 0.5 * X["f1"].fillna(0) + X["f3"].fillna(1) + (X["cat"] == "b") + X["f4"]
        + rng.normal(0, 1, 600) > 0.5
    )  # fmt: skip
    params = {"objective": "binary", "num_leaves": 7, "verbosity": -1, "seed": 1,
              "deterministic": True, "num_threads": 1, "min_data_per_group": 5,
              "cat_smooth": 1, **params}  # fmt: skip
    return lgb.train(params, lgb.Dataset(X, y.astype(int)), num_boost_round=30), X


def test_exact_contributions_are_lightgbm_shap_values():
    """The per-tree deduplicated TreeSHAP equals LightGBM's pred_contrib on every row,
    including missing values (also where training had none), zeros treated as missing
    and unknown categories."""
    for params in ({}, {"zero_as_missing": True}, {"max_cat_to_onehot": 8}):
        booster, X = _booster(**params)
        rows = X.copy()
        rows.loc[:49, "cat"] = np.nan  # unknown categories become missing (build_matrix)
        rows.loc[:9, "f0"] = np.nan  # never missing in training
        ours = contributions(booster, rows)
        ref = booster.predict(rows, pred_contrib=True)[:, :-1]
        assert list(ours.columns) == list(X.columns) and ours.index.equals(rows.index)
        np.testing.assert_allclose(ours.to_numpy(), ref, rtol=0, atol=1e-12)
        lgb_ref = contributions(booster, rows, method="pred_contrib")
        np.testing.assert_allclose(lgb_ref.to_numpy(), ref, rtol=0, atol=0)


def test_reasons_name_the_strongest_shap_drivers():
    booster, X = _booster()
    spec = infer_spec(X)
    shap = booster.predict(X, pred_contrib=True)[:, :-1]
    reasons = top_reasons(contributions(booster, X), X, spec, n=3)
    for i in range(len(X)):
        order = np.argsort(-shap[i], kind="stable")
        raising = [j for j in order[:3] if shap[i, j] > 0]
        expected = raising or list(np.argsort(shap[i], kind="stable")[:3])
        parts = reasons[i].split("; ")
        assert len(parts) == len(expected)
        for part, j in zip(parts, expected, strict=True):
            assert part.startswith(X.columns[j])  # generic wording: "<feature> high/low/= …"
            assert part.endswith("(raises risk)" if shap[i, j] > 0 else "(lowers risk)")


def test_path_contributions_add_up_to_the_raw_score():
    booster, X = _booster()
    fast = contributions(booster, X, exact=False)
    exact = contributions(booster, X, exact=True)
    assert list(fast.columns) == list(X.columns) and fast.index.equals(X.index)
    raw = booster.predict(X, raw_score=True)
    bias = raw - fast.sum(axis=1).to_numpy()
    np.testing.assert_allclose(bias, bias[0], atol=1e-5)  # one constant: the root values
    shap_bias = raw - exact.sum(axis=1).to_numpy()  # also constant (count-weighted means)
    np.testing.assert_allclose(shap_bias, shap_bias[0], atol=1e-5)
    # the strongest driver agrees with TreeSHAP for most rows on this simple model
    agree = np.argmax(fast.to_numpy(), axis=1) == np.argmax(exact.to_numpy(), axis=1)
    assert agree.mean() > 0.8


def test_derived_features_are_added_and_rebuilt_the_same_way():
    feats = pd.DataFrame(
        {
            "customer_key": ["a", "b", "c"],
            "cutoff_date": pd.to_datetime(["2026-01-01"] * 3),
            "recency_days": [10, 100, 0],
            "days_since_first_order": [100, 100, 0],
            "frequency": [5, 1, 1],
        }
    )
    out = add_derived(feats)
    assert {"recency_share_of_life", "orders_per_30d", "recency_over_mean_gap"} <= set(out)
    assert "email_open_rate_90d" not in out  # its inputs are absent
    assert out["recency_share_of_life"].tolist() == [0.1, 1.0, 0.0]
    assert out["recency_over_mean_gap"].iat[0] == round(10 / (90 / 4), 6)
    assert np.isnan(out["recency_over_mean_gap"].iat[1])  # one order: no gap yet
    spec = infer_spec(feats.drop(columns=["customer_key", "cutoff_date"]))
    assert set(DERIVED) & set(spec.names) == {
        "recency_share_of_life",
        "orders_per_30d",
        "recency_over_mean_gap",
    }
    X = build_matrix(feats, spec)  # the raw feature rows, as at scoring time
    assert list(X.columns) == spec.names
    pd.testing.assert_series_equal(
        X["orders_per_30d"], out["orders_per_30d"].astype(float), check_names=False
    )


def test_a_model_trained_before_derived_features_still_scores():
    feats = pd.DataFrame({"recency_days": [1, 2], "days_since_first_order": [5, 6]})
    old = FeatureSpec(names=["recency_days"], kinds={"recency_days": "numeric"})
    assert list(build_matrix(feats, old).columns) == ["recency_days"]


def test_no_oracle_without_ground_truth(local_dir):
    holdout = pd.DataFrame(
        {
            "customer_key": ["a", "b"],
            "cutoff_date": pd.to_datetime(["2026-01-01"] * 2),
            "churned": [0, 1],
        }  # fmt: skip
    )
    assert oracle_metrics(holdout, np.array([0.2, 0.8]), 90) is None


def test_a_reason_named_as_raising_risk_raises_it_for_this_customer():
    """Every numeric driver left positive (so named "raises risk") lowers the customer's
    score when put back to the training median; a value equal to the median never is one,
    though SHAP can give it a positive share (the "0 % of orders cancelled" reason)."""
    booster, X = _booster()
    spec = infer_spec(X)
    shap = contributions(booster, X)
    kept = confirm_raising(booster.predict, X, spec, shap, n=3)
    base = booster.predict(X)
    at_median_but_positive = 0
    for name in X.columns:
        if spec.kinds[name] == "categorical":
            np.testing.assert_array_equal(kept[name], shap[name])
            continue
        typical = X.copy()
        typical[name] = spec.medians[name]
        lower = booster.predict(typical) < base
        shown = kept[name].to_numpy() > 0
        assert not (shown & ~lower).any(), name
        assert ((kept[name] == shap[name]) | (kept[name] == 0)).all()  # only ever cleared
        at_median_but_positive += int(((X[name] == spec.medians[name]) & (shap[name] > 0)).sum())
    assert at_median_but_positive > 0  # the case this guards against occurs here
    reasons = top_reasons(kept, X, spec, n=3)
    assert all(r for r in reasons)  # every row still gets reasons


def test_skipping_rows_whose_splits_do_not_move_changes_nothing():
    """confirm_raising with the scores it already has and ``same_score`` (rows every split
    on the feature sends the median's way are not scored again) keeps the same drivers."""
    booster, X = _booster()
    spec = infer_spec(X)
    shap = contributions(booster, X)
    plain = confirm_raising(booster.predict, X, spec, shap, n=3)
    fast = confirm_raising(
        booster.predict, X, spec, shap, n=3, base=booster.predict(X), same=same_score(booster)
    )
    pd.testing.assert_frame_equal(plain, fast)
