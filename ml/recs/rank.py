"""LightGBM LambdaRank over the candidates, with point-in-time features.

One row per (customer, candidate product) at a cutoff; every feature uses only the history
known at that cutoff (:class:`ml.recs.candidates.Snapshot`):

- per candidate source: its score and the product's rank in it (NaN when the source did not
  propose it), and how many sources proposed it;
- the product: distinct buyers in the last 7 / 28 days and the popularity window, the trend
  (last week against the three before), product views in the last week (web), the share of
  its buyers who bought it again and its median repeat gap, its price and its price
  against its category's typical price;
- customer × category: the category's share of the customer's purchases and of their
  recent views, days since the customer last bought / viewed in it;
- price against the customer's usual price (log of product price / median unit price paid);
- customer × product: times bought, days since the last purchase / view / cart, views in
  the recent-view window, the customer's mean gap between repeat purchases of it, and the
  repurchase cycle (days since the last purchase / the product's median repeat gap);
- the customer: orders, days since the last order, distinct products, recent views.

Training rows come from past weekly cutoffs (label: bought in the week after), early stopping
on a later week; the evaluation week is never seen by training (see ml.recs.train).
"""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.recs.candidates import SOURCES, Snapshot
from ml.recs.data import CART, VIEW

log = logging.getLogger(__name__)

ITEM_FEATURES = (
    "item_buyers_7d",
    "item_buyers_28d",
    "item_buyers_window",
    "item_trend",
    "item_views_7d",
    "item_repeat_rate",
    "item_repeat_gap_days",
    "item_price",
    "item_price_vs_category",
)
PAIR_FEATURES = (
    "category_share_orders",
    "category_share_views",
    "days_since_category_purchase",
    "days_since_category_view",
    "price_vs_customer",
    "times_bought",
    "days_since_purchase",
    "days_since_view",
    "days_since_cart",
    "recent_views",
    "own_repeat_gap_days",
    "repurchase_cycle",
)
CUSTOMER_FEATURES = ("cust_orders", "cust_days_since_order", "cust_products", "cust_recent_views")
FEATURES = (
    *(f"{s}_score" for s in SOURCES),
    *(f"{s}_rank" for s in SOURCES),
    "n_sources",
    *ITEM_FEATURES,
    *PAIR_FEATURES,
    *CUSTOMER_FEATURES,
)


def _pair_key(cust, item, n_items: int) -> np.ndarray:
    return np.asarray(cust, np.int64) * n_items + np.asarray(item, np.int64)


def _lookup(keys: np.ndarray, table: pd.Series) -> np.ndarray:
    """table (indexed by int64 key) values at keys, NaN where absent."""
    return table.reindex(keys).to_numpy(float)


def _wide(long: pd.DataFrame, n_items: int) -> pd.DataFrame:
    """cust, item, <source>_score, <source>_rank, n_sources: one row per candidate."""
    key = _pair_key(long["cust"], long["item"], n_items)
    uniq, inv = np.unique(key, return_inverse=True)
    out = {"cust": (uniq // n_items).astype(np.int32), "item": (uniq % n_items).astype(np.int32)}
    src = long["source"].to_numpy()
    for code, name in enumerate(SOURCES):
        score = np.full(len(uniq), np.nan, np.float32)
        rank = np.full(len(uniq), np.nan, np.float32)
        m = src == code
        score[inv[m]] = long["score"].to_numpy(float)[m]
        rank[inv[m]] = long["rank"].to_numpy(float)[m]
        out[f"{name}_score"], out[f"{name}_rank"] = score, rank
    out["n_sources"] = np.bincount(inv, minlength=len(uniq)).astype(np.float32)
    return pd.DataFrame(out)


def candidate_features(snap: Snapshot, long: pd.DataFrame) -> pd.DataFrame:
    """The model matrix (cust, item, FEATURES...) for the candidates ``long`` at ``snap.at``."""
    d, n = snap.data, snap.data.n_items
    wide = _wide(long, n)
    item = wide["item"].to_numpy()
    cust = wide["cust"].to_numpy()
    key = _pair_key(cust, item, n)
    cat = d.category[item]
    f: dict[str, np.ndarray] = {}

    # the product
    rate, gap = snap.repeat_stats
    log_price = np.log(np.where(d.price > 0, d.price, np.nan))
    cat_mean = pd.Series(log_price).groupby(d.category).mean()
    f["item_buyers_7d"] = snap.buyers_7d[item]
    f["item_buyers_28d"] = snap.buyers_28d[item]
    f["item_buyers_window"] = snap.buyers_popular[item]
    f["item_trend"] = snap.trend[item]
    f["item_views_7d"] = snap.views_7d[item] if d.has_web else np.full(len(item), np.nan)
    f["item_repeat_rate"] = rate[item]
    f["item_repeat_gap_days"] = gap[item]
    f["item_price"] = d.price[item]
    f["item_price_vs_category"] = log_price[item] - cat_mean.reindex(cat).to_numpy()

    # the customer's own history (only the customers in the frame)
    who = np.unique(cust)
    lines = snap.lines[snap.lines["cust"].isin(who).to_numpy()]
    web = snap.web[snap.web["cust"].isin(who).to_numpy()] if d.has_web else snap.web
    recent = web[web["age"] <= snap.cfg.recent_view_days] if d.has_web else web

    by_cust = lines.groupby("cust")
    cust_orders = by_cust["order_id"].nunique()
    f["cust_orders"] = cust_orders.reindex(cust).fillna(0).to_numpy(float)
    f["cust_days_since_order"] = by_cust["age"].min().reindex(cust).to_numpy(float)
    f["cust_products"] = by_cust["item"].nunique().reindex(cust).fillna(0).to_numpy(float)
    f["cust_recent_views"] = (
        recent.groupby("cust").size().reindex(cust).fillna(0).to_numpy(float)
        if d.has_web
        else np.full(len(cust), np.nan)
    )
    usual_price = by_cust["unit_price"].median()
    with np.errstate(divide="ignore", invalid="ignore"):
        f["price_vs_customer"] = np.log(d.price[item] / usual_price.reindex(cust).to_numpy(float))

    # customer × category
    n_cat = len(d.categories)
    ckey = np.asarray(cust, np.int64) * n_cat + cat

    def per_category(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """(share of the customer's rows, days since the latest) per cust × category key."""
        k = frame["cust"].to_numpy(np.int64) * n_cat + d.category[frame["item"].to_numpy()]
        ages = pd.Series(frame["age"].to_numpy(), index=k).groupby(level=0)
        counts = ages.size()
        totals = frame.groupby("cust").size().reindex(counts.index // n_cat).to_numpy()
        return counts / totals, ages.min()

    share, latest = per_category(lines)
    f["category_share_orders"] = np.nan_to_num(_lookup(ckey, share), nan=0.0)
    f["days_since_category_purchase"] = _lookup(ckey, latest)
    if d.has_web:
        f["category_share_views"] = np.nan_to_num(_lookup(ckey, per_category(recent)[0]), nan=0.0)
        f["days_since_category_view"] = _lookup(ckey, per_category(web)[1])
    else:
        f["category_share_views"] = np.full(len(cust), np.nan)
        f["days_since_category_view"] = np.full(len(cust), np.nan)

    # customer × product
    lkey = _pair_key(lines["cust"], lines["item"], n)
    pair = pd.DataFrame({"k": lkey, "order_id": lines["order_id"].to_numpy(), "age": lines["age"]})
    g = pair.groupby("k")
    times = g["order_id"].nunique()
    first, last = g["age"].max(), g["age"].min()
    f["times_bought"] = np.nan_to_num(_lookup(key, times), nan=0.0)
    f["days_since_purchase"] = _lookup(key, last)
    own_gap = (first - last) / (times - 1).where(times > 1)
    f["own_repeat_gap_days"] = _lookup(key, own_gap)
    with np.errstate(divide="ignore", invalid="ignore"):
        f["repurchase_cycle"] = f["days_since_purchase"] / gap[item]
    if d.has_web:
        for kind, name in ((VIEW, "days_since_view"), (CART, "days_since_cart")):
            w = web[web["kind"] == kind]
            f[name] = _lookup(
                key,
                pd.Series(w["age"].to_numpy(), index=_pair_key(w["cust"], w["item"], n))
                .groupby(level=0)
                .min(),
            )
        rv = (
            pd.Series(1.0, index=_pair_key(recent["cust"], recent["item"], n))
            .groupby(level=0)
            .sum()
        )
        f["recent_views"] = np.nan_to_num(_lookup(key, rv), nan=0.0)
    else:
        for name in ("days_since_view", "days_since_cart", "recent_views"):
            f[name] = np.full(len(key), np.nan)

    for name in FEATURES:
        if name in f:
            wide[name] = np.asarray(f[name], np.float32)
    return wide[["cust", "item", *FEATURES]]


def label(feats: pd.DataFrame, bought: pd.DataFrame, n_items: int) -> np.ndarray:
    """1 where the customer bought the product in the label window (``bought``: cust, item)."""
    pos = np.unique(_pair_key(bought["cust"], bought["item"], n_items))
    return np.isin(_pair_key(feats["cust"], feats["item"], n_items), pos).astype(np.int8)


def predict(booster: lgb.Booster, feats: pd.DataFrame, num_threads: int) -> np.ndarray:
    """The ranker's scores for candidate rows (threads as :func:`threads_for`)."""
    threads = threads_for(len(feats), num_threads)
    return booster.predict(feats[booster.feature_name()], num_threads=threads)


def threads_for(rows: int, num_threads: int) -> int:
    """One thread for small data: on a busy shared machine OpenMP threads waiting for each
    other made a 1,000-row fit 18x slower with 2 threads than with 1 (measured)."""
    return 1 if rows < 200_000 else num_threads


def _groups(frame: pd.DataFrame) -> np.ndarray:
    """Group sizes of a frame whose rows of one query (``qid``: week × customer) are adjacent."""
    return frame.groupby("qid", sort=False).size().to_numpy()


def useful_groups(frame: pd.DataFrame) -> pd.DataFrame:
    """Only customers with at least one purchased candidate teach the ranker anything."""
    return frame[frame.groupby("qid")["label"].transform("max").to_numpy() > 0]


def fit_ranker(
    train: pd.DataFrame, valid: pd.DataFrame, k: int, seed: int, num_threads: int
) -> lgb.LGBMRanker | None:
    """LambdaRank on ``train`` (several weeks, sorted by week and customer), early stopping
    on MAP@k of ``valid`` (a later week). None when either has no useful customer.

    On the 10k simulated company the validation MAP@10 peaked after 10-25 trees and fell
    after 100 (0.1655 at 25, 0.1542 at 200): early stopping, not a fixed size."""
    train, valid = useful_groups(train), useful_groups(valid)
    if train.empty or valid.empty:
        log.warning(
            "ranker: %d training and %d validation customers bought a candidate; need both > 0",
            train["cust"].nunique() if len(train) else 0,
            valid["cust"].nunique() if len(valid) else 0,
        )
        return None
    ranker = lgb.LGBMRanker(
        objective="lambdarank",
        metric="map",  # early stopping on MAP@k, the number the gate compares
        n_estimators=500,
        learning_rate=0.05,
        num_leaves=31,
        min_child_samples=20,
        subsample=0.8,
        subsample_freq=1,
        colsample_bytree=0.8,
        lambdarank_truncation_level=2 * k,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=threads_for(len(train), num_threads),
        verbose=-1,
    )
    ranker.fit(
        train[list(FEATURES)],
        train["label"].to_numpy(),
        group=_groups(train),
        eval_X=(valid[list(FEATURES)],),
        eval_y=(valid["label"].to_numpy(),),
        eval_group=[_groups(valid)],
        eval_at=[k],
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    log.info(
        "ranker: %d trees (best on the validation week), %d training rows, %d customers",
        ranker.best_iteration_,
        len(train),
        train["cust"].nunique(),
    )
    return ranker


def top_k(feats: pd.DataFrame, scores: np.ndarray, k: int) -> pd.DataFrame:
    """cust, item, score, rank: the k best per customer (ties: product code)."""
    out = feats[["cust", "item"]].assign(score=np.asarray(scores, float))
    out = out.sort_values(["cust", "score", "item"], ascending=[True, False, True])
    out = out.groupby("cust").head(k).copy()
    out["rank"] = out.groupby("cust").cumcount() + 1
    return out.reset_index(drop=True)
