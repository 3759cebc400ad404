"""Daily ranking costs what changed: only customers whose inputs changed (new activity, an
identity merge), new customers and a rotation slice are re-ranked; erased customers are
dropped; the published table stays complete, and the re-ranked lists equal a full re-rank."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pandas as pd

from customer720 import warehouse
from ml.common.config import RecConfig
from ml.recs.score import recommend, rotation_slot
from ml.recs.train import train_recommender

REFRESH = 7


def _keys(sql: str) -> set[str]:
    return set(warehouse.query_df(sql)["customer_key"].astype(str))


def _active(as_of: dt.date) -> set[str]:
    """Buyers of the last 365 days and web visitors (view/cart) of the last 30."""
    t = f"timestamp '{as_of} 00:00:00'"
    return _keys(
        "select customer_key from marts.fct_order_items where coalesce(is_purchase, false) "
        f"and ordered_at > {t} - interval 365 day and ordered_at <= {t} "
        "union select customer_key from marts.fct_product_interactions "
        "where customer_key is not null and interaction_type in ('view', 'cart') "
        f"and occurred_at > {t} - interval 30 day and occurred_at <= {t}"
    )


def _active_in(start: dt.date, end: dt.date) -> set[str]:
    """Customers with an order line or product interaction in (start, end] (independent of
    the code under test: straight from the marts)."""
    w = f"> timestamp '{start} 00:00:00' and {{c}} <= timestamp '{end} 00:00:00'"
    return _keys(
        "select customer_key from marts.fct_order_items where coalesce(is_purchase, false) "
        f"and ordered_at {w.format(c='ordered_at')} "
        "union select customer_key from marts.fct_product_interactions "
        "where customer_key is not null and interaction_type in ('view', 'cart') "
        f"and occurred_at {w.format(c='occurred_at')}"
    )


def _recs(as_of: dt.date) -> pd.DataFrame:
    return warehouse.query_df(
        "select customer_key, rank, product_id, score, reason, model_version "
        f"from ml.product_recommendations where as_of_date = date '{as_of}' "
        "order by customer_key, rank"
    ).astype({"customer_key": str})


def _ranked_today(as_of: dt.date) -> set[str]:
    return _keys(
        "select customer_key from ml.recommendation_inputs "
        f"where as_of_date = date '{as_of}' and ranked_as_of = date '{as_of}'"
    )


def test_daily_rerank_touches_changed_customers_and_the_rotation_only(synthetic_wh):
    day2 = synthetic_wh["as_of"]
    day1 = day2 - dt.timedelta(days=3)  # a few days: enough new activity on a small company
    cfg = dataclasses.replace(RecConfig.from_settings(), als=False, refresh_days=REFRESH)
    train_recommender(day1, cfg)
    first = recommend(day1, cfg)
    assert first["plan"] == {"all": first["customers"]}  # no previous ranking: everyone

    # An identity merge: person B turns out to be person A (B's history moves to A's key,
    # none of it new); person C is erased. Both had lists on day 1, no activity since.
    before = _recs(day1)
    quiet = sorted(
        set(before["customer_key"])
        - _active_in(day1, day2)
        - _active_in(day2, day2 + dt.timedelta(days=1))
    )
    a, b, c = quiet[:3]
    with warehouse.duckdb_connection() as con:
        for table in ("fct_order_items", "fct_orders", "fct_product_interactions"):
            con.execute(f"update marts.{table} set customer_key = ? where customer_key = ?", [a, b])
            con.execute(f"delete from marts.{table} where customer_key = ?", [c])

    daily = recommend(day2, cfg)
    incremental = _recs(day2)
    ranked = _ranked_today(day2)
    active = _active(day2)
    # complete and consistent: every active customer has a list, nobody else has one
    assert set(incremental["customer_key"]) == active and b not in active and c not in active
    # who was re-ranked: exactly new activity, the merge, new customers and today's slot
    # (plus the slots of the days skipped since day 1)
    changed = (_active_in(day1, day2) | {a} | (active - set(before["customer_key"]))) & active
    keys = sorted(active)
    slots = {(day1 + dt.timedelta(days=i)).toordinal() % REFRESH for i in range(1, 4)}
    rotation = {k for k, s in zip(keys, rotation_slot(keys, REFRESH), strict=True) if s in slots}
    assert ranked == changed | rotation
    assert a in ranked and len(ranked) < len(active)  # not a full re-rank
    rest = active - changed
    assert 0 < len(rotation & rest) < len(rest)  # a slice of the rest, not all of it
    assert daily["ranked"] == len(ranked) and daily["plan"]["carried"] == len(active - ranked)

    # carried lists are the day-1 lists, unchanged
    kept = sorted(active - ranked)
    old = before[before["customer_key"].isin(kept)].reset_index(drop=True)
    new = incremental[incremental["customer_key"].isin(kept)].reset_index(drop=True)
    pd.testing.assert_frame_equal(old, new)

    # the re-ranked lists equal a full re-rank of the same day
    full = recommend(day2, dataclasses.replace(cfg, refresh_days=1))
    assert full["plan"] == {"all": len(active)}
    everyone = _recs(day2)
    mine = sorted(ranked)
    pd.testing.assert_frame_equal(
        incremental[incremental["customer_key"].isin(mine)].reset_index(drop=True),
        everyone[everyone["customer_key"].isin(mine)].reset_index(drop=True),
    )


def test_a_new_model_version_reranks_everyone(synthetic_wh):
    day2 = synthetic_wh["as_of"]
    day1 = day2 - dt.timedelta(days=1)
    cfg = dataclasses.replace(RecConfig.from_settings(), als=False, refresh_days=REFRESH)
    train_recommender(day1, cfg)
    recommend(day1, cfg)
    with warehouse.duckdb_connection() as con:  # as if day 1 had been ranked by another model
        con.execute("update ml.recommendation_inputs set model_version = 'older-model'")
    s = recommend(day2, cfg)
    assert s["plan"] == {"all": s["customers"]} and s["ranked"] == s["customers"]
    assert _ranked_today(day2) == _active(day2)
