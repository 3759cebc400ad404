"""Realised quality of scores issued a horizon ago, per model version and issue week.

A week (Monday to Sunday of the scores' ``as_of_date``) is judged once the outcome window
of its last day has closed (Sunday + horizon <= the run's date): churn scores against the
churn label of :mod:`ml.churn.labels` (horizon ``C720_CHURN_HORIZON_DAYS``), recommendation
lists against the products bought in the 7 days after they were issued (the recommender's
own label, :mod:`ml.recs.weeks`). The metrics are the training evaluation's
(:mod:`ml.common.evaluate`): ROC-AUC (with a 95 % bootstrap interval over customers),
Brier score and ECE for churn; MAP@10 for recommendations.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

import numpy as np
import pandas as pd

from customer720 import warehouse
from ml.churn import labels
from ml.churn.data import order_history
from ml.common.config import ChurnConfig, RecConfig
from ml.common.data import lit, ts
from ml.common.evaluate import auc_interval, classification_metrics, recommendation_metrics

log = logging.getLogger(__name__)


def week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def closed_weeks(issued: Iterable[dt.date], horizon_days: int, as_of: dt.date) -> list[dt.date]:
    """Mondays of the weeks of ``issued`` whose every day's outcome window closed by as_of."""
    weeks = {week_start(d) for d in issued}
    return sorted(w for w in weeks if w + dt.timedelta(days=6 + horizon_days) <= as_of)


def issue_dates(table: str) -> list[dt.date]:
    if not warehouse.table_exists("ml", table):
        return []
    frame = warehouse.query_df(f"select distinct as_of_date from ml.{table}")
    return sorted(pd.to_datetime(frame["as_of_date"]).dt.date)


def _days(week: dt.date, issued: list[dt.date]) -> list[dt.date]:
    return [d for d in issued if week <= d <= week + dt.timedelta(days=6)]


def churn_week(week: dt.date, issued: list[dt.date], cfg: ChurnConfig) -> list[dict]:
    """Realised ROC-AUC, Brier and ECE of the churn scores issued in ``week``, per version."""
    days = _days(week, issued)
    preds = warehouse.query_df(
        "select customer_key, as_of_date, churn_probability, model_version "
        f"from ml.churn_predictions where as_of_date >= {lit(days[0])} "
        f"and as_of_date <= {lit(days[-1])}"
    )
    preds["customer_key"] = preds["customer_key"].astype(str)
    preds["as_of_date"] = pd.to_datetime(preds["as_of_date"])
    hist = labels.label_history(
        order_history(days, cfg.horizon_days, labels.needs_engagement(cfg)), cfg
    )
    hist = hist[["customer_key", "cutoff_date", "churned"]].rename(
        columns={"cutoff_date": "as_of_date"}
    )
    hist["as_of_date"] = pd.to_datetime(hist["as_of_date"])
    # inner: a key merged away since the score was issued has no label under its old key
    rows = preds.merge(hist, on=["customer_key", "as_of_date"], how="inner")
    if len(rows) < len(preds):
        log.info("churn monitoring %s: %d scores without a label row", week, len(preds) - len(rows))
    out = []
    for version, g in rows.groupby("model_version"):
        y, p = g["churned"].to_numpy(int), g["churn_probability"].to_numpy(float)
        m = classification_metrics(y, p)
        lo, hi = auc_interval(y, p, g["customer_key"].to_numpy(), seed=cfg.seed)
        base = {
            "model": "churn",
            "model_version": str(version),
            "issue_week": week,
            "issued_from": g["as_of_date"].min().date(),
            "issued_to": g["as_of_date"].max().date(),
            "n_rows": int(len(g)),
            "n_positives": int(y.sum()),
        }
        out.append(base | {"metric": "roc_auc", "value": m["roc_auc"], "ci_low": lo, "ci_high": hi})
        out.append(base | {"metric": "brier", "value": m["brier"]})
        out.append(base | {"metric": "ece", "value": m["ece"]})
    return out


def recommendation_week(week: dt.date, issued: list[dt.date], cfg: RecConfig) -> list[dict]:
    """Realised MAP@k of the lists issued in ``week`` (customers who bought in the 7 days
    after a list, each (customer, issue day) a user), per model version."""
    per_version: dict[str, dict] = {}
    for day in _days(week, issued):
        lists = warehouse.query_df(
            "select customer_key, rank, product_id, model_version "
            f"from ml.product_recommendations where as_of_date = {lit(day)} and rank <= {cfg.k} "
            "order by customer_key, rank"
        )
        bought = warehouse.query_df(
            "select distinct customer_key, product_id from marts.fct_order_items "
            "where customer_key is not null and product_id is not null "
            f"and coalesce(is_purchase, false) and ordered_at > {ts(day)} "
            f"and ordered_at <= {ts(day, cfg.horizon_days)}"
        )
        version_of = dict(
            zip(lists["customer_key"].astype(str), lists["model_version"].astype(str), strict=True)
        )
        for (version, key), g in lists.groupby(["model_version", "customer_key"]):
            acc = per_version.setdefault(str(version), {"recs": {}, "truth": {}, "days": set()})
            acc["recs"][(str(key), day)] = g["product_id"].astype(str).tolist()
            acc["days"].add(day)
        for key, g in bought.groupby("customer_key"):
            version = version_of.get(str(key))
            if version is None:
                continue  # no list was issued to them that day
            per_version[version]["truth"][(str(key), day)] = set(g["product_id"].astype(str))
    out = []
    for version, acc in per_version.items():
        m = recommendation_metrics(acc["recs"], acc["truth"], cfg.k)
        out.append(
            {
                "model": "recommendations",
                "model_version": version,
                "issue_week": week,
                "issued_from": min(acc["days"]),
                "issued_to": max(acc["days"]),
                "metric": f"map_at_{cfg.k}",
                "value": m["map_at_k"],
                "n_rows": int(len(acc["recs"])),
                "n_positives": int(m["n_users"]),
            }
        )
    return out


def nan_to_none(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
