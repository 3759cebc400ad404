"""Feature matrix: types, categories fixed at training time, booleans, dates ignored."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.churn.features import build_matrix, infer_spec


def test_spec_and_matrix_types():
    train = pd.DataFrame(
        {
            "customer_key": ["a", "b", "c"],
            "cutoff_date": pd.to_datetime(["2026-01-01"] * 3),
            "recency_days": [1, 20, 300],
            "is_vip": [True, False, True],
            "country": ["DE", "FR", None],
            "first_order_date": pd.to_datetime(["2025-01-01"] * 3),
        }
    )
    spec = infer_spec(train)
    assert spec.names == ["recency_days", "is_vip", "country"]  # keys and dates excluded
    assert spec.kinds == {"recency_days": "numeric", "is_vip": "boolean", "country": "categorical"}
    assert spec.categories["country"] == ["DE", "FR"]
    later = pd.DataFrame(
        {
            "recency_days": [5],
            "is_vip": [False],
            "country": ["US"],
            "customer_key": ["z"],
            "cutoff_date": pd.to_datetime(["2026-02-01"]),
        }
    )
    X = build_matrix(later, spec)
    assert list(X.columns) == spec.names
    assert X["is_vip"].iat[0] == 0.0 and X["recency_days"].dtype == float
    assert list(X["country"].cat.categories) == ["DE", "FR"]  # same categories as training
    assert pd.isna(X["country"].iat[0])  # an unseen country becomes missing
    assert np.isfinite(X["recency_days"]).all()


def test_reason_wording():
    from ml.churn.features import FeatureSpec
    from ml.churn.reasons import describe

    spec = FeatureSpec(
        names=["recency_days", "weird_score", "is_vip", "country"],
        kinds={
            "recency_days": "numeric",
            "weird_score": "numeric",
            "is_vip": "boolean",
            "country": "categorical",
        },
        categories={"country": ["DE"]},
        medians={"recency_days": 30.0, "weird_score": 1.0, "is_vip": 0.0},
    )
    assert describe("recency_days", 120.0, spec, 0.4) == "no order for 120 days (raises risk)"
    assert describe("negative_ticket_count", 3.0, spec, 0.4) == "3 negative tickets (raises risk)"
    assert describe("late_delivery_count", 2.0, spec, 0.4) == "2 late deliveries (raises risk)"
    assert describe("weird_score", 5.0, spec, 0.1) == "weird_score high (raises risk)"
    assert describe("weird_score", 0.0, spec, -0.1) == "weird_score low (lowers risk)"
    assert describe("is_vip", 1.0, spec, -0.2) == "is_vip = yes (lowers risk)"
    assert describe("country", "DE", spec, 0.2) == "country = DE (raises risk)"
    assert describe("weird_score", float("nan"), spec, 0.2) == "weird_score unknown (raises risk)"
