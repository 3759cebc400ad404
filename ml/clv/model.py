"""The CLV model: LightGBM regression (Tweedie: many zeros, a long tail of big spenders) of
the net revenue in the label window, on ``ml.customer_features`` plus the probabilistic
model's view of the same row (BG/NBD expected purchases, Gamma-Gamma value, P(alive),
fitted per cutoff on the history up to it), and the step that carries a label-window
prediction to the horizon.
"""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.clv.baselines import Probabilistic, per_cutoff
from ml.common.config import ClvConfig

log = logging.getLogger(__name__)

# columns the probabilistic fit adds to each (customer, cutoff) row, all point in time
PROBABILISTIC = ("pm_expected_purchases", "pm_expected_value", "pm_p_alive", "pm_revenue")
OFFSET_FLOOR = 1.0  # currency units: log(0) would be -inf for a customer BG/NBD gives up on


def add_probabilistic(
    frame: pd.DataFrame, history: pd.DataFrame, window_days: int
) -> tuple[pd.DataFrame, dict[pd.Timestamp, Probabilistic]]:
    """``frame`` (rows keyed customer_key, cutoff_date) with the :data:`PROBABILISTIC`
    columns for ``window_days``, from one fit per cutoff over every eligible customer of
    ``history`` (unsupervised: a fit sees only the history up to its cutoff)."""
    fits = per_cutoff(history)
    parts = []
    for cutoff, fitted in fits.items():
        rows = history[history["cutoff_date"] == cutoff]
        purchases = fitted.purchases(window_days)
        parts.append(
            pd.DataFrame(
                {
                    "customer_key": rows["customer_key"].to_numpy(),
                    "cutoff_date": cutoff,
                    "pm_expected_purchases": purchases,
                    "pm_expected_value": fitted.spend,
                    "pm_p_alive": fitted.p_alive(),
                    "pm_revenue": purchases * fitted.spend,
                }
            )
        )
    extra = pd.concat(parts, ignore_index=True)
    out = frame.drop(columns=[c for c in PROBABILISTIC if c in frame]).merge(
        extra, on=["customer_key", "cutoff_date"], how="left"
    )
    return out, fits


def lgb_params(cfg: ClvConfig) -> dict:
    return {
        "objective": "tweedie",
        "tweedie_variance_power": cfg.tweedie_variance_power,
        "metric": "tweedie",
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction,
        "lambda_l2": cfg.lambda_l2,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": cfg.num_threads,
        "verbose": -1,
    }


def offset(X: pd.DataFrame) -> np.ndarray:
    """The log of the probabilistic model's revenue: the trees start from it (Tweedie's
    log link) and learn a correction, so where a row lies outside what training saw
    (older customers, longer gaps than any training cutoff had) the structural model
    still carries the prediction instead of the nearest leaf."""
    return np.log(X["pm_revenue"].to_numpy(float).clip(min=0.0) + OFFSET_FLOOR)


def fit_booster(
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    X_valid: pd.DataFrame,
    y_valid: np.ndarray,
    cfg: ClvConfig,
) -> lgb.Booster:
    """Trees chosen by early stopping on held-out customers (Tweedie deviance), then
    refitted on train and valid with that many trees; both from :func:`offset`."""
    if not np.any(y_train > 0):
        raise ValueError("no training row has revenue in its label window; cannot train CLV")
    cats = [c for c in X_train.columns if isinstance(X_train[c].dtype, pd.CategoricalDtype)]
    train_set = lgb.Dataset(
        X_train,
        label=y_train,
        init_score=offset(X_train),
        categorical_feature=cats or "auto",
        free_raw_data=False,
    )
    valid_set = lgb.Dataset(
        X_valid, label=y_valid, init_score=offset(X_valid), reference=train_set, free_raw_data=False
    )
    booster = lgb.train(
        lgb_params(cfg),
        train_set,
        num_boost_round=cfg.num_boost_round,
        valid_sets=[valid_set],
        valid_names=["valid"],
        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)],
    )
    trees = booster.best_iteration or booster.current_iteration()
    X_all = pd.concat([X_train, X_valid], ignore_index=True)
    y_all = np.concatenate([y_train, y_valid])
    all_set = lgb.Dataset(
        X_all, label=y_all, init_score=offset(X_all), categorical_feature=cats or "auto"
    )
    return lgb.train(lgb_params(cfg), all_set, num_boost_round=trees)


def predict(booster: lgb.Booster, X: pd.DataFrame) -> np.ndarray:
    raw = np.asarray(booster.predict(X, raw_score=True), dtype=float) + offset(X)
    return np.exp(raw).clip(min=0.0)


def to_horizon(
    prediction: np.ndarray, fitted: Probabilistic, label_days: int, horizon_days: int
) -> np.ndarray:
    """A label-window prediction carried to the horizon: × the customer's own BG/NBD ratio
    E[purchases in N] / E[purchases in L] (a customer likely gone buys little in the
    extra months; a steady one about N / L times as much). N / L where BG/NBD expects
    no purchase in L at all; unchanged when L = N."""
    if horizon_days == label_days:
        return prediction
    short, long = fitted.purchases(label_days), fitted.purchases(horizon_days)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(short > 1e-9, long / short, horizon_days / label_days)
    return prediction * ratio
