"""CLV labels: a customer's net revenue in the label window after a cutoff, from orders only.

- revenue = the sum of ``fct_orders.net_amount`` (purchases at their amount, cancelled and
  returned orders 0, credit notes negative: macros/purchases.sql) of the orders placed in
  (cutoff_at, cutoff_at + L], floored at 0 (a refund of an older purchase is not negative
  future value; the regression objective needs labels >= 0);
- eligible at a cutoff: as for churn (:func:`ml.churn.labels.label_history`): a purchase on
  or before it, the last one at most ``inactivity_days`` before it;
- the label window L is the horizon N when the history holds it; else shorter
  (:func:`label_window`) and the prediction is carried to N by BG/NBD (ml.clv.model).
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from customer720 import warehouse
from ml.churn.data import order_history
from ml.common.data import lit, require_table, ts

log = logging.getLogger(__name__)

MIN_LABELLED_CUTOFFS = 2


def first_order_day() -> dt.date | None:
    """The first day with an order in ``marts.fct_orders`` (None when there is none)."""
    require_table("marts", "fct_orders")
    value = warehouse.scalar("select min(ordered_at) from marts.fct_orders")
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def label_window(
    cutoffs: list[pd.Timestamp], as_of: dt.date, horizon_days: int, first_day: dt.date | None
) -> int:
    """The longest label window (days) up to ``horizon_days`` that the history allows.

    It must leave :data:`MIN_LABELLED_CUTOFFS` labelled cutoffs (cutoff + L <= as_of) and
    be at most half the history, so the oldest labelled cutoff still has as much history
    behind it as the window ahead (the demo: 365 days of history → 182 days, not 305 days
    ahead of a cutoff 60 days after the first order)."""
    as_of_ts = pd.Timestamp(as_of)
    older = sorted(c for c in cutoffs if c < as_of_ts)
    if len(older) < MIN_LABELLED_CUTOFFS:
        raise ValueError(
            f"need at least {MIN_LABELLED_CUTOFFS} feature cutoffs before {as_of} to train a "
            f"CLV model; ml.customer_features has {len(older)}. Build it with more history."
        )
    window = (as_of_ts - older[MIN_LABELLED_CUTOFFS - 1]).days  # the two oldest are labelled
    if first_day is not None:
        window = min(window, max((as_of_ts - pd.Timestamp(first_day)).days // 2, 1))
    return max(1, min(horizon_days, window))


def future_revenue(cutoffs: list[dt.date], window_days: int) -> pd.DataFrame:
    """customer_key, cutoff_date, revenue (net, floored at 0) and orders in (cutoff, + L]."""
    require_table("marts", "fct_orders")
    values = " union all ".join(
        f"select {lit(c)} as cutoff_date, {ts(c)} as cutoff_at, "
        f"{ts(c, int(window_days))} as window_end"
        for c in sorted(set(cutoffs))
    )
    df = warehouse.query_df(
        f"""
        with cutoffs as ({values})
        select o.customer_key, c.cutoff_date,
            sum(coalesce(o.net_amount, 0)) as revenue,
            sum(case when o.is_purchase then 1 else 0 end) as purchases
        from cutoffs c join marts.fct_orders o
          on o.ordered_at > c.cutoff_at and o.ordered_at <= c.window_end
        where o.customer_key is not null
        group by o.customer_key, c.cutoff_date
        """
    )
    df["customer_key"] = df["customer_key"].astype(str)
    df["cutoff_date"] = pd.to_datetime(df["cutoff_date"])
    # To the cent, as order_history's monetary: the same data gives the same labels.
    df["revenue"] = pd.to_numeric(df["revenue"]).astype(float).round(2).clip(lower=0.0)
    df["purchases"] = pd.to_numeric(df["purchases"]).astype("int64")
    return df


def eligible_history(cutoffs: list[dt.date], inactivity_days: int) -> pd.DataFrame:
    """:func:`ml.churn.data.order_history` rows of the customers eligible at each cutoff."""
    hist = order_history(cutoffs, 1)
    keep = (hist["n_orders"] > 0) & (hist["days_since_last_order"] <= inactivity_days)
    return hist[keep].drop(columns=["future_orders"]).reset_index(drop=True)


def clv_labels(cutoffs: list[dt.date], window_days: int, inactivity_days: int) -> pd.DataFrame:
    """Eligible (customer, cutoff) history rows with ``revenue`` in the label window."""
    hist = eligible_history(cutoffs, inactivity_days)
    future = future_revenue(cutoffs, window_days)
    out = hist.merge(future, on=["customer_key", "cutoff_date"], how="left")
    out["revenue"] = out["revenue"].fillna(0.0)
    out["purchases"] = out["purchases"].fillna(0).astype("int64")
    log.info(
        "CLV labels: %d eligible rows over %d cutoffs, window %d days, mean revenue %.2f",
        len(out),
        len(set(cutoffs)),
        window_days,
        out["revenue"].mean() if len(out) else float("nan"),
    )
    return out
