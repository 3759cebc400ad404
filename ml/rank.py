"""Optional learning-to-rank re-ranker (LightGBM LambdaRank) over the blend's candidates.

Each (customer, candidate product) gets features: the per-source normalised scores, the
product's recent popularity and price, how often and how recently the customer bought it,
and the customer's share of purchases in the product's category. The ranker is trained on
a past window (candidates at T − d, label = bought in (T − d, T]) and applied at T. It is
used only when it beats the transparent blend offline (see :func:`ml.recommend.recommend`).
"""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.config import RecConfig

log = logging.getLogger(__name__)


def candidate_features(
    cands: pd.DataFrame,
    items: pd.DataFrame,
    products: pd.DataFrame,
    as_of: pd.Timestamp,
    cfg: RecConfig,
) -> pd.DataFrame:
    """One row per (customer_key, product_id) with numeric ranking features."""
    c = cands.copy()
    c["norm"] = c["score"] / c.groupby(["customer_key", "source"])["score"].transform("max")
    wide = c.pivot_table(
        index=["customer_key", "product_id"],
        columns="source",
        values="norm",
        aggfunc="max",
        fill_value=0.0,
    )
    for source in cfg.weights:
        if source not in wide:
            wide[source] = 0.0
    wide = wide[list(cfg.weights)].add_prefix("src_").reset_index()
    window = items[items["order_date"] > as_of - pd.Timedelta(days=cfg.popular_window_days)]
    pop = window.groupby("product_id")["customer_key"].nunique()
    wide["popularity"] = np.log1p(wide["product_id"].map(pop).fillna(0).to_numpy(float))
    prod = products.set_index("product_id")
    wide["price"] = wide["product_id"].map(prod["price"]).astype(float)
    mine = items[items["customer_key"].isin(set(wide["customer_key"]))]
    bought = mine.groupby(["customer_key", "product_id"]).agg(
        times_bought=("order_id", "nunique"), last_bought=("order_date", "max")
    )
    wide = wide.join(bought, on=["customer_key", "product_id"])
    wide["times_bought"] = wide["times_bought"].fillna(0).astype(float)
    wide["days_since_bought"] = (as_of - wide.pop("last_bought")).dt.days.astype(float)
    share = mine.groupby(["customer_key", "category"]).size()
    share = (share / share.groupby(level=0).transform("sum")).rename("category_share")
    wide["category"] = wide["product_id"].map(prod["category"])
    wide = wide.join(share, on=["customer_key", "category"]).drop(columns="category")
    wide["category_share"] = wide["category_share"].fillna(0.0)
    n_orders = mine.groupby("customer_key")["order_id"].nunique()
    wide["customer_orders"] = wide["customer_key"].map(n_orders).fillna(0).astype(float)
    return wide.sort_values(["customer_key", "product_id"]).reset_index(drop=True)


FEATURES_EXCLUDED = ("customer_key", "product_id", "label")


def fit_ranker(train: pd.DataFrame, seed: int = 42, num_threads: int = 2) -> lgb.LGBMRanker | None:
    """Train on groups (customers) that have at least one purchased candidate; None if none."""
    groups = train.groupby("customer_key")["label"].transform("max") > 0
    train = train[groups]
    if train.empty or train["label"].nunique() < 2:
        log.warning("ranker: no customer with a purchased candidate in the training window")
        return None
    X = train.drop(columns=list(FEATURES_EXCLUDED))
    sizes = train.groupby("customer_key", sort=False).size().to_numpy()
    ranker = lgb.LGBMRanker(
        objective="lambdarank",
        n_estimators=150,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=20,
        random_state=seed,
        deterministic=True,
        force_row_wise=True,
        n_jobs=num_threads,
        verbose=-1,
    )
    ranker.fit(X, train["label"].to_numpy(int), group=sizes)
    return ranker


def rank(ranker: lgb.LGBMRanker, feats: pd.DataFrame, k: int) -> pd.DataFrame:
    """Top-k per customer by ranker score: customer_key, product_id, score, rank."""
    X = feats.drop(columns=[c for c in FEATURES_EXCLUDED if c in feats])
    out = feats[["customer_key", "product_id"]].copy()
    out["score"] = ranker.predict(X)
    out = out.sort_values(["customer_key", "score", "product_id"], ascending=[True, False, True])
    out = out.groupby("customer_key").head(k).copy()
    out["rank"] = out.groupby("customer_key").cumcount() + 1
    return out.reset_index(drop=True)


def label(
    feats: pd.DataFrame, items: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp
) -> pd.DataFrame:
    """label = 1 when the customer bought the product in (start, end]."""
    bought = items[(items["ordered_at"] > start) & (items["ordered_at"] <= end)]
    pairs = set(zip(bought["customer_key"], bought["product_id"], strict=True))
    keys = zip(feats["customer_key"], feats["product_id"], strict=True)
    return feats.assign(label=[int(p in pairs) for p in keys])
