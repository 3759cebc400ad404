"""Baselines every churn model must beat on the same holdout, every run.

- recency rule: score = days since the last order (longer = more likely to churn);
- RFM logistic regression: log recency, frequency, monetary → logistic regression;
- BG/NBD: expected purchases in the horizon (fewer = more likely to churn), fitted per
  cutoff on the purchase history up to that cutoff (no labels used).

All inputs come from :func:`ml.churn.data.order_history`, so baselines do not depend on which
features the dbt model happens to provide.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.churn import bgnbd
from ml.common.evaluate import classification_metrics, ranking_metrics

log = logging.getLogger(__name__)

DAYS_PER_WEEK = 7.0


def _rfm(history: pd.DataFrame) -> np.ndarray:
    return np.column_stack(
        [
            np.log1p(history["days_since_last_order"].to_numpy(float)),
            np.log1p(history["n_orders"].to_numpy(float)),
            np.log1p(history["monetary"].clip(lower=0).to_numpy(float)),
        ]
    )


def recency_scores(history: pd.DataFrame) -> np.ndarray:
    return history["days_since_last_order"].to_numpy(float)


def fit_rfm_logistic(train: pd.DataFrame, seed: int = 42):
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, random_state=seed))
    model.fit(_rfm(train), train["churned"].to_numpy(int))
    return model


def rfm_probabilities(model, history: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(_rfm(history))[:, 1]


def bgnbd_expected(history: pd.DataFrame, horizon_days: int) -> tuple[np.ndarray, dict]:
    """Expected purchases in the horizon, BG/NBD fitted on these rows' own histories."""
    x = history["frequency"].to_numpy(float)
    t_x = history["recency_span_days"].to_numpy(float) / DAYS_PER_WEEK
    T = history["age_days"].to_numpy(float) / DAYS_PER_WEEK
    params = bgnbd.fit(x, t_x, T)
    expected = bgnbd.expected_purchases(params, horizon_days / DAYS_PER_WEEK, x, t_x, T)
    return expected, params.__dict__


def evaluate_baselines(
    train: pd.DataFrame, holdout: pd.DataFrame, horizon_days: int, seed: int = 42
) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Metrics of each baseline on ``holdout`` (rows of labelled order history)."""
    y = holdout["churned"].to_numpy(int)
    metrics: dict[str, dict] = {}
    scores: dict[str, np.ndarray] = {}

    scores["recency_rule"] = recency_scores(holdout)
    metrics["recency_rule"] = ranking_metrics(y, scores["recency_rule"])

    rfm = fit_rfm_logistic(train, seed)
    scores["rfm_logistic"] = rfm_probabilities(rfm, holdout)
    metrics["rfm_logistic"] = classification_metrics(y, scores["rfm_logistic"])

    try:
        expected, params = bgnbd_expected(holdout, horizon_days)
        scores["bgnbd"] = -expected  # fewer expected purchases = higher churn score
        metrics["bgnbd"] = ranking_metrics(y, scores["bgnbd"])
        metrics["bgnbd"]["params_weeks"] = params
    except Exception as exc:  # a failed optimisation must not stop training
        log.warning("BG/NBD baseline failed: %s", exc)
    for name, m in metrics.items():
        log.info("baseline %-13s ROC-AUC %.4f  PR-AUC %.4f", name, m["roc_auc"], m["pr_auc"])
    return metrics, scores
