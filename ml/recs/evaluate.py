"""Offline evaluation of the recommender on the evaluation week (never seen by training or
early stopping): MAP@k, Recall@k, NDCG@k and candidate recall of ours (with the business
rules) against popularity, repurchase-then-popular, item-item and implicit ALS
(:mod:`ml.recs.baselines`) and, on simulated companies, the true affinity ranking (oracle);
plus the sanity gate (beat every baseline) and a paired bootstrap interval of our gap.
"""

from __future__ import annotations

import logging

import lightgbm as lgb
import numpy as np

from ml.common.config import RecConfig
from ml.common.evaluate import average_precision_at_k, recommendation_metrics
from ml.recs import baselines as rec_baselines
from ml.recs import rank
from ml.recs.candidates import blend
from ml.recs.rules import apply_rules, category_cap
from ml.recs.weeks import Week

log = logging.getLogger(__name__)

BASELINES = ("popularity", "repurchase_then_popular", "item_item", "als")


def ranked_by(booster: lgb.Booster, week: Week, cfg: RecConfig, rules: bool = True) -> dict:
    scored = week.feats[["cust", "item"]].assign(
        score=rank.predict(booster, week.feats, cfg.num_threads)
    )
    top = (
        apply_rules(scored, week.snap, cfg) if rules else rank.top_k(scored, scored["score"], cfg.k)
    )
    return rec_baselines.ranked_lists(top)


def _per_user_ap(lists: dict, truth: dict, k: int) -> np.ndarray:
    return np.array([average_precision_at_k(lists.get(u, []), truth[u], k) for u in sorted(truth)])


def _bootstrap_gap(a: np.ndarray, b: np.ndarray, seed: int, n: int = 1000) -> list[float]:
    """95 % interval of mean(a − b) over customers resampled with replacement (paired)."""
    diff = a - b
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), (n, len(diff)))].mean(axis=1)
    return [float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))]


def _choose_als_alpha(valid: Week, cfg: RecConfig) -> float | None:
    """ALS confidence scale with the best validation-week MAP@k (never the evaluation week)."""
    custs = np.array(sorted(valid.truth), np.int32)
    best, best_map = None, -1.0
    for alpha in (0.3, 1.0, 3.0, 10.0):
        lists = rec_baselines.als(valid.snap, custs, cfg.k, alpha, cfg.seed, cfg.num_threads)
        m = recommendation_metrics(lists, valid.truth, cfg.k)["map_at_k"]
        log.info("ALS alpha %.0f: validation MAP@%d %.4f", alpha, cfg.k, m)
        if m > best_map:
            best, best_map = alpha, m
    return best


def evaluate(booster: lgb.Booster | None, valid: Week, ev: Week, cfg: RecConfig) -> dict:
    """Ours and every baseline on the evaluation week (same customers, same truth)."""
    custs = np.array(sorted(ev.truth), np.int32)
    cand_sets = ev.feats.groupby("cust")["item"].apply(lambda s: set(map(int, s))).to_dict()
    lists: dict[str, dict] = {}
    if booster is not None:
        lists["ranker"] = ranked_by(booster, ev, cfg)
        lists["ranker_without_rules"] = ranked_by(booster, ev, cfg, rules=False)
    capped = ev.feats[["cust", "item"]].merge(ev.long, on=["cust", "item"])
    lists["blend"] = rec_baselines.ranked_lists(
        apply_rules(blend(capped, cfg.weights, 10**6), ev.snap, cfg)
    )
    lists["popularity"] = rec_baselines.popularity(ev.snap, custs, cfg.k)
    lists["repurchase_then_popular"] = rec_baselines.repurchase_then_popular(
        ev.snap, ev.long, custs, cfg.k
    )
    lists["item_item"] = rec_baselines.item_item(ev.snap, ev.long, custs, cfg.k)
    notes: dict[str, str] = {}
    if cfg.als:
        try:
            alpha = _choose_als_alpha(valid, cfg)
            lists["als"] = rec_baselines.als(
                ev.snap, custs, cfg.k, alpha, cfg.seed, cfg.num_threads
            )
            notes["als"] = (
                f"implicit ALS, 64 factors, alpha {alpha:g} chosen on the validation week"
            )
        except Exception as exc:  # noqa: BLE001 - an optional baseline; say why it is missing
            log.warning("ALS baseline not run: %s", exc)
            notes["als"] = f"not run: {exc}"
    oracle = rec_baselines.oracle(ev.snap, custs, cfg.k)
    if oracle is not None:
        lists["oracle"], info = oracle
        notes["oracle"] = (
            f"true affinity ranking of {info['oracle_customers']} customers "
            f"({info['oracle_unmatched']} without a simulated person count as misses)"
        )
    results = {
        name: recommendation_metrics(
            rec, ev.truth, cfg.k, cand_sets if name in ("ranker", "blend") else None
        )
        for name, rec in lists.items()
    }
    ours = "ranker" if "ranker" in results else "blend"
    base = {b: results[b]["map_at_k"] for b in BASELINES if b in results}
    best = max(base, key=base.get) if base else None
    out = {"offline": results, "ours": ours, "notes": notes}
    out["rules"] = rules_cost(results, ev, cfg)
    out["coverage"] = coverage(lists[ours], ev, cfg)
    if best:
        out["best_baseline"] = best
        out["map_gap_to_best_baseline_ci95"] = _bootstrap_gap(
            _per_user_ap(lists[ours], ev.truth, cfg.k),
            _per_user_ap(lists[best], ev.truth, cfg.k),
            cfg.seed,
        )
    for name, m in results.items():
        log.info(
            "offline %-24s MAP@%d %.4f  Recall %.4f  NDCG %.4f%s",
            name,
            cfg.k,
            m["map_at_k"],
            m["recall_at_k"],
            m["ndcg_at_k"],
            f"  cand.recall {m['candidate_recall']:.3f}" if "candidate_recall" in m else "",
        )
    return out


def rules_cost(results: dict, ev: Week, cfg: RecConfig) -> dict:
    """The business rules in force and what they cost: MAP@k of the ranker with and without
    them on the evaluation week (same customers, same truth)."""
    cap, why = category_cap(ev.snap.data, cfg)
    out = {
        "category_cap": cap,
        "category_cap_note": why,
        "exclude_just_bought": cfg.exclude_just_bought,
    }
    if "ranker" in results and "ranker_without_rules" in results:
        with_, without = (results[k]["map_at_k"] for k in ("ranker", "ranker_without_rules"))
        out |= {"map_with_rules": with_, "map_without_rules": without, "map_cost": without - with_}
    return out


def coverage(lists: dict, ev: Week, cfg: RecConfig) -> dict:
    """Of the evaluated customers: share with a full list of k; share of the recommendable
    catalogue that appears in some list."""
    custs = sorted(ev.truth)
    full = sum(1 for c in custs if len(lists.get(c, [])) >= cfg.k)
    shown = {i for c in custs for i in lists.get(c, [])}
    allowed = int(ev.snap.data.allowed.sum())
    return {
        "customers": len(custs),
        "full_list_share": full / len(custs) if custs else float("nan"),
        "catalogue_share": len(shown) / allowed if allowed else float("nan"),
    }


def gates(evaluation: dict) -> tuple[bool, list[str]]:
    """Like the churn model's sanity gate: MAP@k above every baseline's."""
    res = evaluation["offline"]
    if "ranker" not in res:
        return False, ["no ranker could be trained"]
    ours = res["ranker"]["map_at_k"]
    failures = [
        f"MAP@k {ours:.4f} does not beat baseline {b} ({res[b]['map_at_k']:.4f})"
        for b in BASELINES
        if b in res and not ours > res[b]["map_at_k"]
    ]
    return not failures, failures


def map_on_week(booster: lgb.Booster, ev: Week, cfg: RecConfig) -> float:
    """MAP@k of ``booster`` (with the rules) on a week: how a champion is compared."""
    return recommendation_metrics(ranked_by(booster, ev, cfg), ev.truth, cfg.k)["map_at_k"]
