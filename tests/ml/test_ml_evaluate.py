"""Metric implementations on hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.common import evaluate as ev


def test_average_precision_at_k():
    # hits at ranks 1 and 3 of 3 relevant: (1/1 + 2/3) / min(3, 5)
    assert ev.average_precision_at_k([1, 2, 3, 4, 5], {1, 3, 6}, 5) == pytest.approx(
        (1 + 2 / 3) / 3
    )
    assert ev.average_precision_at_k([9, 8], {1}, 2) == 0.0
    assert ev.average_precision_at_k([1, 2], {1, 2}, 2) == pytest.approx(1.0)
    # k smaller than |relevant|: normalise by k
    assert ev.average_precision_at_k([5, 1], {1, 2, 3}, 2) == pytest.approx((1 / 2) / 2)


def test_ndcg_at_k():
    dcg = 1 / math.log2(2) + 1 / math.log2(4)
    idcg = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    assert ev.ndcg_at_k([1, 2, 3, 4, 5], {1, 3, 6}, 5) == pytest.approx(dcg / idcg)
    assert ev.ndcg_at_k([1, 3], {1, 3}, 2) == pytest.approx(1.0)
    assert ev.ndcg_at_k([2, 1], {1}, 2) == pytest.approx(1 / math.log2(3))


def test_recall_precision_and_means():
    assert ev.recall_at_k([1, 2, 3], {1, 3, 6}, 3) == pytest.approx(2 / 3)
    assert ev.precision_at_k([1, 2, 3], {1, 3, 6}, 3) == pytest.approx(2 / 3)
    m = ev.recommendation_metrics(
        {"a": [1, 2], "b": [3, 4]},
        {"a": {1}, "b": {9}, "c": set()},
        2,
        candidates={"a": {1, 2}, "b": {3, 4, 9}},
    )
    assert m["n_users"] == 2  # users without relevant items are skipped
    assert m["map_at_k"] == pytest.approx(0.5)
    assert m["recall_at_k"] == pytest.approx(0.5)
    assert m["candidate_recall"] == pytest.approx(1.0)


def test_lift_and_calibration():
    y = np.array([1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    score = np.linspace(1, 0, 10)
    assert ev.top_decile_lift(y, score) == pytest.approx(1.0 / 0.2)
    assert ev.expected_calibration_error(
        np.array([0, 0, 0, 0, 1]), np.full(5, 0.2)
    ) == pytest.approx(0)
    assert ev.expected_calibration_error(np.array([0, 0]), np.full(2, 0.9)) == pytest.approx(0.9)
    m = ev.classification_metrics(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]))
    assert m["roc_auc"] == 1.0 and 0 <= m["brier"] <= 1 and m["n"] == 4


def test_clv_metrics_prefer_the_expected_value_to_predicting_nothing():
    """Revenue that is 0 for most customers: predicting 0 for everyone wins MAE (its best
    is the median), but the deviance the CLV gates judge ranks the true expectation first."""
    rng = np.random.default_rng(3)
    expected = rng.gamma(0.5, 40.0, 20_000)  # each customer's expected revenue
    buys = rng.random(20_000) < 0.25
    y = np.where(buys, rng.exponential(expected / 0.25), 0.0)  # mean = expected
    truth = ev.regression_metrics(y, expected)
    nothing = ev.regression_metrics(y, np.zeros_like(y))
    assert nothing["mae"] < truth["mae"]
    assert truth["poisson_deviance"] < nothing["poisson_deviance"]
    assert truth["poisson_deviance"] < ev.regression_metrics(y, expected * 0.5)["poisson_deviance"]
    assert truth["poisson_deviance"] < ev.regression_metrics(y, expected * 2.0)["poisson_deviance"]
