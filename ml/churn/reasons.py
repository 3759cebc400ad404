"""Readable churn reasons from LightGBM contributions (``pred_contrib=True``).

Known features get a sentence ("no order for 120 days"); any other feature falls back to
"<name> high/low (raises risk)" relative to its training median, or "<name> = value" for
categories. Each reason ends with the direction: "(raises risk)" or "(lowers risk)".

"Raises risk" is checked for the customer, not only read off SHAP: a SHAP value credits a
feature against the model's average path, so a value most customers share ("0 % of orders
cancelled", the usual CSAT answer) can carry a positive share without making this customer
any riskier than a typical one - and reads as nonsense to a CRM user. A numeric reason is
named as raising risk only when putting the customer's value back to the training median
lowers their score (:func:`confirm_raising`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ml.churn.features import FeatureSpec


def _n(v: float) -> str:
    return f"{v:,.0f}" if abs(v - round(v)) < 1e-9 else f"{v:,.1f}"


def _count(v: float, word: str) -> str:
    return f"{_n(v)} {word}" + ("" if abs(v - 1) < 1e-9 else "s")


READABLE: dict[str, Callable[[float], str]] = {
    "recency_days": lambda v: f"no order for {_count(v, 'day')}",
    "days_since_last_order": lambda v: f"no order for {_count(v, 'day')}",
    "frequency": lambda v: f"{_count(v, 'order')} in total",
    "monetary": lambda v: f"total spend {_n(v)}",
    "orders_last_90d": lambda v: f"{_count(v, 'order')} in the last 90 days",
    "tickets_last_90d": lambda v: f"{_count(v, 'support ticket')} in 90 days",
    "negative_tickets_last_90d": lambda v: f"{_count(v, 'negative ticket')} in 90 days",
    "avg_ticket_sentiment": lambda v: f"average ticket sentiment {v:.2f}",
    "emails_clicked_last_90d": lambda v: f"{_count(v, 'email click')} in 90 days",
    "sessions_last_30d": lambda v: f"{_count(v, 'web session')} in 30 days",
    "tenure_days": lambda v: f"customer for {_count(v, 'day')}",
    # names produced by dbt_project/models/ml/customer_features.sql
    "days_since_first_order": lambda v: f"first order {_count(v, 'day')} ago",
    "orders_last_30d": lambda v: f"{_count(v, 'order')} in the last 30 days",
    "orders_prior_90d": lambda v: f"{_count(v, 'order')} in the 90 days before that",
    "order_trend_90d": lambda v: f"order trend {v:+,.0f} vs the previous 90 days",
    "revenue_last_90d": lambda v: f"spend {_n(v)} in the last 90 days",
    "revenue_trend_90d": lambda v: f"spend trend {v:+,.0f} vs the previous 90 days",
    "avg_order_value": lambda v: f"average order value {_n(v)}",
    "return_rate": lambda v: f"{v:.0%} of orders returned",
    "cancel_rate": lambda v: f"{v:.0%} of orders cancelled",
    "late_delivery_count": lambda v: f"{_count(v, 'late delivery')}".replace(
        "deliverys", "deliveries"
    ),
    "ticket_count": lambda v: f"{_count(v, 'support ticket')} in total",
    "negative_ticket_count": lambda v: f"{_count(v, 'negative ticket')}",
    "open_ticket_count": lambda v: f"{_count(v, 'open ticket')}",
    "last_nps_score": lambda v: f"last NPS answer {_n(v)}",
    "last_csat_score": lambda v: f"last CSAT answer {_n(v)}",
    "emails_opened_90d": lambda v: f"{_count(v, 'email')} opened in 90 days",
    "emails_clicked_90d": lambda v: f"{_count(v, 'email click')} in 90 days",
    "is_unsubscribed": lambda v: "unsubscribed from emails" if v else "subscribed to emails",
    "marketing_consent": lambda v: "marketing consent given" if v else "no marketing consent",
    "sessions_prior_30d": lambda v: f"{_count(v, 'web session')} in the 30 days before that",
    "product_views_last_30d": lambda v: f"{_count(v, 'product view')} in 30 days",
    "carts_last_30d": lambda v: f"{_count(v, 'cart')} in 30 days",
    "days_since_last_session": lambda v: f"no web visit for {_count(v, 'day')}",
    "top_category_share": lambda v: f"{v:.0%} of spend in one category",
    # derived in ml/features.py
    "recency_share_of_life": lambda v: f"silent for {v:.0%} of the time since the first order",
    "orders_per_30d": lambda v: f"{v:.1f} orders a month on average",
    "recency_over_mean_gap": lambda v: f"silent {v:.1f}× the usual gap between orders",
    "email_open_rate_90d": lambda v: f"opened {v:.0%} of emails in 90 days",
    "session_trend_30d": lambda v: f"web visits ×{v:.1f} vs the 30 days before",
    "category_count": lambda v: f"bought in {_count(v, 'category')}".replace(
        "categorys", "categories"
    ),
}


def confirm_raising(
    raw_score: Callable[[pd.DataFrame], np.ndarray],
    X: pd.DataFrame,
    spec: FeatureSpec,
    contrib: pd.DataFrame,
    n: int,
    base: np.ndarray | None = None,
    same: Callable[[int, np.ndarray, float], np.ndarray] | None = None,
) -> pd.DataFrame:
    """``contrib`` with the positive contributions that do not raise this customer's risk
    set to 0: of each row's 2·n strongest positive numeric drivers, those whose value, put
    back to the training median, does not lower the row's score; every weaker positive
    numeric driver is set to 0 too, so a reason named as raising risk was always checked.
    Categorical drivers keep their SHAP sign (there is no typical value to compare with).
    ``raw_score`` is the model's score of a feature matrix (one call per checked feature,
    on the rows where it is a candidate); ``base`` its scores of ``X`` if already known.
    ``same(j, x, value)`` (optional, e.g. :func:`ml.churn.model.same_score`) marks the
    values x of feature j that score exactly as ``value`` would: those rows are not lower
    without scoring them again."""
    values = contrib.to_numpy(float).copy()
    n_rows, n_features = values.shape
    if n_rows == 0 or n_features == 0:
        return contrib
    numeric = np.array([spec.kinds.get(c) != "categorical" for c in contrib.columns])
    positive = (values > 0) & numeric[None, :]
    k = min(2 * n, n_features)
    ranked = np.argsort(-np.where(positive, values, 0.0), axis=1, kind="stable")[:, :k]
    candidate = np.zeros_like(positive)
    np.put_along_axis(candidate, ranked, True, axis=1)
    candidate &= positive
    values[positive & ~candidate] = 0.0
    for j, name in enumerate(contrib.columns):
        rows = np.flatnonzero(candidate[:, j])
        typical = spec.medians.get(name)
        if typical is None:
            continue
        if same is not None and len(rows):
            unchanged = same(j, X.iloc[rows, j].to_numpy(dtype=float), typical)
            values[rows[unchanged], j] = 0.0
            rows = rows[~unchanged]
        if len(rows) == 0:
            continue
        if base is None:
            base = np.asarray(raw_score(X), float)
        moved = X.iloc[rows].copy()
        moved.iloc[:, j] = typical
        lower = np.asarray(raw_score(moved), float) < base[rows] - 1e-12
        values[rows[~lower], j] = 0.0
    return pd.DataFrame(values, columns=contrib.columns, index=contrib.index)


def describe(name: str, value, spec: FeatureSpec, contribution: float) -> str:
    direction = "raises risk" if contribution > 0 else "lowers risk"
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return f"{name} unknown ({direction})"
    if spec.kinds.get(name) == "categorical":
        return f"{name} = {value} ({direction})"
    value = float(value)
    if spec.kinds.get(name) == "boolean":
        return f"{name} = {'yes' if value else 'no'} ({direction})"
    if name in READABLE:
        return f"{READABLE[name](value)} ({direction})"
    level = "high" if value > spec.medians.get(name, 0.0) else "low"
    return f"{name} {level} ({direction})"


def top_reasons(contrib: pd.DataFrame, X: pd.DataFrame, spec: FeatureSpec, n: int = 3) -> list[str]:
    """For each row: the n strongest risk-raising drivers, "; "-joined.

    If a row has fewer than n positive contributions, the remaining slots are not padded
    with risk-lowering ones unless the row has no risk-raising driver at all (then the
    strongest protective drivers are shown instead). Ties keep the feature order.
    """
    values = contrib.to_numpy(float)
    n_rows, n_features = values.shape
    if n_rows == 0 or n_features == 0:
        return [""] * n_rows
    n = min(n, n_features)
    top = np.argsort(-values, axis=1, kind="stable")[:, :n]
    top_values = np.take_along_axis(values, top, axis=1)
    use = top_values > 0
    none = ~use[:, 0]
    if none.any():  # no risk-raising driver: the strongest protective ones
        top[none] = np.argsort(values[none], axis=1, kind="stable")[:, :n]
        use[none] = True
    names = list(contrib.columns)
    texts = np.full((n_rows, n), "", dtype=object)
    for j in range(n_features):  # one sentence per distinct (value, direction) of a feature
        picked = (top == j) & use
        if not picked.any():
            continue
        rows, slots = np.nonzero(picked)
        column = X.iloc[:, j]
        codes, uniques = pd.factorize(column.iloc[rows], use_na_sentinel=True)
        raises = values[rows, j] > 0
        pattern = (codes + 1) * 2 + raises  # code -1 (missing) → 0 or 1
        _, first, inverse = np.unique(pattern, return_index=True, return_inverse=True)
        words = np.array(
            [
                describe(
                    names[j],
                    None if codes[k] < 0 else uniques[codes[k]],
                    spec,
                    values[rows[k], j],
                )
                for k in first
            ],
            dtype=object,
        )
        texts[rows, slots] = words[inverse.reshape(-1)]
    out = texts[:, 0].copy()
    for slot in range(1, n):  # used slots come first in a row (sorted by strength)
        more = use[:, slot]
        out[more] = out[more] + "; " + texts[more, slot]
    return out.tolist()
