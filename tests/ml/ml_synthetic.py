"""A small synthetic company for the ML tests, written into a real DuckDB warehouse.

Ground truth with signal: every customer has a hidden churn date; orders follow a Poisson
process until then; negative support tickets pile up and web sessions fade in the weeks
before it. Products come in categories with "partner" products bought together, so
co-occurrence and category popularity carry signal for the recommender.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from customer720 import warehouse

AS_OF = dt.date(2026, 6, 30)
COUNTRIES = ["DE", "FR", "GB", "US"]
CATEGORIES = ["books", "garden", "kitchen", "sports", "toys"]


def cutoff_grid(as_of: dt.date = AS_OF, n_back: int = 12) -> list[pd.Timestamp]:
    return [pd.Timestamp(as_of) - pd.Timedelta(days=30 * k) for k in range(n_back, -1, -1)]


def make_products(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    pid = 1001
    for cat in CATEGORIES:
        for j in range(8):
            rows.append(
                {
                    "product_id": pid,
                    "name": f"{cat} item {j}",
                    "category": cat,
                    "brand": f"brand{j % 3}",
                    "price": float(rng.integers(5, 120)),
                    "is_discontinued": j == 7,
                }
            )  # the 8th product of each category
            pid += 1
    return pd.DataFrame(rows)


def simulate(n_customers: int = 500, as_of: dt.date = AS_OF, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    end = pd.Timestamp(as_of)
    start = end - pd.Timedelta(days=900)
    products = make_products(seed)
    by_cat = {c: products.loc[products["category"] == c, "product_id"].tolist() for c in CATEGORIES}
    cat_of = dict(zip(products["product_id"], products["category"], strict=True))
    price_of = dict(zip(products["product_id"], products["price"], strict=True))
    pop_w = np.array([0.3, 0.2, 0.15, 0.1, 0.08, 0.07, 0.05, 0.05])
    orders, items, tickets, sessions, inter = [], [], [], [], []
    countries: dict[str, str] = {}
    oid = item_id = sid = 1
    for i in range(n_customers):
        key = f"c{i:05d}"
        signup = start + pd.Timedelta(days=float(rng.uniform(0, 820)))
        churn_at = signup + pd.Timedelta(days=float(rng.exponential(420)))
        rate = rng.gamma(3.0, 1 / (3.0 * 35))  # orders per day, mean 1/35
        fav = CATEGORIES[rng.integers(len(CATEGORIES))]
        countries[key] = COUNTRIES[rng.integers(len(COUNTRIES))]
        t, bought = signup, []
        stop = min(churn_at, end)
        while t <= stop:
            cancelled = rng.random() < 0.05
            cat = fav if rng.random() < 0.75 else CATEGORIES[rng.integers(len(CATEGORIES))]
            if bought and rng.random() < 0.25:
                first = bought[rng.integers(len(bought))]
            else:
                first = by_cat[cat][rng.choice(8, p=pop_w)]
            basket = [first]
            if rng.random() < 0.5:  # partner product: bought together
                idx = (first - 1001) % 8
                basket.append(by_cat[cat_of[first]][idx ^ 1])
            total = 0.0
            for p in basket:
                cat = cat_of[p]
                price = float(price_of[p])
                items.append(
                    {
                        "order_item_id": item_id,
                        "order_id": oid,
                        "customer_key": key,
                        "product_id": p,
                        "category": cat,
                        "quantity": 1,
                        "unit_price": price,
                        "line_amount": price,
                        "ordered_at": t,
                        "status": "cancelled" if cancelled else "delivered",
                        "is_purchase": not cancelled,
                    }
                )
                item_id += 1
                total += price
            orders.append(
                {
                    "order_id": oid,
                    "customer_key": key,
                    "contact_id": i,
                    "ordered_at": t,
                    "updated_at": t,  # its status is as placed: known from then on
                    "order_date": t.normalize(),
                    "status": "cancelled" if cancelled else "delivered",
                    "channel": "web",
                    "total_amount": total,
                    "item_count": len(basket),
                    "is_cancelled": cancelled,
                    "is_returned": False,
                    "is_purchase": not cancelled,
                    "net_amount": 0.0 if cancelled else total,
                    "is_late_delivery": False,
                }
            )
            if not cancelled:
                bought.extend(basket)
            oid += 1
            t = t + pd.Timedelta(days=float(rng.exponential(1 / rate)))
        # tickets: background + a burst of negative ones before churning
        for day in np.cumsum(rng.exponential(200, 10)):
            tt = signup + pd.Timedelta(days=float(day))
            if tt <= end:
                tickets.append({"customer_key": key, "at": tt, "negative": rng.random() < 0.15})
        for day in np.cumsum(rng.exponential(18, 6)):
            tt = churn_at - pd.Timedelta(days=75) + pd.Timedelta(days=float(day))
            if signup <= tt <= min(churn_at, end):
                tickets.append({"customer_key": key, "at": tt, "negative": rng.random() < 0.8})
        # web sessions: frequent while engaged, fading 45 days before churn
        t = signup
        while t <= end:
            engaged = t < churn_at - pd.Timedelta(days=45)
            sessions.append({"customer_key": key, "at": t})
            for _ in range(rng.integers(1, 3)):
                cat = fav if rng.random() < 0.8 else CATEGORIES[rng.integers(len(CATEGORIES))]
                p = by_cat[cat][rng.choice(8, p=pop_w)]
                kind = "cart" if rng.random() < 0.2 else "view"
                inter.append(
                    {
                        "customer_key": key,
                        "session_id": f"s{sid}",
                        "product_id": p,
                        "interaction_type": kind,
                        "occurred_at": t,
                    }
                )
            sid += 1
            t = t + pd.Timedelta(days=float(rng.exponential(8 if engaged else 60)))
    return {
        "orders": pd.DataFrame(orders),
        "items": pd.DataFrame(items),
        "products": products,
        "tickets": pd.DataFrame(tickets),
        "sessions": pd.DataFrame(sessions),
        "interactions": pd.DataFrame(inter),
        "countries": countries,
    }


def build_features(sim: dict, cutoffs: list[pd.Timestamp], seed: int = 0) -> pd.DataFrame:
    """ml.customer_features rows, point in time: only data on or before each cutoff."""
    rng = np.random.default_rng(seed + 1)
    orders = sim["orders"][~sim["orders"]["is_cancelled"]]
    tickets, sessions = sim["tickets"], sim["sessions"]
    frames = []
    for c in cutoffs:
        o = orders[orders["ordered_at"] <= c]  # known at cutoff_at = c 00:00
        if o.empty:
            continue
        g = o.groupby("customer_key")
        f = pd.DataFrame(
            {
                "recency_days": (c - g["ordered_at"].max()).dt.days.astype("int32"),
                "frequency": g.size().astype("int64"),
                "monetary": g["total_amount"].sum(),
                "orders_last_90d": o[o["ordered_at"] > c - pd.Timedelta(days=90)]
                .groupby("customer_key")
                .size(),
            }
        )
        tk = tickets[(tickets["at"] <= c) & (tickets["at"] > c - pd.Timedelta(days=90))]
        f["tickets_last_90d"] = tk.groupby("customer_key").size()
        f["negative_tickets_last_90d"] = tk[tk["negative"]].groupby("customer_key").size()
        sent = np.where(tk["negative"], -0.6, 0.4) + rng.normal(0, 0.1, len(tk))
        f["avg_ticket_sentiment"] = (
            pd.Series(sent, index=tk.index).groupby(tk["customer_key"]).mean()
        )
        ss = sessions[(sessions["at"] <= c) & (sessions["at"] > c - pd.Timedelta(days=30))]
        f["sessions_last_30d"] = ss.groupby("customer_key").size()
        for col in (
            "orders_last_90d",
            "tickets_last_90d",
            "negative_tickets_last_90d",
            "sessions_last_30d",
        ):
            f[col] = f[col].fillna(0).astype("int64")
        f["emails_clicked_last_90d"] = rng.poisson(1.0, len(f)).astype("int64")
        f["has_newsletter"] = rng.random(len(f)) < 0.5
        nps = rng.integers(0, 11, len(f)).astype(float)
        nps[rng.random(len(f)) < 0.6] = np.nan  # most people never answered a survey
        f["last_nps_score"] = pd.array(nps, dtype="Float64").astype("Int32")  # nullable, as dbt
        f["country"] = [sim["countries"][k] for k in f.index]
        f = f.reset_index().rename(columns={"index": "customer_key"})
        f.insert(1, "cutoff_date", c)
        f.insert(2, "cutoff_at", c)  # like the dbt model: a timestamp, not a feature
        frames.append(f)
    out = pd.concat(frames, ignore_index=True)
    out["cutoff_date"] = pd.to_datetime(out["cutoff_date"]).dt.date
    out["country"] = out["country"].astype(str)
    return out


def _text_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Ids as the marts type them: text (ingest/contract.json)."""
    ids = [c for c in ("order_id", "contact_id", "product_id") if c in frame]
    return frame.astype({c: str for c in ids}) if len(frame) else frame


def write_warehouse(sim: dict, features: pd.DataFrame, web: bool = True) -> None:
    orders = _text_ids(sim["orders"])
    orders["order_date"] = orders["order_date"].dt.date
    warehouse.replace_rows(features, "ml", "customer_features")
    warehouse.replace_rows(orders, "marts", "fct_orders")
    warehouse.replace_rows(_text_ids(sim["items"]), "marts", "fct_order_items")
    warehouse.replace_rows(_text_ids(sim["products"]), "marts", "dim_products")
    inter = _text_ids(sim["interactions"])
    if not web:
        inter = inter.iloc[0:0]
    warehouse.replace_rows(inter, "marts", "fct_product_interactions")


def build(n_customers: int = 500, seed: int = 0, web: bool = True, as_of: dt.date = AS_OF) -> dict:
    sim = simulate(n_customers, as_of, seed)
    features = build_features(sim, cutoff_grid(as_of), seed)
    write_warehouse(sim, features, web=web)
    return {"sim": sim, "features": features, "as_of": as_of}
