"""Score recommendations for one as-of date (the daily DAG): the champion ranker (else the
newest registered one, said so; else the transparent blend ``blend-v1``) orders the
candidates of every active customer; business rules (:mod:`ml.recs.rules`); top k with a
reason → ``ml.product_recommendations`` (replaced per as_of_date). Never trains.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import lightgbm as lgb
import pandas as pd

from ml.common import outputs, registry
from ml.common.config import RecConfig
from ml.recs import data as rec_data
from ml.recs import rank
from ml.recs.candidates import Generator, Snapshot, active_customers, blend, cap_candidates
from ml.recs.reasons import reasons
from ml.recs.rules import apply_rules

log = logging.getLogger(__name__)

RECS_TABLE = "product_recommendations"
BLEND_VERSION = "blend-v1"
SCORE_BATCH = 20_000  # customers scored at a time (bounds memory at any scale)
KIND = "recommendation"


def _scoring_model(cfg: RecConfig) -> tuple[lgb.Booster | None, str, str]:
    """(booster, version, status): the champion, else the newest model, else the blend."""
    try:
        version, status = registry.resolve_scoring_version(cfg.model_dir, KIND)
        booster = registry.load_booster(cfg.model_dir, version, KIND)
    except FileNotFoundError:
        log.warning("no recommendation model registered: ordering by the transparent blend")
        return None, BLEND_VERSION, "no_model_blend"
    missing = set(booster.feature_name()) - set(rank.FEATURES)
    if missing:
        log.warning("model %s needs features this code lacks (%s): blend used", version, missing)
        return None, BLEND_VERSION, "model_incompatible_blend"
    return booster, version, status


def score(d: rec_data.RecData, as_of: pd.Timestamp, cfg: RecConfig, booster) -> pd.DataFrame:
    """Top k per active customer at ``as_of``: cust, item, score, rank, source, reason."""
    snap = Snapshot(d, as_of, cfg)
    custs = active_customers(snap)
    parts = []
    for lo in range(0, len(custs), SCORE_BATCH):
        gen = Generator(snap, custs[lo : lo + SCORE_BATCH])
        long = gen.generate()
        capped = cap_candidates(long, cfg.max_candidates)
        feats = rank.candidate_features(snap, capped)
        if booster is not None:
            scored = feats[["cust", "item"]].assign(
                score=rank.predict(booster, feats, cfg.num_threads)
            )
        else:
            scored = blend(
                long.merge(capped[["cust", "item"]].drop_duplicates()), cfg.weights, 10**6
            )
        top = apply_rules(scored, snap, cfg)
        top["source"], top["reason"] = reasons(gen, top, feats)
        parts.append(top)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _coverage(
    d: rec_data.RecData,
    out: pd.DataFrame,
    recs: pd.DataFrame,
    as_of: dt.date,
    version: str,
    cfg: RecConfig,
) -> dict:
    """Share of active customers with a full list of k, share of the catalogue recommended,
    and three example lists; kept beside the date's report (re-rendered if it exists)."""
    from ml.recs import report

    sizes = out.groupby("customer_key").size()
    n_active = int(sizes.size)
    allowed = int(d.allowed.sum())
    examples = []
    for key in sizes[sizes == sizes.max()].index[:3] if n_active else []:
        rows = out[out["customer_key"] == key].sort_values("rank")
        items = recs.loc[rows.index, "item"].to_numpy()
        examples.append(
            {
                "customer_key": str(key),
                "items": [
                    {"rank": int(r), "product": str(d.names[i]), "reason": str(why)}
                    for r, i, why in zip(rows["rank"], items, rows["reason"], strict=True)
                ],
            }
        )
    cov = {
        "as_of": as_of.isoformat(),
        "model_version": version,
        "k": cfg.k,
        "active_customers": n_active,
        "full_list_share": float((sizes >= cfg.k).mean()) if n_active else None,
        "catalogue_share": float(out["product_id"].nunique() / allowed) if allowed else None,
        "examples": examples,
    }
    report.add_scoring(as_of.isoformat(), cov, cfg.reports_dir)
    return {k: v for k, v in cov.items() if k != "examples"}


def recommend(as_of: dt.date, cfg: RecConfig | None = None) -> dict:
    """Score every active customer into ``ml.product_recommendations`` for ``as_of``
    (idempotent per date) with the champion ranker; never trains (that is
    :func:`ml.recs.train.train_recommender`)."""
    cfg = cfg or RecConfig.from_settings()
    as_of_ts = pd.Timestamp(as_of).normalize()
    as_of = as_of_ts.date()
    d = rec_data.load(as_of)
    summary: dict = {"as_of": as_of.isoformat(), "web_data": d.has_web}
    if rec_data.no_items(d, as_of):
        return summary | {"rows": 0, "customers": 0, "method": "none", "model_version": None}
    booster, version, status = _scoring_model(cfg)
    recs = score(d, as_of_ts, cfg, booster)
    out = pd.DataFrame(
        {
            "customer_key": d.customers[recs["cust"].to_numpy()].astype(str),
            "as_of_date": as_of,
            "rank": recs["rank"].astype("int32"),
            "product_id": d.product_ids[recs["item"].to_numpy()].astype(str),
            "score": recs["score"].astype(float),
            "reason": recs["reason"].astype(str),
            "model_version": version,
            "scored_at": pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None)).floor("s"),
        }
    )
    written = outputs.write(out, RECS_TABLE, as_of)
    summary["coverage"] = _coverage(d, out, recs, as_of, version, cfg)
    summary |= {
        "model_version": version,
        "model_status": status,
        "method": "ranker" if booster is not None else "blend",
        "customers": int(out["customer_key"].nunique()),
        "rows": int(written),
        "reasons": {str(k): int(v) for k, v in recs["source"].value_counts().items()},
    }
    log.info(
        "wrote %d recommendations for %d customers at %s (%s, %s)",
        written,
        summary["customers"],
        as_of,
        version,
        status,
    )
    return json.loads(json.dumps(summary, default=str))
