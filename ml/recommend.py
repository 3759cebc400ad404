"""Next-best-product recommendations: candidates → LightGBM LambdaRank → business rules.

``recommend(as_of)`` does, in one run, with weekly cutoffs (``RecConfig.horizon_days`` = 7):

1. **Train** a LambdaRank model (:mod:`ml.rank`) on ``train_weeks`` past weekly cutoffs:
   at each cutoff the candidates (:mod:`ml.candidates`) of the customers who bought in
   the following week, labelled with what they bought; features are point in time.
   Early stopping on the next week (**validation**).
2. **Evaluate** on the last week before ``as_of`` (**evaluation**, never seen by training or
   early stopping): MAP@k, Recall@k, NDCG@k and candidate recall of ours (with the business
   rules) against popularity, repurchase-then-popular, item-item co-occurrence and
   implicit ALS (:mod:`ml.rec_baselines`), and, on simulated companies, the ground-truth
   affinity ranking (oracle).
3. **Register** the model in ``C720_MODEL_DIR/recommend/<version>/`` and decide the champion
   with the same gate as the churn model (:mod:`ml.registry`): it must beat every baseline
   on the evaluation week, and the current champion by ``champion_margin`` MAP@k on the same
   customers and candidates.
4. **Score**: the champion (else the newest model, said so) ranks the candidates of every
   active customer at ``as_of``; rules (:mod:`ml.rec_rules`); top k with a reason →
   ``ml.product_recommendations`` (replaced per as_of_date).

Timeline (h = 7 days, T = as_of): evaluation cutoff E = T − h (labels in (E, T]), validation
V = E − h, training cutoffs V − h, …, V − train_weeks·h. The registered model is the one
evaluated: it has seen labels up to V only; at T it reads features as of T.

With too little data for a ranker (no buyer with a purchased candidate in the training or
validation weeks) the candidates are ordered by a transparent blend of the sources
(``RecConfig.weights``, version ``blend-v1``). ``evaluate=False`` (``--no-eval``) skips
1–3 and scores with the registered champion: the daily DAG does that, and the weekly
training DAG runs 1–3 alone (``train_recommender``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from customer720 import warehouse
from ml import rank, rec_baselines, rec_data, registry
from ml.candidates import (
    Generator,
    Snapshot,
    active_customers,
    blend,
    cap_candidates,
)
from ml.config import RecConfig
from ml.evaluate import average_precision_at_k, recommendation_metrics
from ml.rec_rules import apply_rules

log = logging.getLogger(__name__)

RECS_TABLE = "product_recommendations"
BLEND_VERSION = "blend-v1"
BASELINES = ("popularity", "repurchase_then_popular", "item_item", "als")
# The reason shown is the most personal source that proposed the product.
REASON_ORDER = (
    "recently_carted",
    "repurchase",
    "cart_buy",
    "view_buy",
    "co_purchase",
    "recently_viewed",
    "co_view",
    "category_popular",
    "segment_popular",
    "trending",
    "popular",
)
SCORE_BATCH = 20_000  # customers scored at a time (bounds memory at any scale)


@dataclass
class Week:
    """One labelled cutoff: candidates and features of the customers who bought after it."""

    at: pd.Timestamp
    snap: Snapshot
    long: pd.DataFrame  # every source's candidates (uncapped; the baselines use them)
    feats: pd.DataFrame  # capped candidates with features, label and qid
    truth: dict[int, set[int]]


def labelled_week(d: rec_data.RecData, at: pd.Timestamp, cfg: RecConfig, qid: int) -> Week:
    snap = Snapshot(d.until(at), at, cfg)
    after = d.items[
        (d.items["ordered_at"] > at)
        & (d.items["ordered_at"] <= at + pd.Timedelta(days=cfg.horizon_days))
    ]
    custs = np.intersect1d(active_customers(snap), after["cust"].unique()).astype(np.int32)
    after = after[after["cust"].isin(custs)]
    long = Generator(snap, custs).generate()
    feats = rank.candidate_features(snap, cap_candidates(long, cfg.max_candidates))
    feats["label"] = rank.label(feats, after, d.n_items)
    feats["qid"] = np.int64(qid) * d.n_customers + feats["cust"].to_numpy(np.int64)
    truth = after.groupby("cust")["item"].apply(lambda s: set(map(int, s))).to_dict()
    n_true = sum(len(v) for v in truth.values())
    log.info(
        "week %s: %d buyers, %d candidates (%.0f a customer), candidate recall %.3f",
        at.date(),
        len(custs),
        len(feats),
        len(feats) / max(len(custs), 1),
        feats["label"].sum() / max(n_true, 1),
    )
    return Week(at, snap, long, feats, truth)


def _predict(booster: lgb.Booster, feats: pd.DataFrame, cfg: RecConfig) -> np.ndarray:
    threads = rank.threads_for(len(feats), cfg.num_threads)
    return booster.predict(feats[booster.feature_name()], num_threads=threads)


def _ours(booster: lgb.Booster, week: Week, cfg: RecConfig, rules: bool = True) -> dict:
    scored = week.feats[["cust", "item"]].assign(score=_predict(booster, week.feats, cfg))
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
        lists["ranker"] = _ours(booster, ev, cfg)
        lists["ranker_without_rules"] = _ours(booster, ev, cfg, rules=False)
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


# -- registry (the churn model's folder layout and champion pointer) ----------------------------


def _version(as_of: dt.date, model_text: str) -> str:
    return f"{as_of:%Y%m%d}-{hashlib.sha256(model_text.encode()).hexdigest()[:8]}"


def load_booster(cfg: RecConfig, version: str) -> lgb.Booster:
    path = cfg.model_dir / version / "model.txt"
    if not path.exists():
        raise FileNotFoundError(f"no recommendation model {version!r} in {cfg.model_dir}")
    return lgb.Booster(model_file=str(path))


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


def challenge(version: str, ok: bool, ev: Week, evaluation: dict, cfg: RecConfig) -> dict:
    """Promote ``version`` if it passed the gates and beats the champion on the same week."""
    current = registry.champion_version(cfg.model_dir)
    decision: dict = {"previous_champion": current, "champion_map_at_k": None}
    ours = evaluation["offline"]["ranker"]["map_at_k"] if ok else None
    if not ok:
        return decision | {"promoted": False, "reason": "failed sanity gates"}
    if current is None:
        return decision | {"promoted": True, "reason": "first model to pass the sanity gates"}
    if current == version:
        return decision | {"promoted": False, "reason": "identical to the champion"}
    try:
        champ = load_booster(cfg, current)
        champ_map = recommendation_metrics(_ours(champ, ev, cfg), ev.truth, cfg.k)["map_at_k"]
    except (FileNotFoundError, KeyError, ValueError, lgb.basic.LightGBMError) as exc:
        reason = f"champion {current} cannot be evaluated on this week ({exc}); replacing it"
        return decision | {"promoted": True, "reason": reason}
    decision["champion_map_at_k"] = champ_map
    if ours >= champ_map + cfg.champion_margin:
        reason = f"MAP@k {ours:.4f} >= champion {champ_map:.4f} + margin {cfg.champion_margin}"
        return decision | {"promoted": True, "reason": reason}
    reason = f"MAP@k {ours:.4f} < champion {champ_map:.4f} + margin {cfg.champion_margin}"
    return decision | {"promoted": False, "reason": reason + "; champion kept"}


def train_and_register(d: rec_data.RecData, as_of: pd.Timestamp, cfg: RecConfig) -> dict:
    """Steps 1–3: train on past weeks, evaluate on the last one, register, decide champion."""
    h = pd.Timedelta(days=cfg.horizon_days)
    ev_at, valid_at = as_of - h, as_of - 2 * h
    train_at = [valid_at - i * h for i in range(cfg.train_weeks, 0, -1)]
    weeks = [labelled_week(d, at, cfg, qid=i) for i, at in enumerate([*train_at, valid_at, ev_at])]
    *train_weeks, valid, ev = weeks
    train = pd.concat([w.feats for w in train_weeks], ignore_index=True)
    ranker = rank.fit_ranker(train, valid.feats, cfg.k, cfg.seed, cfg.num_threads)
    booster = None
    if ranker is not None:
        text = ranker.booster_.model_to_string(num_iteration=ranker.best_iteration_)
        booster = lgb.Booster(model_str=text)
    evaluation = evaluate(booster, valid, ev, cfg)
    info = {
        "as_of": as_of.date().isoformat(),
        "split_date": ev_at.date().isoformat(),
        "eval_days": cfg.horizon_days,
        "weeks": {
            "train": [w.at.date().isoformat() for w in train_weeks],
            "validation": valid.at.date().isoformat(),
            "evaluation": ev.at.date().isoformat(),
        },
        "rows": {"train": int(len(train)), "validation": int(len(valid.feats))},
        "candidates_per_customer": float(len(ev.feats) / max(ev.feats["cust"].nunique(), 1)),
        "web_data": d.has_web,
        **evaluation,
    }
    if booster is None:
        return info | {"version": None, "promoted": False}
    ok, failures = gates(evaluation)
    for failure in failures:
        log.warning("sanity gate: %s", failure)
    version = _version(as_of.date(), text)
    decision = challenge(version, ok, ev, evaluation, cfg)
    importance = dict(
        zip(
            booster.feature_name(),
            booster.feature_importance("gain").round(2).tolist(),
            strict=True,
        )
    )
    metadata = {
        "version": version,
        "model_type": "lightgbm_lambdarank",
        "registered_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
        "features": booster.feature_name(),
        "best_iteration": ranker.best_iteration_,
        "params": {k: v for k, v in vars(cfg).items() if k not in ("model_dir", "reports_dir")},
        "feature_importance_gain": dict(sorted(importance.items(), key=lambda kv: -kv[1])),
        "gates": {"passed": ok, "failures": failures},
        "champion_decision": decision,
        "code_version": registry.code_version(),
        **info,
    }
    folder = cfg.model_dir / version
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.txt").write_text(text)
    registry.write_json(folder / "metadata.json", metadata)
    log.info("registered recommendation model %s in %s", version, folder)
    if decision["promoted"]:
        registry.set_champion(cfg.model_dir, version, decision["reason"])
    else:
        log.info("model %s not promoted: %s", version, decision["reason"])
    return info | {
        "version": version,
        "gates_passed": ok,
        "gate_failures": failures,
        "promoted": decision["promoted"],
        "decision": decision["reason"],
    }


# -- scoring ------------------------------------------------------------------------------------


def _scoring_model(cfg: RecConfig) -> tuple[lgb.Booster | None, str, str]:
    """(booster, version, status): the champion, else the newest model, else the blend."""
    try:
        version, status = registry.resolve_scoring_version(cfg.model_dir)
        booster = load_booster(cfg, version)
    except FileNotFoundError:
        log.warning("no recommendation model registered: ordering by the transparent blend")
        return None, BLEND_VERSION, "no_model_blend"
    missing = set(booster.feature_name()) - set(rank.FEATURES)
    if missing:
        log.warning("model %s needs features this code lacks (%s): blend used", version, missing)
        return None, BLEND_VERSION, "model_incompatible_blend"
    return booster, version, status


def _reasons(gen: Generator, top: pd.DataFrame, feats: pd.DataFrame) -> tuple[list, list]:
    """(source, text) per recommendation: the most personal source that proposed it."""
    d, snap = gen.snap.data, gen.snap
    f = top[["cust", "item"]].merge(feats, on=["cust", "item"], how="left")
    source = np.full(len(f), "popular", dtype=object)
    for name in reversed(REASON_ORDER):
        source = np.where(f[f"{name}_rank"].notna().to_numpy(), name, source)
    via = np.full(len(f), -1)
    for name in ("co_purchase", "co_view", "view_buy", "cart_buy"):
        m = source == name
        if m.any():
            via[m] = gen.via(name, f["cust"].to_numpy()[m], f["item"].to_numpy()[m])
    item, cust = f["item"].to_numpy(), f["cust"].to_numpy()
    texts = np.full(len(f), "popular right now", dtype=object)
    for name, text in (
        ("repurchase", "you bought it before"),
        ("recently_viewed", "you viewed it recently"),
        ("recently_carted", "you left it in your cart"),
        ("trending", "trending this week"),
    ):
        texts[source == name] = text
    for name, text in (
        ("co_purchase", "often bought with {}"),
        ("co_view", "viewed together with {}"),
        ("view_buy", "bought by people who viewed {}"),
        ("cart_buy", "bought by people who carted {}"),
    ):
        m = source == name
        texts[m] = [text.format(d.names[v] if v >= 0 else "what you looked at") for v in via[m]]
    m = source == "category_popular"
    texts[m] = ["popular in " + c for c in d.categories[d.category[item[m]]]]
    m = source == "segment_popular"
    seg = snap.segment[cust[m]]
    texts[m] = [
        f"popular with {d.channels[g]} customers" if g >= 0 else "popular with customers like you"
        for g in seg
    ]
    return list(source), list(texts)


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
            scored = feats[["cust", "item"]].assign(score=_predict(booster, feats, cfg))
        else:
            scored = blend(
                long.merge(capped[["cust", "item"]].drop_duplicates()), cfg.weights, 10**6
            )
        top = apply_rules(scored, snap, cfg)
        top["source"], top["reason"] = _reasons(gen, top, feats)
        parts.append(top)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _no_items(d: rec_data.RecData, as_of: dt.date) -> bool:
    if len(d.items) and d.allowed.any():
        return False
    log.warning(
        "no order lines with products (marts.fct_order_items is empty) or no product "
        "may be recommended: nothing to train or recommend for %s",
        as_of,
    )
    return True


def _train(d: rec_data.RecData, as_of_ts: pd.Timestamp, cfg: RecConfig) -> dict:
    """Steps 1–3 and the report: the training summary."""
    from ml import report

    run = train_and_register(d, as_of_ts, cfg)
    path = report.write_recommendation_report(as_of_ts.date().isoformat(), run, cfg.reports_dir)
    summary: dict = {
        "offline": {
            k: {
                m: v[m]
                for m in ("map_at_k", "recall_at_k", "ndcg_at_k", "candidate_recall")
                if m in v
            }
            for k, v in run["offline"].items()
            if k in ("ranker", "blend", *BASELINES)
        }
    }
    if "oracle" in run["offline"]:
        summary["oracle"] = {
            m: run["offline"]["oracle"][m] for m in ("map_at_k", "recall_at_k", "ndcg_at_k")
        }
    summary |= {
        k: run[k]
        for k in ("gates_passed", "promoted", "decision", "map_gap_to_best_baseline_ci95")
        if k in run
    }
    return summary | {"trained_version": run["version"], "report": str(path)}


def train_recommender(as_of: dt.date, cfg: RecConfig | None = None) -> dict:
    """Steps 1–3 only (the weekly training DAG): train, evaluate, register, decide the
    champion. Daily scoring (``recommend(..., evaluate=False)``) uses the champion."""
    cfg = cfg or RecConfig.from_settings()
    as_of_ts = pd.Timestamp(as_of).normalize()
    # Made even when nothing can be trained: "training has run" (orchestrate.needs_training).
    cfg.model_dir.mkdir(parents=True, exist_ok=True)
    d = rec_data.load(as_of_ts.date())
    summary: dict = {"as_of": as_of_ts.date().isoformat(), "web_data": d.has_web}
    if _no_items(d, as_of_ts.date()):
        return summary | {"trained_version": None}
    return json.loads(json.dumps(summary | _train(d, as_of_ts, cfg), default=str))


def recommend(as_of: dt.date, cfg: RecConfig | None = None, evaluate: bool = True) -> dict:
    """Train/evaluate/register (unless ``evaluate`` is False), then score every active
    customer into ``ml.product_recommendations`` for ``as_of`` (idempotent per date)."""
    cfg = cfg or RecConfig.from_settings()
    as_of_ts = pd.Timestamp(as_of).normalize()
    as_of = as_of_ts.date()
    d = rec_data.load(as_of)
    summary: dict = {"as_of": as_of.isoformat(), "web_data": d.has_web}
    if _no_items(d, as_of):
        return summary | {"rows": 0, "customers": 0, "method": "none", "model_version": None}
    if evaluate:
        summary |= _train(d, as_of_ts, cfg)
    booster, version, status = _scoring_model(cfg)
    recs = score(d, as_of_ts, cfg, booster)
    out = pd.DataFrame(
        {
            "customer_key": d.customers[recs["cust"].to_numpy()].astype(str),
            "as_of_date": as_of,
            "rank": recs["rank"].astype("int32"),
            "product_id": d.product_ids[recs["item"].to_numpy()].astype("int64"),
            "score": recs["score"].astype(float),
            "reason": recs["reason"].astype(str),
            "model_version": version,
            "scored_at": pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None)).floor("s"),
        }
    )
    written = warehouse.replace_rows(out, "ml", RECS_TABLE, where={"as_of_date": as_of})
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
