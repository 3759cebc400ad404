"""The recommender's inputs, read once and held as integer-coded arrays.

Everything the candidate generators and ranking features need, known at ``as_of`` 00:00:

- order lines (``marts.fct_order_items`` via :func:`load_order_items`) with the
  order's channel (``marts.fct_orders``) and the unit price paid;
- web product views and carts (``marts.fct_product_interactions``, may be missing/empty);
- each keyed customer's session channel groups (``marts.fct_sessions``, may be missing);
- the catalogue (``marts.dim_products``; derived from the order lines without it).

Customers and products become dense integer codes (``cust``, ``item``) so the generators
can use sparse matrices and ``bincount``; :class:`RecData` keeps the code → key/id maps.
:meth:`RecData.until` gives the same data as known at an earlier instant (point in time).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from customer720 import warehouse
from ml.common.data import dates, require_table, ts

log = logging.getLogger(__name__)

VIEW, CART = 0, 1


@dataclass(frozen=True)
class RecData:
    """Integer-coded history. ``items``: cust, item, order_id, ordered_at, unit_price,
    channel (code into ``channels``). ``web``: cust (-1 = not stitched to a customer),
    session (code), item, kind (VIEW/CART), occurred_at. ``sessions``: cust, started_at,
    channel (code into ``channels``)."""

    customers: np.ndarray  # cust code -> customer_key (str)
    product_ids: np.ndarray  # item code -> product_id (text), sorted
    category: np.ndarray  # item code -> category code
    categories: np.ndarray  # category code -> name
    price: np.ndarray  # item code -> catalogue price (NaN if unknown)
    allowed: np.ndarray  # item code -> may be recommended (in the catalogue, not discontinued)
    names: np.ndarray  # item code -> product name
    channels: np.ndarray  # channel code -> name (order channels, then session channel groups)
    items: pd.DataFrame
    web: pd.DataFrame
    sessions: pd.DataFrame

    @property
    def n_items(self) -> int:
        return len(self.product_ids)

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def has_web(self) -> bool:
        return bool(len(self.web))

    def until(self, moment: pd.Timestamp) -> RecData:
        """The history known at ``moment`` (timestamps <= moment); codes stay the same."""
        return replace(
            self,
            items=self.items[self.items["ordered_at"] <= moment],
            web=self.web[self.web["occurred_at"] <= moment],
            sessions=self.sessions[self.sessions["started_at"] <= moment],
        )


def load_order_items(until: dt.date) -> pd.DataFrame:
    """Purchase order lines known at ``until`` 00:00 (ordered_at <= that instant).

    ``is_purchase`` (macros/purchases.sql): not cancelled, not returned, no credit note.
    """
    require_table("marts", "fct_order_items")
    sql = f"""
    select customer_key, order_id, product_id, category, quantity, line_amount, ordered_at,
           cast(ordered_at as date) as order_date
    from marts.fct_order_items
    where customer_key is not null and product_id is not null
      and coalesce(is_purchase, false)
      and ordered_at <= {ts(until)}
    order by customer_key, ordered_at, order_id, product_id, quantity, line_amount
    """
    # A defined row order: ties (same day, same score) are broken by position downstream,
    # and a warehouse rebuild returns rows in another order, which changed recommendations.
    df = warehouse.query_df(sql)
    df["customer_key"] = df["customer_key"].astype(str)
    df["product_id"] = df["product_id"].astype(str)  # ids are text (ingest/contract.json)
    df["ordered_at"] = pd.to_datetime(df["ordered_at"])
    return dates(df, "order_date")


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
    df["product_id"] = df["product_id"].astype(str)  # ids are text (ingest/contract.json)
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
    where product_id is not null and occurred_at <= {ts(until)}
    order by customer_key, occurred_at, session_id, product_id, interaction_type
    """
    df = warehouse.query_df(sql)
    if df.empty:
        return pd.DataFrame(columns=cols)
    df["customer_key"] = df["customer_key"].astype("string").astype(object)
    df["product_id"] = df["product_id"].astype(str)  # ids are text (ingest/contract.json)
    df["occurred_at"] = pd.to_datetime(df["occurred_at"])
    return dates(df, "occurred_date")


def _order_channels() -> pd.DataFrame:
    return warehouse.query_df(
        "select order_id, coalesce(lower(channel), 'unknown') as channel from marts.fct_orders"
    )


def _session_channels(until: dt.date) -> pd.DataFrame:
    cols = ["customer_key", "started_at", "channel_group"]
    if not warehouse.table_exists("marts", "fct_sessions"):
        return pd.DataFrame(columns=cols)
    return warehouse.query_df(
        "select customer_key, started_at, coalesce(lower(channel_group), 'unknown') as "
        "channel_group from marts.fct_sessions "
        f"where customer_key is not null and started_at <= {ts(until)} "
        "order by customer_key, started_at"
    )


def load(as_of: dt.date) -> RecData:
    """Everything known at ``as_of`` 00:00, coded."""
    products = load_products()
    lines = load_order_items(as_of)
    inter = load_interactions(as_of)
    web = inter[inter["interaction_type"].isin(["view", "cart"])] if len(inter) else inter
    sessions = _session_channels(as_of)
    if len(lines):
        lines = lines.merge(_order_channels(), on="order_id", how="left")
    else:
        lines = lines.assign(channel=pd.Series(dtype=object))
    return encode(products, lines, web, sessions)


def encode(
    products: pd.DataFrame, lines: pd.DataFrame, web: pd.DataFrame, sessions: pd.DataFrame
) -> RecData:
    """Code the frames (see :func:`load` for their columns). Public for tests."""
    # Product ids are text (ingest/contract.json); integer ids become their decimal text.
    products = products.astype({"product_id": str})
    lines = lines.astype({"product_id": str})
    if len(web):
        web = web.astype({"product_id": str})
    ids = np.unique(
        np.concatenate(
            [
                products["product_id"].to_numpy(str),
                lines["product_id"].to_numpy(str),
                web["product_id"].to_numpy(str) if len(web) else np.array([], str),
            ]
        )
    )
    prod = products.drop_duplicates("product_id").set_index("product_id").reindex(ids)
    # The catalogue's category; an unknown product keeps its order line's copy.
    line_cat = lines.groupby("product_id")["category"].first() if len(lines) else pd.Series()
    cat_names = prod["category"].fillna(pd.Series(ids, index=ids).map(line_cat)).fillna("unknown")
    categories, category = np.unique(cat_names.astype(str).to_numpy(), return_inverse=True)
    in_catalogue = prod["name"].notna().to_numpy() if "name" in prod else np.ones(len(ids), bool)
    allowed = in_catalogue & ~prod["is_discontinued"].fillna(True).astype(bool).to_numpy()
    names = prod["name"].fillna("product " + pd.Series(ids, index=ids).astype(str))

    keys = [lines["customer_key"].astype(str)]
    if len(web):
        keys.append(web["customer_key"].dropna().astype(str))
    customers = np.unique(np.concatenate([k.to_numpy(dtype=object) for k in keys]).astype(str))
    cust_index = pd.Index(customers)

    order_channels = lines["channel"].fillna("unknown").astype(str).to_numpy() if len(lines) else []
    session_channels = (
        sessions["channel_group"].astype(str).to_numpy() if len(sessions) else np.array([])
    )
    channels = np.unique(np.concatenate([np.asarray(order_channels, str), session_channels]))
    chan_index = pd.Index(channels)

    qty = pd.to_numeric(lines["quantity"], errors="coerce").to_numpy(float)
    amount = pd.to_numeric(lines["line_amount"], errors="coerce").to_numpy(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(qty > 0, amount / qty, np.nan)
    items = pd.DataFrame(
        {
            "cust": cust_index.get_indexer(lines["customer_key"].astype(str)).astype(np.int32),
            "item": np.searchsorted(ids, lines["product_id"].to_numpy(str)).astype(np.int32),
            "order_id": lines["order_id"].to_numpy(),
            "ordered_at": pd.to_datetime(lines["ordered_at"]).to_numpy("datetime64[ns]"),
            "unit_price": unit,
            "channel": chan_index.get_indexer(np.asarray(order_channels, str)).astype(np.int16)
            if len(lines)
            else np.array([], np.int16),
        }
    )
    if len(web):
        wkeys = web["customer_key"]
        cust = np.full(len(web), -1, np.int32)
        known = wkeys.notna().to_numpy()
        cust[known] = cust_index.get_indexer(wkeys[known].astype(str))
        web_df = pd.DataFrame(
            {
                "cust": cust,
                "session": pd.factorize(web["session_id"].astype(str))[0].astype(np.int64),
                "item": np.searchsorted(ids, web["product_id"].to_numpy(str)).astype(np.int32),
                "kind": np.where(web["interaction_type"].to_numpy() == "cart", CART, VIEW).astype(
                    np.int8
                ),
                "occurred_at": pd.to_datetime(web["occurred_at"]).to_numpy("datetime64[ns]"),
            }
        )
    else:
        web_df = pd.DataFrame(
            {
                "cust": np.array([], np.int32),
                "session": np.array([], np.int64),
                "item": np.array([], np.int32),
                "kind": np.array([], np.int8),
                "occurred_at": np.array([], "datetime64[ns]"),
            }
        )
    if len(sessions):
        scust = cust_index.get_indexer(sessions["customer_key"].astype(str))
        keep = scust >= 0  # sessions of customers with no product interaction or order: unused
        sess_df = pd.DataFrame(
            {
                "cust": scust[keep].astype(np.int32),
                "started_at": pd.to_datetime(sessions["started_at"]).to_numpy("datetime64[ns]")[
                    keep
                ],
                "channel": chan_index.get_indexer(session_channels[keep]).astype(np.int16),
            }
        )
    else:
        sess_df = pd.DataFrame(
            {
                "cust": np.array([], np.int32),
                "started_at": np.array([], "datetime64[ns]"),
                "channel": np.array([], np.int16),
            }
        )
    return RecData(
        customers=customers,
        product_ids=ids,
        category=category.astype(np.int32),
        categories=categories,
        price=pd.to_numeric(prod["price"], errors="coerce").to_numpy(float),
        allowed=allowed,
        names=names.astype(str).to_numpy(),
        channels=channels,
        items=items,
        web=web_df,
        sessions=sess_df,
    )


def no_items(d: RecData, as_of: dt.date) -> bool:
    if len(d.items) and d.allowed.any():
        return False
    log.warning(
        "no order lines with products (marts.fct_order_items is empty) or no product "
        "may be recommended: nothing to train or recommend for %s",
        as_of,
    )
    return True
