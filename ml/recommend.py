"""Next-best-product recommendations: candidate generators + a transparent weighted blend.

Candidate sources (each scored per customer, then normalised to [0, 1] per customer):

- ``repurchase``        products the customer bought before (count, decayed by age);
- ``co_purchase``       products bought in the same orders as the customer's recent products;
- ``co_view``           products viewed in the same web sessions (only with web data);
- ``viewed``            products the customer recently viewed / carted but did not buy;
- ``category_popular``  best sellers in the customer's top categories;
- ``popular``           global best sellers (the fallback everybody gets).

score = Σ weight[source] × normalised source score; the reason shown is the source that
contributed most. Discontinued and unknown products are never recommended. Works with an
empty ``marts.fct_product_interactions`` (the web sources are simply empty).

``recommend(as_of)`` also runs an offline evaluation on a time split (fit up to
as_of − eval_days, judge on purchases after it) against simple baselines.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from customer720 import warehouse
from ml import data
from ml.config import RecConfig
from ml.evaluate import recommendation_metrics

log = logging.getLogger(__name__)

RECS_TABLE = "product_recommendations"
CAND_COLS = ["customer_key", "product_id", "source", "score", "via_product_id"]

# Baselines as blends: huge weight ratios make them lexicographic (source A, then B).
BASELINES: dict[str, dict[str, float]] = {
    "popularity": {"popular": 1.0},
    "repurchase_then_popular": {"repurchase": 1000.0, "popular": 1.0},
    "item_item": {"co_purchase": 1000.0, "co_view": 1000.0, "popular": 1.0},
}


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {
            c: pd.Series(dtype=t)
            for c, t in zip(
                CAND_COLS, ["object", "int64", "object", "float64", "float64"], strict=True
            )
        }
    )


def with_catalogue_category(items: pd.DataFrame, products: pd.DataFrame) -> pd.DataFrame:
    """Use the product's catalogue category (the order line's copy only as a fallback)."""
    cat = items["product_id"].map(products.set_index("product_id")["category"])
    return items.assign(category=cat.fillna(items["category"]))


def target_customers(
    items: pd.DataFrame, inter: pd.DataFrame, as_of: pd.Timestamp, cfg: RecConfig
) -> list[str]:
    """Buyers within the inactivity window, plus recent web visitors known by key."""
    recent = items[items["order_date"] > as_of - pd.Timedelta(days=cfg.inactivity_days)]
    keys = set(recent["customer_key"])
    if len(inter):
        web = inter[
            (inter["occurred_date"] > as_of - pd.Timedelta(days=cfg.recent_view_days))
            & inter["customer_key"].notna()
        ]
        keys |= set(web["customer_key"].astype(str))
    return sorted(keys)


def _popularity(items: pd.DataFrame, as_of: pd.Timestamp, days: int) -> pd.DataFrame:
    window = items[items["order_date"] > as_of - pd.Timedelta(days=days)]
    if window.empty:
        window = items
    return (
        window.groupby(["product_id", "category"], dropna=False)["customer_key"]
        .nunique()
        .rename("buyers")
        .reset_index()
        .sort_values(["buyers", "product_id"], ascending=[False, True])
    )


def _co_occurrence(baskets: pd.DataFrame, group: str, neighbours: int) -> pd.DataFrame:
    """Item-item similarity count(a,b) / sqrt(n_a n_b) over baskets (orders or sessions)."""
    b = baskets[[group, "product_id"]].drop_duplicates()
    if b.empty:
        return pd.DataFrame(columns=["product_id", "other_id", "sim"])
    n = b.groupby("product_id").size().rename("n")
    pairs = b.merge(b, on=group, suffixes=("", "_o"))
    pairs = pairs[pairs["product_id"] != pairs["product_id_o"]]
    counts = pairs.groupby(["product_id", "product_id_o"]).size().rename("c").reset_index()
    counts = counts.rename(columns={"product_id_o": "other_id"})
    counts["sim"] = counts["c"] / np.sqrt(
        counts["product_id"].map(n).to_numpy(float) * counts["other_id"].map(n).to_numpy(float)
    )
    counts = counts.sort_values(["product_id", "sim", "other_id"], ascending=[True, False, True])
    return counts.groupby("product_id").head(neighbours)[["product_id", "other_id", "sim"]]


def _from_seeds(seeds: pd.DataFrame, sim: pd.DataFrame, source: str) -> pd.DataFrame:
    if seeds.empty or sim.empty:
        return _empty()
    j = seeds.merge(sim, on="product_id")
    j = j.sort_values(["customer_key", "other_id", "sim"], ascending=[True, True, False])
    agg = j.groupby(["customer_key", "other_id"]).agg(
        score=("sim", "sum"), via_product_id=("product_id", "first")
    )
    agg = agg.reset_index().rename(columns={"other_id": "product_id"})
    agg["source"] = source
    return agg[CAND_COLS]


def generate_candidates(
    items: pd.DataFrame,
    inter: pd.DataFrame,
    products: pd.DataFrame,
    customers: list[str],
    as_of: pd.Timestamp,
    cfg: RecConfig,
    sources: set[str] | None = None,
) -> pd.DataFrame:
    """All candidate (customer, product, source, score) rows; allowed products only."""
    want = sources or set(cfg.weights)
    cust = pd.DataFrame({"customer_key": customers})
    mine = items[items["customer_key"].isin(set(customers))]
    frames = []
    if "repurchase" in want and len(mine):
        age = (as_of - mine["order_date"]).dt.days.to_numpy(float)
        rep = mine.assign(w=np.exp(-age / 180.0)).groupby(["customer_key", "product_id"])["w"].sum()
        rep = rep.rename("score").reset_index().assign(source="repurchase", via_product_id=np.nan)
        frames.append(rep[CAND_COLS])
    seeds = (
        mine.sort_values("order_date", ascending=False)
        .drop_duplicates(["customer_key", "product_id"])
        .groupby("customer_key")
        .head(cfg.seed_items)[["customer_key", "product_id"]]
    )
    if "co_purchase" in want:
        frames.append(
            _from_seeds(seeds, _co_occurrence(items, "order_id", cfg.neighbours), "co_purchase")
        )
    web = inter[inter["customer_key"].notna()] if len(inter) else inter
    if "co_view" in want and len(inter):
        web_seeds = pd.concat(
            [seeds, web[web["customer_key"].isin(set(customers))][["customer_key", "product_id"]]]
        ).drop_duplicates()
        frames.append(
            _from_seeds(web_seeds, _co_occurrence(inter, "session_id", cfg.neighbours), "co_view")
        )
    if "viewed" in want and len(web):
        recent = web[
            (web["occurred_date"] > as_of - pd.Timedelta(days=cfg.recent_view_days))
            & web["customer_key"].isin(set(customers))
        ].copy()
        recent["w"] = np.where(
            recent["interaction_type"] == "cart",
            2.0,
            np.where(recent["interaction_type"] == "view", 1.0, 0.0),
        )
        last_buy = mine.groupby(["customer_key", "product_id"])["order_date"].max().rename("bought")
        recent = recent.join(last_buy, on=["customer_key", "product_id"])
        recent = recent[(recent["w"] > 0) & ~(recent["bought"] >= recent["occurred_date"])]
        v = (
            recent.groupby(["customer_key", "product_id"])
            .agg(score=("w", "sum"), cart=("w", "max"))
            .reset_index()
        )
        v["source"] = "viewed"
        v["via_product_id"] = np.where(v["cart"] >= 2, -1.0, np.nan)  # -1 marks "in your cart"
        frames.append(v[CAND_COLS])
    pop = _popularity(items, as_of, cfg.popular_window_days)
    if "category_popular" in want and len(mine):
        share = mine.groupby(["customer_key", "category"]).size().rename("n").reset_index()
        share["share"] = share["n"] / share.groupby("customer_key")["n"].transform("sum")
        share = (
            share.sort_values(["customer_key", "share", "category"], ascending=[True, False, True])
            .groupby("customer_key")
            .head(2)
        )
        top_in_cat = pop.groupby("category").head(10)
        cp = share.merge(top_in_cat, on="category")
        cp["score"] = cp["share"] * cp["buyers"] / cp.groupby("category")["buyers"].transform("max")
        cp = cp.assign(source="category_popular", via_product_id=np.nan)
        frames.append(cp[CAND_COLS])
    if "popular" in want and len(pop):
        top = pop.head(cfg.max_candidates // 3)[["product_id", "buyers"]]
        gp = cust.merge(top, how="cross").rename(columns={"buyers": "score"})
        gp = gp.assign(source="popular", via_product_id=np.nan)
        frames.append(gp[CAND_COLS])
    frames = [f for f in frames if len(f)]
    cands = pd.concat(frames, ignore_index=True) if frames else _empty()
    allowed = set(products.loc[~products["is_discontinued"], "product_id"])
    cands = cands[cands["product_id"].isin(allowed)]
    cands["product_id"] = cands["product_id"].astype("int64")
    return cands.reset_index(drop=True)


def blend(cands: pd.DataFrame, weights: dict[str, float], k: int) -> pd.DataFrame:
    """Top-k per customer by Σ weight × per-customer-normalised score, with the top source."""
    c = cands[cands["source"].isin([s for s, w in weights.items() if w > 0])].copy()
    if c.empty:
        return pd.DataFrame(
            columns=["customer_key", "rank", "product_id", "score", "source", "via_product_id"]
        )
    c["norm"] = c["score"] / c.groupby(["customer_key", "source"])["score"].transform("max")
    c["part"] = c["norm"].fillna(0) * c["source"].map(weights).fillna(0.0)
    c = c.sort_values(["customer_key", "product_id", "part"], ascending=[True, True, False])
    g = c.groupby(["customer_key", "product_id"], sort=False)
    out = g.agg(
        score=("part", "sum"),
        source=("source", "first"),
        via_product_id=("via_product_id", "first"),
    ).reset_index()
    out = out.sort_values(["customer_key", "score", "product_id"], ascending=[True, False, True])
    out = out.groupby("customer_key").head(k).copy()
    out["rank"] = out.groupby("customer_key").cumcount() + 1
    return out.reset_index(drop=True)


def explain(recs: pd.DataFrame, products: pd.DataFrame) -> pd.Series:
    names = products.set_index("product_id")["name"].astype(str).to_dict()
    cats = products.set_index("product_id")["category"].astype(str).to_dict()

    def one(row) -> str:
        via = row.via_product_id
        if row.source == "repurchase":
            return "you bought it before"
        if row.source == "co_purchase":
            return f"bought together with {names.get(int(via), 'a product you bought')}"
        if row.source == "co_view":
            return f"viewed together with {names.get(int(via), 'a product you looked at')}"
        if row.source == "viewed":
            return "you left it in your cart" if via == -1 else "you viewed it"
        if row.source == "category_popular":
            return f"popular in {cats.get(int(row.product_id), 'your categories')}"
        return "popular right now"

    return pd.Series([one(r) for r in recs.itertuples()], index=recs.index, dtype=object)


def _ranked_lists(recs: pd.DataFrame) -> dict[str, list[int]]:
    recs = recs.sort_values(["customer_key", "rank"])
    return recs.groupby("customer_key")["product_id"].apply(list).to_dict()


def offline_evaluation(
    as_of: pd.Timestamp,
    cfg: RecConfig,
    items: pd.DataFrame,
    inter: pd.DataFrame,
    products: pd.DataFrame,
) -> tuple[dict, pd.DataFrame]:
    """Fit on data up to as_of − eval_days, judge on purchases in the days after it.

    Returns the metrics and the candidates generated at the split (reused to train the
    production ranker, whose labels are the purchases after the split).
    """
    split = as_of - pd.Timedelta(days=cfg.eval_days)
    past_items = items[items["ordered_at"] <= split]
    past_inter = _until(inter, split)
    customers = target_customers(past_items, past_inter, split, cfg)
    future = items[
        (items["ordered_at"] > split)
        & (items["ordered_at"] <= as_of)
        & items["customer_key"].isin(set(customers))
    ]
    truth = future.groupby("customer_key")["product_id"].apply(set).to_dict()
    cands = generate_candidates(past_items, past_inter, products, customers, split, cfg)
    results = {}
    for name, weights in {"blend": cfg.weights, **BASELINES}.items():
        use = cands[cands["source"].isin(set(weights))]
        recs = blend(use, weights, cfg.k)
        cand_sets = use.groupby("customer_key")["product_id"].apply(set).to_dict()
        results[name] = recommendation_metrics(_ranked_lists(recs), truth, cfg.k, cand_sets)
    if cfg.use_ranker:
        ranked = _offline_ranker(split, cfg, items, inter, products, cands)
        if ranked is not None:
            cand_sets = cands.groupby("customer_key")["product_id"].apply(set).to_dict()
            results["ranker"] = recommendation_metrics(
                _ranked_lists(ranked), truth, cfg.k, cand_sets
            )
    for name, m in results.items():
        log.info(
            "offline %-24s MAP@%d %.4f  Recall %.4f  NDCG %.4f  cand.recall %.3f",
            name,
            cfg.k,
            m["map_at_k"],
            m["recall_at_k"],
            m["ndcg_at_k"],
            m.get("candidate_recall", float("nan")),
        )
    metrics = {
        "split_date": split.date().isoformat(),
        "eval_days": cfg.eval_days,
        "n_customers": len(customers),
        "n_customers_with_purchases": len(truth),
        "offline": results,
    }
    return metrics, cands


def _until(inter: pd.DataFrame, day: pd.Timestamp) -> pd.DataFrame:
    return inter[inter["occurred_at"] <= day] if len(inter) else inter


def _offline_ranker(
    split: pd.Timestamp,
    cfg: RecConfig,
    items: pd.DataFrame,
    inter: pd.DataFrame,
    products: pd.DataFrame,
    split_cands: pd.DataFrame,
) -> pd.DataFrame | None:
    """Train the ranker one window earlier (labels up to the split), rank at the split."""
    from ml import rank

    t0 = split - pd.Timedelta(days=cfg.eval_days)
    items0 = items[items["ordered_at"] <= t0]
    inter0 = _until(inter, t0)
    cands0 = generate_candidates(
        items0, inter0, products, target_customers(items0, inter0, t0, cfg), t0, cfg
    )
    train = rank.label(rank.candidate_features(cands0, items0, products, t0, cfg), items, t0, split)
    ranker = rank.fit_ranker(train, cfg.seed, cfg.num_threads)
    if ranker is None:
        return None
    past_items = items[items["ordered_at"] <= split]
    return rank.rank(
        ranker, rank.candidate_features(split_cands, past_items, products, split, cfg), cfg.k
    )


def _ranker_recs(
    as_of: pd.Timestamp,
    cfg: RecConfig,
    items: pd.DataFrame,
    products: pd.DataFrame,
    split_cands: pd.DataFrame,
    cands: pd.DataFrame,
) -> pd.DataFrame | None:
    """Production ranker: trained on the split's candidates labelled with the last window."""
    from ml import rank

    split = as_of - pd.Timedelta(days=cfg.eval_days)
    past_items = items[items["ordered_at"] <= split]
    train = rank.label(
        rank.candidate_features(split_cands, past_items, products, split, cfg), items, split, as_of
    )
    ranker = rank.fit_ranker(train, cfg.seed, cfg.num_threads)
    if ranker is None:
        return None
    picks = rank.rank(ranker, rank.candidate_features(cands, items, products, as_of, cfg), cfg.k)
    why = blend(cands, cfg.weights, cfg.max_candidates)[
        ["customer_key", "product_id", "source", "via_product_id"]
    ]
    picks = picks.merge(why, on=["customer_key", "product_id"], how="left")
    picks["source"] = picks["source"].fillna("popular")
    return picks


def recommend(as_of: dt.date, cfg: RecConfig | None = None, evaluate: bool = True) -> dict:
    """Top-k products per active customer → ``ml.product_recommendations`` (idempotent).

    With ``evaluate`` (default) the offline evaluation runs first; if the LambdaRank
    re-ranker beats the transparent blend there by ``cfg.ranker_margin`` MAP@k (on at least
    ``cfg.ranker_min_eval_users`` buyers), the ranker
    orders the candidates (model_version "ranker-v1"), otherwise the blend does. Reasons
    always name the candidate source that contributed most to the blend.
    """
    from ml import report

    cfg = cfg or RecConfig.from_settings()
    as_of_ts = pd.Timestamp(as_of).normalize()
    as_of = as_of_ts.date()
    products = data.load_products()
    items = with_catalogue_category(data.load_order_items(as_of), products)
    inter = data.load_interactions(as_of)
    has_web = bool(len(inter))
    customers = target_customers(items, inter, as_of_ts, cfg)
    cands = generate_candidates(items, inter, products, customers, as_of_ts, cfg)
    metrics, method, recs = None, "blend", None
    if evaluate:
        metrics, split_cands = offline_evaluation(as_of_ts, cfg, items, inter, products)
        off = metrics["offline"]
        if (
            "ranker" in off
            and off["ranker"]["n_users"] >= cfg.ranker_min_eval_users
            and off["ranker"]["map_at_k"] > off["blend"]["map_at_k"] + cfg.ranker_margin
        ):
            recs = _ranker_recs(as_of_ts, cfg, items, products, split_cands, cands)
            method = "ranker" if recs is not None else "blend"
    if recs is None:
        recs = blend(cands, cfg.weights, cfg.k)
    version = "ranker-v1" if method == "ranker" else cfg.model_version
    log.info("recommendations ordered by the %s", method)
    out = pd.DataFrame(
        {
            "customer_key": recs["customer_key"].astype(str),
            "as_of_date": as_of,
            "rank": recs["rank"].astype("int32"),
            "product_id": recs["product_id"].astype("int64"),
            "score": recs["score"].astype(float),
            "reason": explain(recs, products),
            "model_version": version,
            "scored_at": pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None)).floor("s"),
        }
    )
    written = warehouse.replace_rows(out, "ml", RECS_TABLE, where={"as_of_date": as_of})
    summary = {
        "as_of": as_of.isoformat(),
        "model_version": version,
        "method": method,
        "customers": int(out["customer_key"].nunique()),
        "rows": int(written),
        "web_data": has_web,
        "reasons": {k: int(v) for k, v in recs["source"].value_counts().items()},
    }
    if metrics is not None:
        metrics.update(
            as_of=as_of.isoformat(),
            model_version=version,
            method=method,
            weights=cfg.weights,
            web_data=has_web,
        )
        path = report.write_recommendation_report(as_of.isoformat(), metrics, cfg.reports_dir)
        summary["offline"] = {
            k: {
                m: v[m]
                for m in ("map_at_k", "recall_at_k", "ndcg_at_k", "candidate_recall")
                if m in v
            }
            for k, v in metrics["offline"].items()
        }
        summary["report"] = str(path)
    log.info(
        "wrote %d recommendations for %d customers at %s", written, summary["customers"], as_of
    )
    return summary
