"""Batch scoring: the champion CLV model → ``ml.clv_predictions`` for ``as_of`` (replaced
per as_of_date; other dates stay as history).

Every customer eligible at ``as_of`` (as for churn) gets ``clv``: expected net revenue in
(as_of, as_of + N], N = ``C720_CLV_HORIZON_DAYS``, and ``expected_purchases`` (BG/NBD,
purchase days in the same N days). BG/NBD + Gamma-Gamma is fitted on today's histories
(no labels): the LightGBM model reads it as features and carries its label-window
prediction to N with it (:func:`ml.clv.model.to_horizon`).
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from ml.churn.features import build_matrix
from ml.clv import registry as clv_registry
from ml.clv.baselines import Probabilistic, historical_average
from ml.clv.labels import eligible_history
from ml.clv.model import predict, to_horizon
from ml.common import data, outputs, registry
from ml.common.config import ClvConfig

log = logging.getLogger(__name__)

PREDICTIONS_TABLE = "clv_predictions"


def predict_clv(
    model: clv_registry.LoadedClv, hist: pd.DataFrame, fitted: Probabilistic, horizon_days: int
) -> pd.DataFrame:
    """customer_key, clv, expected_purchases for ``hist``'s customers (one cutoff)."""
    out = pd.DataFrame(
        {
            "customer_key": hist["customer_key"].astype(str).to_numpy(),
            "expected_purchases": fitted.purchases(horizon_days),
        }
    )
    if model.method == "historical_average":
        out["clv"] = historical_average(hist, horizon_days)
        return out
    if model.method == "bgnbd_gamma_gamma":
        out["clv"] = fitted.revenue(horizon_days)
        return out
    label_days = model.label_days
    purchases = fitted.purchases(label_days)
    rows = out[["customer_key"]].assign(
        cutoff_date=hist["cutoff_date"].to_numpy(),
        pm_expected_purchases=purchases,
        pm_expected_value=fitted.spend,
        pm_p_alive=fitted.p_alive(),
        pm_revenue=purchases * fitted.spend,
    )
    features = data.load_features([hist["cutoff_date"].iloc[0]])
    frame = rows.merge(features, on=["customer_key", "cutoff_date"], how="left")
    missing = frame[model.spec.names[0]].isna().sum() if model.spec.names else 0
    if missing == len(frame):
        raise data.MissingInputError(
            "ml.customer_features has no rows for the customers to score; rebuild it (dbt)"
        )
    short = predict(model.booster, build_matrix(frame, model.spec))
    out["clv"] = to_horizon(short, fitted, label_days, horizon_days)
    return out


def score_clv(as_of: dt.date, cfg: ClvConfig | None = None, version: str | None = None) -> dict:
    """Score every eligible customer at ``as_of`` and write ``ml.clv_predictions``."""
    cfg = cfg or ClvConfig.from_settings()
    as_of = pd.Timestamp(as_of).date()
    status = "requested"
    if version is None:
        version, status = registry.resolve_scoring_version(cfg.model_dir, "clv", as_of=as_of)
    model = clv_registry.load(cfg.model_dir, version)
    if pd.Timestamp(as_of) not in set(data.feature_cutoffs()):
        raise data.MissingInputError(
            f"ml.customer_features has no rows for cutoff_date {as_of}; rebuild the features "
            "for this date (dbt) or pass a date it has to --as-of."
        )
    hist = eligible_history([as_of], cfg.inactivity_days)
    if hist.empty:
        raise data.MissingInputError(f"no customer with a purchase on or before {as_of} to score")
    fitted = Probabilistic(hist)
    out = predict_clv(model, hist, fitted, cfg.horizon_days)
    out["clv"] = np.round(out["clv"].astype(float), 2)
    out.insert(1, "as_of_date", as_of)
    out["horizon_days"] = int(cfg.horizon_days)
    out["model_version"] = version
    out["scored_at"] = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None)).floor("s")
    out["as_of_date"] = pd.to_datetime(out["as_of_date"]).dt.date
    written = outputs.write(out, PREDICTIONS_TABLE, as_of)
    summary = {
        "as_of": as_of.isoformat(),
        "model_version": version,
        "model_status": status,
        "method": model.method,
        "horizon_days": cfg.horizon_days,
        "label_days": int(model.metadata.get("label_days", cfg.horizon_days)),
        "rows": int(written),
        "total_clv": float(out["clv"].sum()),
        "mean_clv": float(out["clv"].mean()) if written else None,
    }
    log.info(
        "CLV: scored %d customers at %s with %s (%s), total %.0f over %d days",
        written,
        as_of,
        version,
        model.method,
        summary["total_clv"],
        cfg.horizon_days,
    )
    return summary
