"""A company whose products have no category (issue #20): no category cap, full lists."""

from __future__ import annotations

import dataclasses
import json
import logging

from customer720 import warehouse
from ml.common.config import RecConfig
from ml.recs import data as rec_data
from ml.recs.rules import category_cap
from ml.recs.score import recommend
from ml.recs.train import train_recommender


def _null_categories() -> None:
    with warehouse.duckdb_connection() as con:
        con.execute("update marts.dim_products set category = null")
        con.execute("update marts.fct_order_items set category = null")


def test_no_product_categories_means_no_category_cap(synthetic_wh_noweb, caplog):
    as_of = synthetic_wh_noweb["as_of"]
    _null_categories()
    cfg = dataclasses.replace(RecConfig.from_settings(), als=False)
    assert cfg.max_per_category == 5  # the default rule, which would cut lists to 5
    cap, why = category_cap(rec_data.load(as_of), cfg)
    assert cap is None and "0 real product categories" in why

    with caplog.at_level(logging.WARNING, logger="ml.recs.rules"):
        t = train_recommender(as_of, cfg)
        s = recommend(as_of, cfg)
    assert s["rows"] > 0
    recs = warehouse.query_df(
        "select customer_key, count(*) as n from ml.product_recommendations group by 1"
    )
    assert (recs["n"] == cfg.k).all(), recs["n"].value_counts()
    assert s["coverage"]["full_list_share"] == 1.0
    assert 0 < s["coverage"]["catalogue_share"] <= 1

    rules = t["rules"]
    assert rules["category_cap"] is None
    assert abs(rules["map_cost"]) < 1e-12  # no rule in force: nothing lost
    report = (cfg.reports_dir / as_of.isoformat() / "report.html").read_text()
    assert "category cap: off" in report and "Example lists" in report
    assert "Coverage" in report and "{" not in report.split("<body>")[1].split("<h2>")[0]
    assert json.loads((cfg.reports_dir / as_of.isoformat() / "scoring.json").read_text())[
        "examples"
    ]


def test_a_configured_cap_with_real_categories_is_kept_and_costed(synthetic_wh_noweb):
    as_of = synthetic_wh_noweb["as_of"]
    cfg = dataclasses.replace(RecConfig.from_settings(), als=False, max_per_category=2)
    cap, _ = category_cap(rec_data.load(as_of), cfg)
    assert cap == 2
    t = train_recommender(as_of, cfg)
    rules = t["rules"]
    assert rules["category_cap"] == 2
    assert rules["map_cost"] == rules["map_without_rules"] - rules["map_with_rules"]
    report = (cfg.reports_dir / as_of.isoformat() / "report.html").read_text()
    assert "cost of the rules" in report
