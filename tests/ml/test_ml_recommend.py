"""Recommendations: output contract, discontinued products, no web data, offline metrics."""

from __future__ import annotations

import json

import pandas as pd

from customer720 import warehouse
from ml.config import RecConfig
from ml.recommend import blend, generate_candidates, recommend


def _check_output(as_of) -> pd.DataFrame:
    recs = warehouse.query_df("select * from ml.product_recommendations")
    products = warehouse.query_df("select product_id, is_discontinued from marts.dim_products")
    discontinued = set(products.loc[products["is_discontinued"], "product_id"])
    assert len(discontinued) > 0
    assert not set(recs["product_id"]) & discontinued
    assert recs.groupby("customer_key").size().max() <= 10
    assert recs.duplicated(["customer_key", "product_id"]).sum() == 0
    assert recs["reason"].str.len().gt(0).all()
    ranks = recs.sort_values(["customer_key", "rank"]).groupby("customer_key")["rank"]
    assert ranks.apply(lambda r: list(r) == list(range(1, len(r) + 1))).all()
    return recs


def test_recommend_with_web_data(synthetic_wh):
    as_of = synthetic_wh["as_of"]
    s = recommend(as_of)
    assert s["web_data"] and s["rows"] > 0
    recs = _check_output(as_of)
    assert recs["reason"].str.startswith("bought together with").any()
    assert recs["reason"].isin(["you viewed it", "you left it in your cart"]).any()
    off = s["offline"]
    assert off["blend"]["map_at_k"] > off["popularity"]["map_at_k"]
    assert 0 < off["blend"]["candidate_recall"] <= 1
    metrics = json.loads(
        (RecConfig.from_settings().reports_dir / as_of.isoformat() / "metrics.json").read_text()
    )
    assert {"blend", "popularity", "repurchase_then_popular", "item_item"} <= set(
        metrics["offline"]
    )
    again = recommend(as_of, evaluate=False)  # idempotent per as_of_date
    assert again["rows"] == s["rows"]
    assert warehouse.scalar("select count(*) from ml.product_recommendations") == s["rows"]


def test_recommend_without_web_data(synthetic_wh_noweb):
    as_of = synthetic_wh_noweb["as_of"]
    s = recommend(as_of)
    assert not s["web_data"] and s["rows"] > 0
    assert not {"viewed", "co_view"} & set(s["reasons"])
    recs = _check_output(as_of)
    assert recs["customer_key"].nunique() == s["customers"]
    assert s["offline"]["blend"]["map_at_k"] > s["offline"]["popularity"]["map_at_k"]


def test_blend_on_hand_made_candidates():
    items = pd.DataFrame(
        {
            "customer_key": ["a", "a", "b", "b", "c"],
            "order_id": [1, 1, 2, 2, 3],
            "product_id": [10, 11, 10, 11, 12],
            "category": ["x", "x", "x", "x", "y"],
            "quantity": 1,
            "line_amount": 1.0,
            "order_date": pd.to_datetime(["2026-01-01"] * 4 + ["2026-01-02"]),
            "ordered_at": pd.to_datetime(["2026-01-01 10:00"] * 4 + ["2026-01-02 10:00"]),
        }
    )
    products = pd.DataFrame(
        {
            "product_id": [10, 11, 12],
            "name": ["p10", "p11", "p12"],
            "category": ["x", "x", "y"],
            "brand": "b",
            "price": 1.0,
            "is_discontinued": [False, True, False],
        }
    )
    inter = pd.DataFrame(
        columns=[
            "customer_key",
            "session_id",
            "product_id",
            "interaction_type",
            "occurred_at",
            "occurred_date",
        ]
    )
    cfg = RecConfig()
    cands = generate_candidates(items, inter, products, ["a", "c"], pd.Timestamp("2026-01-03"), cfg)
    assert 11 not in set(cands["product_id"])  # discontinued never appears
    recs = blend(cands, cfg.weights, 10)
    a = recs[recs["customer_key"] == "a"].sort_values("rank")
    assert a["product_id"].iat[0] == 10 and a["source"].iat[0] == "repurchase"
    c = recs[recs["customer_key"] == "c"]
    assert set(c["product_id"]) == {10, 12}


def test_ranker_path_when_forced(synthetic_wh):
    """With a negative margin the LambdaRank re-ranker is used; the contract still holds."""
    import dataclasses

    cfg = dataclasses.replace(RecConfig.from_settings(), ranker_margin=-1.0)
    s = recommend(synthetic_wh["as_of"], cfg)
    assert "ranker" in s["offline"]
    assert s["method"] == "ranker" and s["model_version"] == "ranker-v1"
    recs = _check_output(synthetic_wh["as_of"])
    assert (recs["model_version"] == "ranker-v1").all()
