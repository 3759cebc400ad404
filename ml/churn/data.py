"""The churn model's order history per (customer, cutoff), in portable SQL (DuckDB,
Postgres and Spark). Labels, eligibility and the baselines read it; never the features.

Time convention: see :mod:`ml.common.data` (a cutoff date D is the instant D 00:00:00).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import pandas as pd

from customer720 import warehouse
from ml.common.data import dates, lit, require_table, ts

# Engagement in a label window: a web session or an email open/click (fct_touchpoints).
ENGAGED = """
        select c.cutoff_date, t.customer_key, count(*) as future_engagements
        from cutoffs c join marts.fct_touchpoints t
          on t.occurred_at > c.cutoff_at and t.occurred_at <= c.horizon_end
        where t.touchpoint_type in ('web_session', 'email_open', 'email_click')
          and t.customer_key is not null
        group by c.cutoff_date, t.customer_key"""
# No rows, typed by the columns it copies (no text type is spelt the same in all engines).
NO_ENGAGEMENT = """
        select c.cutoff_date, o.customer_key, cast(0 as bigint) as future_engagements
        from cutoffs c join orders o on 1 = 0"""


COLUMNS = [
    "customer_key",
    "cutoff_date",
    "n_orders",
    "monetary",
    "first_order_date",
    "last_order_date",
    "frequency",
    "recency_span_days",
    "age_days",
    "days_since_last_order",
    "future_orders",
]


def order_history(
    cutoffs: Iterable[dt.date], horizon_days: int, engagement: bool = False
) -> pd.DataFrame:
    """Per (customer, cutoff): what the orders say up to the cutoff and in the horizon after.

    Only purchases count (``fct_orders.is_purchase``: not cancelled, not returned, no
    credit note - macros/purchases.sql). History = ordered_at <= cutoff_at, each order as
    known at the cutoff (as in ``ml.customer_features``: a cancellation or return counts
    only when the order's ``updated_at`` <= cutoff_at), so a past date scores the same
    after later changes; the horizon is (cutoff_at, cutoff_at + horizon_days]. Columns: customer_key, cutoff_date, n_orders,
    monetary, first_order_date, last_order_date, frequency (repeat purchase days, BG/NBD),
    recency_span_days (last − first purchase day), age_days (cutoff − first purchase day),
    days_since_last_order, future_orders (orders in the horizon); with ``engagement`` also
    future_engagements: web sessions and email opens/clicks in the horizon
    (``marts.fct_touchpoints``, for the "and no engagement" label).
    """
    require_table("marts", "fct_orders")
    if engagement:
        require_table("marts", "fct_touchpoints")
    cutoffs = sorted({pd.Timestamp(c).date() for c in cutoffs})
    if not cutoffs:
        raise ValueError("order_history needs at least one cutoff date")
    values = " union all ".join(
        f"select {lit(c)} as cutoff_date, {ts(c)} as cutoff_at, "
        f"{ts(c, int(horizon_days))} as horizon_end"
        for c in cutoffs
    )
    sql = f"""
    with cutoffs as ({values}),
    orders as (
        select customer_key, ordered_at, cast(ordered_at as date) as order_day, total_amount,
            coalesce(is_purchase, false) as is_purchase, updated_at,
            coalesce(total_amount, 0) >= 0 as is_not_credit_note,
            coalesce(is_cancelled, false) or coalesce(is_returned, false) as is_undone
        from marts.fct_orders
        where customer_key is not null
    ),
    history as (
        -- a purchase as known at the cutoff: undone (cancelled, returned) only by then
        select c.cutoff_date, o.customer_key,
            count(*) as n_orders,
            count(distinct o.order_day) - 1 as frequency,
            sum(coalesce(o.total_amount, 0)) as monetary,
            min(o.order_day) as first_order_date,
            max(o.order_day) as last_order_date
        from cutoffs c join orders o on o.ordered_at <= c.cutoff_at
        where o.is_not_credit_note
          and not (o.is_undone and coalesce(o.updated_at <= c.cutoff_at, true))
        group by c.cutoff_date, o.customer_key
    ),
    future as (
        select c.cutoff_date, o.customer_key, count(*) as future_orders
        from cutoffs c join orders o
          on o.ordered_at > c.cutoff_at and o.ordered_at <= c.horizon_end
        where o.is_purchase
        group by c.cutoff_date, o.customer_key
    ),
    engaged as (
        {ENGAGED if engagement else NO_ENGAGEMENT}
    )
    select h.customer_key, h.cutoff_date, h.n_orders, h.monetary,
        h.first_order_date, h.last_order_date, h.frequency,
        coalesce(f.future_orders, 0) as future_orders,
        coalesce(e.future_engagements, 0) as future_engagements
    from history h
    left join future f on f.cutoff_date = h.cutoff_date and f.customer_key = h.customer_key
    left join engaged e on e.cutoff_date = h.cutoff_date and e.customer_key = h.customer_key
    order by h.cutoff_date, h.customer_key
    """
    df = dates(warehouse.query_df(sql), "cutoff_date", "first_order_date", "last_order_date")
    df["customer_key"] = df["customer_key"].astype(str)
    # Day differences here, not in SQL: `date - date` is days in DuckDB and Postgres but an
    # interval in Spark.
    df["recency_span_days"] = (df["last_order_date"] - df["first_order_date"]).dt.days
    df["age_days"] = (df["cutoff_date"] - df["first_order_date"]).dt.days
    df["days_since_last_order"] = (df["cutoff_date"] - df["last_order_date"]).dt.days
    for col in (
        "n_orders",
        "frequency",
        "recency_span_days",
        "age_days",
        "days_since_last_order",
        "future_orders",
        "future_engagements",
    ):
        df[col] = pd.to_numeric(df[col]).astype("int64")
    # To the cent: a parallel sum of doubles differs in its last bits between runs, and a
    # model fitted on it (Gamma-Gamma, CLV) would get a new version on the same data.
    df["monetary"] = pd.to_numeric(df["monetary"]).astype(float).round(2)
    if not engagement:
        df = df.drop(columns=["future_engagements"])
    return df[COLUMNS + (["future_engagements"] if engagement else [])]
