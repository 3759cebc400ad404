"""Read the warehouse tables the ML stage depends on (through ``customer720.warehouse``).

SQL here is plain and portable (DuckDB and Postgres): ``date``/``timestamp`` literals and
``date - date`` (days).

Time convention (shared with the dbt model ``ml.customer_features``): a cutoff date D stands
for the instant ``cutoff_at`` = D 00:00:00. Data known at the cutoff is everything with a
timestamp <= cutoff_at; "after the cutoff" is > cutoff_at. So an order on day D itself (after
midnight) is not in D's features — it is the first day of D's label window.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

import pandas as pd

from customer720 import warehouse

log = logging.getLogger(__name__)

FEATURES_TABLE = ("ml", "customer_features")
KEY_COLUMNS = ("customer_key", "cutoff_date")


class MissingInputError(RuntimeError):
    """A table the ML stage needs is missing or empty; the message says what to run."""


def _lit(day: dt.date) -> str:
    return f"date '{pd.Timestamp(day).date().isoformat()}'"


def _ts(day: dt.date, plus_days: int = 0) -> str:
    """The instant ``day + plus_days`` at 00:00:00 as a portable timestamp literal."""
    moment = pd.Timestamp(day).normalize() + pd.Timedelta(days=plus_days)
    return f"timestamp '{moment:%Y-%m-%d %H:%M:%S}'"


def require_table(schema: str, table: str) -> None:
    if not warehouse.table_exists(schema, table):
        raise MissingInputError(
            f"{schema}.{table} is missing in the warehouse ({warehouse.get_settings().warehouse}). "
            "Build it first (dbt: `dbt build`), or point C720_WAREHOUSE at the right warehouse."
        )


def _dates(df: pd.DataFrame, *cols: str) -> pd.DataFrame:
    for col in cols:
        if col in df:
            df[col] = pd.to_datetime(df[col]).dt.normalize()
    return df


def feature_cutoffs() -> list[pd.Timestamp]:
    """Distinct cutoff dates present in ``ml.customer_features``, oldest first."""
    require_table(*FEATURES_TABLE)
    df = warehouse.query_df("select distinct cutoff_date from ml.customer_features order by 1")
    return [pd.Timestamp(d).normalize() for d in df["cutoff_date"]]


def load_features(cutoffs: Iterable[dt.date] | None = None) -> pd.DataFrame:
    """Rows of ``ml.customer_features`` (all cutoffs, or only the given ones)."""
    require_table(*FEATURES_TABLE)
    sql = "select * from ml.customer_features"
    cutoffs = list(cutoffs) if cutoffs is not None else None
    if cutoffs is not None:
        if not cutoffs:
            return pd.DataFrame(columns=list(KEY_COLUMNS))
        sql += " where cutoff_date in (" + ", ".join(_lit(c) for c in cutoffs) + ")"
    df = warehouse.query_df(sql + " order by cutoff_date, customer_key")
    df["customer_key"] = df["customer_key"].astype(str)
    return _dates(df, "cutoff_date")


# Engagement in a label window: a web session or an email open/click (fct_touchpoints).
ENGAGED = """
        select c.cutoff_date, t.customer_key, count(*) as future_engagements
        from cutoffs c join marts.fct_touchpoints t
          on t.occurred_at > c.cutoff_at and t.occurred_at <= c.horizon_end
        where t.touchpoint_type in ('web_session', 'email_open', 'email_click')
          and t.customer_key is not null
        group by c.cutoff_date, t.customer_key"""
NO_ENGAGEMENT = """
        select cutoff_date, cast(null as varchar) as customer_key,
            cast(0 as bigint) as future_engagements
        from cutoffs where 1 = 0"""


def order_history(
    cutoffs: Iterable[dt.date], horizon_days: int, engagement: bool = False
) -> pd.DataFrame:
    """Per (customer, cutoff): what the orders say up to the cutoff and in the horizon after.

    Only non-cancelled orders count. History = ordered_at <= cutoff_at; the horizon is
    (cutoff_at, cutoff_at + horizon_days]. Columns: customer_key, cutoff_date, n_orders,
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
        f"select {_lit(c)} as cutoff_date, {_ts(c)} as cutoff_at, "
        f"{_ts(c, int(horizon_days))} as horizon_end"
        for c in cutoffs
    )
    sql = f"""
    with cutoffs as ({values}),
    orders as (
        select customer_key, ordered_at, cast(ordered_at as date) as order_day, total_amount
        from marts.fct_orders
        where not coalesce(is_cancelled, false) and customer_key is not null
    ),
    history as (
        select c.cutoff_date, o.customer_key,
            count(*) as n_orders,
            count(distinct o.order_day) - 1 as frequency,
            sum(coalesce(o.total_amount, 0)) as monetary,
            min(o.order_day) as first_order_date,
            max(o.order_day) as last_order_date
        from cutoffs c join orders o on o.ordered_at <= c.cutoff_at
        group by c.cutoff_date, o.customer_key
    ),
    future as (
        select c.cutoff_date, o.customer_key, count(*) as future_orders
        from cutoffs c join orders o
          on o.ordered_at > c.cutoff_at and o.ordered_at <= c.horizon_end
        group by c.cutoff_date, o.customer_key
    ),
    engaged as (
        {ENGAGED if engagement else NO_ENGAGEMENT}
    )
    select h.customer_key, h.cutoff_date, h.n_orders, h.monetary,
        h.first_order_date, h.last_order_date, h.frequency,
        h.last_order_date - h.first_order_date as recency_span_days,
        h.cutoff_date - h.first_order_date as age_days,
        h.cutoff_date - h.last_order_date as days_since_last_order,
        coalesce(f.future_orders, 0) as future_orders,
        coalesce(e.future_engagements, 0) as future_engagements
    from history h
    left join future f on f.cutoff_date = h.cutoff_date and f.customer_key = h.customer_key
    left join engaged e on e.cutoff_date = h.cutoff_date and e.customer_key = h.customer_key
    order by h.cutoff_date, h.customer_key
    """
    df = warehouse.query_df(sql)
    df["customer_key"] = df["customer_key"].astype(str)
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
    df["monetary"] = pd.to_numeric(df["monetary"]).astype(float)
    if not engagement:
        df = df.drop(columns=["future_engagements"])
    return _dates(df, "cutoff_date", "first_order_date", "last_order_date")


def load_order_items(until: dt.date) -> pd.DataFrame:
    """Non-cancelled order lines known at ``until`` 00:00 (ordered_at <= that instant)."""
    require_table("marts", "fct_order_items")
    sql = f"""
    select customer_key, order_id, product_id, category, quantity, line_amount, ordered_at,
           cast(ordered_at as date) as order_date
    from marts.fct_order_items
    where customer_key is not null and product_id is not null
      and coalesce(lower(status), '') <> 'cancelled'
      and ordered_at <= {_ts(until)}
    order by customer_key, ordered_at, order_id, product_id, quantity, line_amount
    """
    # A defined row order: ties (same day, same score) are broken by position downstream,
    # and a warehouse rebuild returns rows in another order, which changed recommendations.
    df = warehouse.query_df(sql)
    df["customer_key"] = df["customer_key"].astype(str)
    df["product_id"] = pd.to_numeric(df["product_id"]).astype("int64")
    df["ordered_at"] = pd.to_datetime(df["ordered_at"])
    return _dates(df, "order_date")


def load_products() -> pd.DataFrame:
    """The catalogue. Without ``marts.dim_products`` (products are optional in the source
    contract) it is derived from the order lines: nothing is known to be discontinued."""
    if not warehouse.table_exists("marts", "dim_products"):
        require_table("marts", "fct_order_items")
        log.warning(
            "marts.dim_products missing: catalogue derived from fct_order_items, "
            "no product is treated as discontinued"
        )
        df = warehouse.query_df(
            "select product_id, max(category) as category, max(unit_price) as price "
            "from marts.fct_order_items where product_id is not null group by product_id "
            "order by product_id"
        )
        df["name"] = "product " + df["product_id"].astype(str)
        df["brand"] = None
        df["is_discontinued"] = False
    else:
        df = warehouse.query_df(
            "select product_id, name, category, brand, price, is_discontinued "
            "from marts.dim_products order by product_id"
        )
    df["product_id"] = pd.to_numeric(df["product_id"]).astype("int64")
    df["is_discontinued"] = df["is_discontinued"].fillna(False).astype(bool)
    return df


def load_interactions(until: dt.date) -> pd.DataFrame:
    """Web/app product interactions known at ``until`` 00:00; empty frame without web data."""
    cols = [
        "customer_key",
        "session_id",
        "product_id",
        "interaction_type",
        "occurred_at",
        "occurred_date",
    ]
    if not warehouse.table_exists("marts", "fct_product_interactions"):
        log.info("marts.fct_product_interactions missing: recommending without web data")
        return pd.DataFrame(columns=cols)
    sql = f"""
    select customer_key, session_id, product_id, lower(interaction_type) as interaction_type,
           occurred_at, cast(occurred_at as date) as occurred_date
    from marts.fct_product_interactions
    where product_id is not null and occurred_at <= {_ts(until)}
    order by customer_key, occurred_at, session_id, product_id, interaction_type
    """
    df = warehouse.query_df(sql)
    if df.empty:
        return pd.DataFrame(columns=cols)
    df["customer_key"] = df["customer_key"].astype("string").astype(object)
    df["product_id"] = pd.to_numeric(df["product_id"]).astype("int64")
    df["occurred_at"] = pd.to_datetime(df["occurred_at"])
    return _dates(df, "occurred_date")
