"""The daily recommend reads what a day needs: the web rows of the statistics' windows for
everybody, the older ones of the re-ranked customers only, sessions folded per customer and
channel, and the input fingerprints as one warehouse aggregate per customer. What it codes
must equal the whole history's read, on DuckDB and on Postgres, and the fingerprints must
equal the ones computed from the whole history's rows (they are stored: a change would
re-rank everybody once)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import sqlalchemy as sa

from customer720 import warehouse
from ml.common.config import RecConfig
from ml.recs import data as rec_data
from ml.recs.candidates import Snapshot, active_customers
from ml.recs.score import fingerprints

MARTS = (
    "fct_order_items",
    "fct_orders",
    "fct_product_interactions",
    "fct_sessions",
    "dim_products",
)


def _prints_from_rows(d: rec_data.RecData, custs: np.ndarray) -> np.ndarray:
    """The fingerprints from the coded rows of the whole history (how they were computed
    before the warehouse summed them)."""
    parts = {}
    id_hash = pd.util.hash_array(d.product_ids.astype(object), categorize=False) >> 33
    for name, frame, item, at in (
        ("lines", d.items, "item", "ordered_at"),
        ("web", d.web, "item", "occurred_at"),
        ("sessions", d.sessions, None, "started_at"),
    ):
        x = frame[frame["cust"].isin(custs).to_numpy()]
        g = x.groupby("cust")
        parts[f"{name}_n"] = g.size()
        parts[f"{name}_last"] = g[at].max().astype("int64")
        if item:
            ids = pd.Series(
                id_hash[x[item].to_numpy()].astype(np.int64), index=x["cust"].to_numpy()
            )
            parts[f"{name}_ids"] = ids.groupby(level=0).sum()
    f = pd.DataFrame(parts).reindex(custs).fillna(-1).astype("int64")
    return pd.util.hash_pandas_object(f, index=False).to_numpy().view(np.int64)


def _check_daily_read(as_of, cfg: RecConfig) -> None:
    at = pd.Timestamp(as_of)
    full = rec_data.load(as_of)
    assert full.sessions["channel"].nunique() > 1
    custs = active_customers(Snapshot(full, at, cfg))
    days = max(cfg.web_window_days, cfg.recent_view_days, 7) + 1
    daily = rec_data.load(as_of, web_days=days)
    for field in ("customers", "product_ids", "category", "price", "allowed", "channels"):
        np.testing.assert_array_equal(getattr(daily, field), getattr(full, field))
    pd.testing.assert_frame_equal(daily.items, full.items)
    assert daily.has_web == full.has_web and daily.web_before
    # the windows' rows for everybody, in the same order
    since = at - pd.Timedelta(days=days)
    recent = full.web[full.web["occurred_at"] >= since].reset_index(drop=True)
    assert 0 < len(daily.web) == len(recent) < len(full.web)
    cols = ["cust", "item", "kind", "occurred_at"]
    pd.testing.assert_frame_equal(daily.web[cols].reset_index(drop=True), recent[cols])
    # folded sessions: the same usual web channel per customer
    np.testing.assert_array_equal(
        Snapshot(daily, at, cfg).web_channel, Snapshot(full, at, cfg).web_channel
    )
    assert np.array_equal(active_customers(Snapshot(daily, at, cfg)), custs)
    np.testing.assert_array_equal(fingerprints(daily, custs, as_of), _prints_from_rows(full, custs))
    # the re-ranked customers get their whole web history, in time order
    ranked = custs[::3]
    whole = rec_data.with_web_history(daily, as_of, ranked).web
    mine = whole[whole["cust"].isin(ranked)].sort_values("cust", kind="stable")
    theirs = full.web[full.web["cust"].isin(ranked)].sort_values("cust", kind="stable")
    assert len(mine) > len(recent[recent["cust"].isin(ranked)])  # older rows were added
    pd.testing.assert_frame_equal(
        mine[cols].reset_index(drop=True), theirs[cols].reset_index(drop=True)
    )


def test_daily_read_codes_like_the_whole_history_on_duckdb_and_postgres(
    synthetic_wh, postgres_url, monkeypatch
):
    as_of = synthetic_wh["as_of"]
    cfg = RecConfig.from_settings()
    with warehouse.duckdb_connection() as con:  # the synthetic company has no sessions mart
        con.execute(
            "create table marts.fct_sessions as select session_id, "
            "min(customer_key) as customer_key, min(occurred_at) as started_at, "
            "case length(session_id) % 3 when 0 then 'Organic' when 1 then 'Paid' end "
            "as channel_group from marts.fct_product_interactions group by session_id"
        )
    _check_daily_read(as_of, cfg)

    tables = {t: warehouse.query_df(f"select * from marts.{t}") for t in MARTS}
    engine = sa.create_engine(warehouse.sqlalchemy_url(postgres_url))
    with engine.begin() as con:
        con.execute(sa.text("create schema marts"))
    for name, frame in tables.items():
        frame.to_sql(name, engine, schema="marts", index=False)
    engine.dispose()
    monkeypatch.setenv("C720_WAREHOUSE", postgres_url)
    _check_daily_read(as_of, cfg)
