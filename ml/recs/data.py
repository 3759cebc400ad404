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
import pyarrow as pa
import pyarrow.compute as pc

from customer720 import warehouse
from ml.common.data import dates, require_table, ts

log = logging.getLogger(__name__)

VIEW, CART = 0, 1


@dataclass(frozen=True)
class RecData:
    """Integer-coded history. ``items``: cust, item, order_id, ordered_at, unit_price,
    channel (code into ``channels``). ``web``: cust (-1 = not stitched to a customer),
    session (code), item, kind (VIEW/CART), occurred_at; a customer's rows in time order.
    ``sessions``: cust, started_at, channel (code into ``channels``), n (sessions the row
    stands for: 1, or a customer's sessions of one channel folded at their latest start).

    ``web_since`` (daily scoring, :func:`load` with ``web_days``): ``web`` holds only the
    rows from that instant on, plus all rows of the customers :func:`with_web_history`
    added; ``web_before`` says whether older web rows exist at all."""

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
    web_since: pd.Timestamp | None = None
    web_before: bool = False

    @property
    def n_items(self) -> int:
        return len(self.product_ids)

    @property
    def n_customers(self) -> int:
        return len(self.customers)

    @property
    def has_web(self) -> bool:
        return bool(len(self.web)) or self.web_before

    def until(self, moment: pd.Timestamp) -> RecData:
        """The history known at ``moment`` (timestamps <= moment); codes stay the same.
        Only for a complete load (not a daily one: its web and sessions are partial)."""
        if self.web_since is not None:
            raise ValueError("until() needs the whole history: load(as_of) without web_days")
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


INTERACTION_COLUMNS = (
    "customer_key",
    "session_id",
    "product_id",
    "interaction_type",
    "occurred_at",
)


def _interactions_where(until: dt.date, kinds: tuple[str, ...] | None) -> str:
    only = (
        " and lower(interaction_type) in (" + ", ".join(f"'{k}'" for k in kinds) + ")"
        if kinds
        else ""
    )
    return f"product_id is not null and occurred_at <= {ts(until)}{only}"


def _in(column: str, keys: np.ndarray) -> str:
    return f"{column} in (" + ", ".join("'" + str(k).replace("'", "''") + "'" for k in keys) + ")"


def load_interactions(
    until: dt.date,
    kinds: tuple[str, ...] | None = None,
    since: pd.Timestamp | None = None,
    before: pd.Timestamp | None = None,
    customers: np.ndarray | None = None,
) -> pa.Table:
    """Web/app product interactions known at ``until`` 00:00 (only ``kinds``, lower case,
    if given; only from the day ``since`` on / before the day ``before`` and of the
    customer keys ``customers`` if given), as Arrow (ten million rows at scale M); empty
    without web data."""
    if not warehouse.table_exists("marts", "fct_product_interactions"):
        log.info("marts.fct_product_interactions missing: recommending without web data")
        return pa.table({c: pa.array([], pa.string()) for c in INTERACTION_COLUMNS})
    where = _interactions_where(until, kinds)
    if since is not None:
        where += f" and occurred_at >= {ts(since)}"
    if before is not None:
        where += f" and occurred_at < {ts(before)}"
    if customers is not None:
        if not len(customers):
            return pa.table({c: pa.array([], pa.string()) for c in INTERACTION_COLUMNS})
        where += " and " + _in("customer_key", customers)
    return warehouse.query_arrow(
        f"""
    select customer_key, session_id, product_id, lower(interaction_type) as interaction_type,
           occurred_at
    from marts.fct_product_interactions
    where {where}
    order by customer_key, occurred_at, session_id, product_id, interaction_type
    """
    )


def _lines_from(until: dt.date) -> str:
    """FROM and WHERE of the coded order lines (:func:`_lines_with_channel`)."""
    return f"""from marts.fct_order_items i
    left join marts.fct_orders o on o.order_id = i.order_id
    where i.customer_key is not null and i.product_id is not null
      and coalesce(i.is_purchase, false)
      and i.ordered_at <= {ts(until)}"""


def _lines_with_channel(until: dt.date) -> pa.Table:
    """:func:`load_order_items`' rows with the order's channel (``marts.fct_orders``), in
    the same order, as Arrow: what :func:`load` codes."""
    require_table("marts", "fct_order_items")
    return warehouse.query_arrow(
        f"""
    select i.customer_key, i.order_id, i.product_id, i.category, i.quantity, i.line_amount,
           i.ordered_at, coalesce(lower(o.channel), 'unknown') as channel
    {_lines_from(until)}
    order by i.customer_key, i.ordered_at, i.order_id, i.product_id, i.quantity, i.line_amount
    """
    )


def _sessions_where(until: dt.date) -> str:
    return f"customer_key is not null and started_at <= {ts(until)}"


def _session_channels(until: dt.date, folded: bool = False) -> pa.Table:
    """Keyed sessions: customer_key, started_at, channel_group; ``folded``: one row per
    customer and channel group at its latest start, with n (their sessions)."""
    if not warehouse.table_exists("marts", "fct_sessions"):
        return pa.table({c: pa.array([], pa.string()) for c in SESSION_COLUMNS})
    channel = "coalesce(lower(channel_group), 'unknown')"
    if folded:
        return warehouse.query_arrow(
            f"select customer_key, max(started_at) as started_at, {channel} as channel_group, "
            f"count(*) as n from marts.fct_sessions where {_sessions_where(until)} "
            f"group by customer_key, {channel}"
        )
    return warehouse.query_arrow(
        f"select customer_key, started_at, {channel} as channel_group from marts.fct_sessions "
        f"where {_sessions_where(until)} order by customer_key, started_at"
    )


SESSION_COLUMNS = ("customer_key", "started_at", "channel_group")


def load(as_of: dt.date, web_days: int | None = None) -> RecData:
    """Everything known at ``as_of`` 00:00, coded. Read as Arrow and coded there: no
    Python object per value (the ~10M web events at scale M were ~5 GB as pandas objects).

    ``web_days`` (daily scoring): the web rows of the last ``web_days`` days only (a
    customer's older ones come with :func:`with_web_history`) and sessions folded per
    customer and channel; the codes are those of the whole history all the same."""
    if web_days is None:
        return encode(
            load_products(),
            _lines_with_channel(as_of),
            load_interactions(as_of, kinds=WEB_KINDS),
            _session_channels(as_of),
        )
    since = pd.Timestamp(as_of).normalize() - pd.Timedelta(days=web_days)
    universe = _web_universe(as_of, since)
    d = encode(
        load_products(),
        _lines_with_channel(as_of),
        load_interactions(as_of, kinds=WEB_KINDS, since=since),
        _session_channels(as_of, folded=True),
        also=universe[:2],
    )
    return replace(d, web_since=since, web_before=universe[2])


WEB_KINDS = ("view", "cart")


def _web_universe(as_of: dt.date, since: pd.Timestamp) -> tuple[np.ndarray, np.ndarray, bool]:
    """(customer keys, product ids, any row before ``since``) of the whole web history: the
    codes must not depend on how much of it is read."""
    if not warehouse.table_exists("marts", "fct_product_interactions"):
        return np.array([], str), np.array([], str), False
    where = _interactions_where(as_of, WEB_KINDS)
    keys = warehouse.query_arrow(
        f"select distinct customer_key from marts.fct_product_interactions where {where}"
    )
    ids = warehouse.query_arrow(
        f"select distinct product_id from marts.fct_product_interactions where {where}"
    )
    older = warehouse.scalar(
        "select count(*) from (select 1 as x from marts.fct_product_interactions "
        f"where {where} and occurred_at < {ts(since)} limit 1) t"
    )
    return _unique(keys["customer_key"]), _unique(ids["product_id"]), bool(older)


def with_web_history(d: RecData, as_of: dt.date, custs: np.ndarray | None) -> RecData:
    """``d`` with the web rows before ``d.web_since`` of the customers ``custs`` (codes; None:
    everybody's, without listing them): their web history complete, for ranking them."""
    if d.web_since is None or not d.web_before or (custs is not None and not len(custs)):
        return d
    keys = None if custs is None else d.customers[custs]
    old = _arrow(
        load_interactions(as_of, WEB_KINDS, before=d.web_since, customers=keys),
        ("customer_key", "session_id", "product_id", "interaction_type"),
    )
    if not len(old):
        return d
    part = _web_frame(old, d.customers, d.product_ids)
    # session codes of these rows must not meet the window's
    part["session"] += int(d.web["session"].max()) + 1 if len(d.web) else 0
    # each customer's older rows first: a customer's rows stay in time order
    return replace(d, web=pd.concat([part, d.web], ignore_index=True))


def web_totals(as_of: dt.date, id_hash: pd.Series) -> pd.DataFrame:
    """Per customer_key with web rows known at ``as_of`` (the views and carts :func:`load`
    reads): their number (n), the latest time (last, ns) and the sum of ``id_hash``
    (product_id → integer) over them (ids); one aggregate per customer over the whole
    history, whatever part of it is read."""
    empty = pd.DataFrame({"n": [], "last": [], "ids": []}, dtype="int64")
    if not warehouse.table_exists("marts", "fct_product_interactions"):
        return empty
    values = ", ".join(
        "('" + str(p).replace("'", "''") + f"', {int(h)})" for p, h in id_hash.items()
    )
    t = warehouse.query_arrow(
        "select w.customer_key, count(*) as n, max(w.occurred_at) as latest, "
        "cast(sum(h.h) as bigint) as ids from (select customer_key, product_id, occurred_at "
        "from marts.fct_product_interactions "
        f"where customer_key is not null and {_interactions_where(as_of, WEB_KINDS)}) w "
        f"join (values {values}) as h(product_id, h) on h.product_id = w.product_id "
        "group by w.customer_key"
    )
    if not len(t):
        return empty
    t = _arrow(t, ("customer_key",))
    return pd.DataFrame(
        {
            "n": pc.cast(t["n"], pa.int64()).to_numpy(zero_copy_only=False),
            "last": _stamps(t["latest"]).astype("int64"),
            "ids": pc.cast(t["ids"], pa.int64()).to_numpy(zero_copy_only=False),
        },
        index=pd.Index(t["customer_key"].to_numpy(zero_copy_only=False).astype(str)),
    )


Frame = pd.DataFrame | pa.Table


def _arrow(frame: Frame, text: tuple[str, ...]) -> pa.Table:
    """``frame`` as Arrow with the ``text`` columns as strings (integer ids become their
    decimal text; nulls stay null)."""
    if isinstance(frame, pd.DataFrame):
        frame = frame.copy()
        for c in text:
            if c in frame:
                col = frame[c]
                frame[c] = col.where(col.isna(), col.astype(str)).astype(object)
        frame = pa.Table.from_pandas(frame, preserve_index=False)
    for c in text:
        if c in frame.column_names and frame.schema.field(c).type != pa.string():
            frame = frame.set_column(
                frame.schema.get_field_index(c), c, pc.cast(frame[c], pa.string())
            )
    return frame


def _unique(*cols: pa.ChunkedArray) -> np.ndarray:
    """Sorted distinct non-null strings of ``cols`` (numpy's order: by code point)."""
    parts = [pc.unique(c).drop_null().to_numpy(zero_copy_only=False) for c in cols if len(c)]
    if not parts:
        return np.array([], str)
    return np.unique(np.concatenate(parts).astype(str))


def _codes(col: pa.ChunkedArray, values: np.ndarray, dtype: type) -> np.ndarray:
    """Position of each value of ``col`` in the sorted ``values`` (-1: absent or null)."""
    if not len(col):
        return np.array([], dtype)
    idx = pc.index_in(col, value_set=pa.array(values.tolist(), pa.string()))
    return pc.fill_null(idx, -1).to_numpy(zero_copy_only=False).astype(dtype)


def _stamps(col: pa.ChunkedArray) -> np.ndarray:
    if not len(col):
        return np.array([], "datetime64[ns]")
    if not pa.types.is_timestamp(col.type):
        col = pc.cast(col, pa.timestamp("ns"))
    return col.to_numpy(zero_copy_only=False).astype("datetime64[ns]")


def _numbers(col: pa.ChunkedArray) -> np.ndarray:
    if not len(col):
        return np.array([], float)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False)
    values = pd.Series(col.to_numpy(zero_copy_only=False))  # decimals, text
    return pd.to_numeric(values, errors="coerce").to_numpy(float)


def encode(
    products: pd.DataFrame,
    lines: Frame,
    web: Frame,
    sessions: Frame,
    also: tuple[np.ndarray, np.ndarray] | None = None,
) -> RecData:
    """Code the frames (pandas or Arrow; see :func:`load` for their columns; ``web`` rows
    are views or carts; ``sessions`` may carry n). ``also``: customer keys and product ids
    to code though not in the frames (rows of the history not read). Public for tests."""
    # Product ids are text (ingest/contract.json); integer ids become their decimal text.
    products = products.astype({"product_id": str})
    lines = _arrow(lines, ("customer_key", "order_id", "product_id", "category", "channel"))
    web = _arrow(web, ("customer_key", "session_id", "product_id", "interaction_type"))
    sessions = _arrow(sessions, ("customer_key", "channel_group"))
    has_web = len(web) > 0
    ids = np.unique(
        np.concatenate(
            [
                products["product_id"].to_numpy(str),
                _unique(lines["product_id"]),
                _unique(web["product_id"]) if has_web else np.array([], str),
                also[1] if also else np.array([], str),
            ]
        )
    )
    prod = products.drop_duplicates("product_id").set_index("product_id").reindex(ids)
    line_item = _codes(lines["product_id"], ids, np.int32)
    # The catalogue's category; an unknown product keeps its (first) order line's copy.
    line_cat = pd.Series(dtype=object)
    if len(lines):
        cat = lines["category"]
        known = pc.is_valid(cat).to_numpy(zero_copy_only=False)
        first_item, first_row = np.unique(line_item[known], return_index=True)
        line_cat = pd.Series(
            cat.filter(pc.is_valid(cat)).take(pa.array(first_row)).to_numpy(zero_copy_only=False),
            index=ids[first_item],
        )
    cat_names = prod["category"].fillna(pd.Series(ids, index=ids).map(line_cat)).fillna("unknown")
    categories, category = np.unique(cat_names.astype(str).to_numpy(), return_inverse=True)
    in_catalogue = prod["name"].notna().to_numpy() if "name" in prod else np.ones(len(ids), bool)
    allowed = in_catalogue & ~prod["is_discontinued"].fillna(True).astype(bool).to_numpy()
    names = prod["name"].fillna("product " + pd.Series(ids, index=ids).astype(str))

    customers = _unique(lines["customer_key"], *([web["customer_key"]] if has_web else []))
    if also is not None and len(also[0]):
        customers = np.unique(np.concatenate([customers, also[0]]))
    order_channels = (
        pc.fill_null(lines["channel"], "unknown")
        if len(lines)
        else pa.chunked_array([], pa.string())
    )
    channels = _unique(order_channels, *([sessions["channel_group"]] if len(sessions) else []))

    qty = _numbers(lines["quantity"]) if len(lines) else np.array([], float)
    amount = _numbers(lines["line_amount"]) if len(lines) else np.array([], float)
    with np.errstate(divide="ignore", invalid="ignore"):
        unit = np.where(qty > 0, amount / qty, np.nan)
    items = pd.DataFrame(
        {
            "cust": _codes(lines["customer_key"], customers, np.int32),
            "item": line_item,
            # orders in order of first appearance (as pd.factorize): only grouped by
            "order_id": (
                pc.dictionary_encode(lines["order_id"]).combine_chunks().indices.to_numpy()
                if len(lines)
                else np.array([], np.int32)
            ).astype(np.int64),
            "ordered_at": _stamps(lines["ordered_at"]),
            "unit_price": unit,
            "channel": _codes(order_channels, channels, np.int16),
        }
    )
    if has_web:
        web_df = _web_frame(web, customers, ids)
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
        scust = _codes(sessions["customer_key"], customers, np.int32)
        keep = scust >= 0  # sessions of customers with no product interaction or order: unused
        sess_df = pd.DataFrame(
            {
                "cust": scust[keep],
                "started_at": _stamps(sessions["started_at"])[keep],
                "channel": _codes(sessions["channel_group"], channels, np.int16)[keep],
                "n": (
                    pc.cast(sessions["n"], pa.int64()).to_numpy(zero_copy_only=False)[keep]
                    if "n" in sessions.column_names
                    else np.ones(int(keep.sum()), np.int64)
                ),
            }
        )
    else:
        sess_df = pd.DataFrame(
            {
                "cust": np.array([], np.int32),
                "started_at": np.array([], "datetime64[ns]"),
                "channel": np.array([], np.int16),
                "n": np.array([], np.int64),
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


def _web_frame(web: pa.Table, customers: np.ndarray, ids: np.ndarray) -> pd.DataFrame:
    """Coded web rows (see :class:`RecData`)."""
    return pd.DataFrame(
        {
            "cust": _codes(web["customer_key"], customers, np.int32),
            "session": pc.dictionary_encode(web["session_id"], null_encoding="encode")
            .combine_chunks()
            .indices.to_numpy(zero_copy_only=False)
            .astype(np.int64),
            "item": _codes(web["product_id"], ids, np.int32),
            "kind": np.where(
                pc.equal(web["interaction_type"], "cart").to_numpy(zero_copy_only=False),
                CART,
                VIEW,
            ).astype(np.int8),
            "occurred_at": _stamps(web["occurred_at"]),
        }
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
