"""Batch scoring: the champion churn model on the features at cutoff = as_of.

Writes ``ml.churn_predictions`` idempotently per as_of_date (other dates stay as history).
If no model has passed the sanity gates yet, the newest training run's best model on its
holdout is used and the summary says so (``model_status``) — scores are always produced when any model exists.
A baseline champion (LightGBM did not beat it, :mod:`ml.churn.baseline_model`) scores the
same rows from their order history; ``model_version`` names it (``baseline-<name>-…``).
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from ml.churn import labels, registry
from ml.churn.data import order_history
from ml.churn.features import build_matrix
from ml.churn.model import contributions, raw_scores, same_score
from ml.churn.reasons import confirm_raising, top_reasons
from ml.common import data, outputs
from ml.common.config import ChurnConfig

log = logging.getLogger(__name__)

PREDICTIONS_TABLE = "churn_predictions"


def risk_band(prob: np.ndarray, bands: tuple[float, float]) -> np.ndarray:
    low, high = bands
    return np.where(prob >= high, "high", np.where(prob >= low, "medium", "low"))


def predict_frame(
    features: pd.DataFrame, model: registry.LoadedModel, cfg: ChurnConfig
) -> pd.DataFrame:
    """customer_key, churn_probability, risk_band, top_reasons for feature rows."""
    X = build_matrix(features, model.spec)
    raw = raw_scores(model.booster, X)  # once: for the probability and the reasons' check
    prob = model.calibrator.predict(raw)
    contrib = contributions(model.booster, X, exact=cfg.exact_reasons, num_threads=cfg.num_threads)
    contrib = confirm_raising(
        lambda rows: raw_scores(model.booster, rows),
        X,
        model.spec,
        contrib,
        cfg.n_reasons,
        base=raw,
        same=same_score(model.booster),
    )
    reasons = top_reasons(contrib, X, model.spec, cfg.n_reasons)
    return pd.DataFrame(
        {
            "customer_key": features["customer_key"].astype(str).to_numpy(),
            "churn_probability": prob.astype(float),
            "risk_band": risk_band(prob, cfg.risk_bands),
            "top_reasons": reasons,
        }
    )


def predict_baseline(hist: pd.DataFrame, keys: pd.Series, model, cfg: ChurnConfig) -> pd.DataFrame:
    """The baseline champion's rows for ``keys``: probability, band, reasons in plain words
    from its own inputs (:class:`ml.churn.baseline_model.BaselineModel`)."""
    rows = hist.set_index(hist["customer_key"].astype(str)).loc[keys.astype(str).to_numpy()]
    prob = model.predict_proba(rows)
    return pd.DataFrame(
        {
            "customer_key": rows.index.to_numpy(),
            "churn_probability": prob.astype(float),
            "risk_band": risk_band(prob, cfg.risk_bands),
            "top_reasons": model.reasons(rows),
        }
    )


def score_churn(as_of: dt.date, cfg: ChurnConfig | None = None, version: str | None = None) -> dict:
    """Score every eligible customer at ``as_of`` and write ``ml.churn_predictions``."""
    cfg = cfg or ChurnConfig.from_settings()
    as_of = pd.Timestamp(as_of).date()
    status = "requested"
    if version is None:
        version, status = registry.resolve_scoring_version(cfg.model_dir, as_of=as_of)
    model = registry.load_any(cfg.model_dir, version)
    features = data.load_features([as_of])
    if features.empty:
        available = data.feature_cutoffs()
        raise data.MissingInputError(
            f"ml.customer_features has no rows for cutoff_date {as_of}; available cutoffs: "
            f"{[c.date().isoformat() for c in available[-3:]]} … Rebuild the features for this "
            "date (dbt) or pass one of those dates to --as-of."
        )
    history = order_history([as_of], cfg.horizon_days, labels.needs_engagement(cfg))
    hist = labels.label_history(history, cfg)
    eligible = set(hist.loc[hist["eligible"], "customer_key"])
    keep = [key in eligible for key in features["customer_key"].astype(object)]  # a set lookup
    features = features[np.asarray(keep, dtype=bool)].reset_index(drop=True)
    if isinstance(model, registry.LoadedBaseline):
        out = predict_baseline(hist, features["customer_key"], model.model, cfg)
    else:
        out = predict_frame(features, model, cfg)
    out.insert(1, "as_of_date", as_of)
    out["model_version"] = version
    out["scored_at"] = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None)).floor("s")
    out["as_of_date"] = pd.to_datetime(out["as_of_date"]).dt.date
    written = outputs.write(out, PREDICTIONS_TABLE, as_of)
    gates = model.metadata.get("gates", {})
    summary = {
        "as_of": as_of.isoformat(),
        "model_version": version,
        "model_status": status,
        "model_type": model.metadata.get("model_type"),
        "model_passed_gates": bool(gates.get("passed", False)),
        "rows": int(written),
        "risk_bands": {k: int(v) for k, v in out["risk_band"].value_counts().items()},
        "mean_probability": float(out["churn_probability"].mean()) if written else None,
    }
    if not summary["model_passed_gates"]:
        log.warning(
            "scored with model %s that FAILED its sanity gates: %s", version, gates.get("failures")
        )
    log.info("scored %d customers at %s with %s", written, as_of, version)
    return summary
