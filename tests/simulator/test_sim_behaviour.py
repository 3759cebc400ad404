"""Behaviour tests: the latent model leaves the traces the pipeline is meant to find."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import combinations

import numpy as np
import pandas as pd
from sim_helpers import crm_table, read_events, truth

from simulator import churn_auc


def _person_of_events(out, max_days: int | None = None) -> pd.DataFrame:
    events = read_events(out, max_days)
    anon = truth(out, "anonymous_persons").set_index("anonymous_id")["person_id"]
    events["person_id"] = events["anonymous_id"].map(anon)
    events["date"] = pd.to_datetime(events["collector_timestamp"].str[:10]).dt.date
    return events


def test_churned_persons_go_silent(small):
    persons = truth(small, "persons")
    churned = persons[persons["churned"]].set_index("person_id")["churn_date"]
    assert len(churned) > 20
    events = _person_of_events(small)
    last_event = events.groupby("person_id")["date"].max()
    both = last_event.index.intersection(churned.index)
    assert len(both) > 10
    assert (last_event[both] < churned[both]).all()
    orders = crm_table(small, "orders").merge(truth(small, "contact_persons"), on="contact_id")
    orders["date"] = pd.to_datetime(orders["ordered_at"]).dt.date
    last_order = orders.groupby("person_id")["date"].max()
    both = last_order.index.intersection(churned.index)
    assert (last_order[both] < churned[both]).all()


def test_negative_tickets_raise_churn(medium):
    persons = truth(medium, "persons").set_index("person_id")
    tones = truth(medium, "ticket_tones")
    negative = set(tones.loc[tones["tone"].isin(["late", "return", "complaint"]), "person_id"])
    buyers = persons[persons["n_orders"] > 0]
    with_neg = buyers[buyers.index.isin(negative)]["churned"].mean()
    without = buyers[~buyers.index.isin(negative)]["churned"].mean()
    assert with_neg > without * 1.3, (with_neg, without)


def test_item_pairs_co_occur_far_above_chance(medium):
    items = crm_table(medium, "order_items")[["order_id", "product_id"]].drop_duplicates()
    n_orders = items["order_id"].nunique()
    p_item = items.groupby("product_id").size() / n_orders
    pairs: dict[tuple[int, int], int] = {}
    for _, group in items.groupby("order_id")["product_id"]:
        for a, b in combinations(sorted(group), 2):
            pairs[(a, b)] = pairs.get((a, b), 0) + 1
    top = sorted(pairs.items(), key=lambda kv: -kv[1])[:20]
    lifts = [count / n_orders / (p_item[a] * p_item[b]) for (a, b), count in top]
    assert np.median(lifts) > 5, lifts


def test_views_follow_true_affinity(medium):
    events = _person_of_events(medium, max_days=40)
    views = events[events["event_type"] == "product_view"].dropna(subset=["person_id"])
    aff = truth(medium, "item_affinities")
    top10 = aff[aff["rank"] <= 10]
    hit = views.merge(
        top10, left_on=["person_id", "product_id"], right_on=["person_id", "product_id"], how="left"
    )
    share_in_top10 = hit["rank"].notna().mean()
    n_products = crm_table(medium, "products").shape[0]
    assert share_in_top10 > 5 * 10 / n_products  # far above a random product's chance


def test_oracle_beats_recency(medium):
    summary = pd.read_json(medium / "simulation.json", typ="series")
    end = date.fromisoformat(summary["end"])
    result = churn_auc(medium, end - timedelta(days=90), horizon=90)
    assert result["eligible_customers"] > 500
    assert result["auc_oracle"] > result["auc_recency"] + 0.05, result
    assert result["auc_recency"] > 0.55


def test_a_company_too_small_for_tickets_still_writes_every_table(tmp_path) -> None:
    # 200 customers over 10 days (seed 5) happen to file no ticket at all.
    import sqlite3

    from simulator import SimulationConfig, generate

    summary = generate(SimulationConfig(customers=200, days=10, seed=5, out=tmp_path))
    assert summary["rows"]["tickets"] == 0
    with sqlite3.connect(tmp_path / "crm.sqlite") as con:
        assert con.execute("select count(*) from tickets").fetchone() == (0,)
