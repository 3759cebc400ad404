"""Score recommendations for one as-of date (the daily DAG): the champion ranker (else the
newest registered one, said so; else the transparent blend ``blend-v1``) orders the
candidates of active customers; business rules (:mod:`ml.recs.rules`); top k with a
reason → ``ml.product_recommendations`` (replaced per as_of_date). Never trains.

A day costs what changed (:func:`plan`): against the previous published ranking, only
customers whose inputs changed (their order lines, product views/carts or sessions — new
activity, late data, an identity merge or split that moved history), new customers and
customers whose list holds a product no longer allowed are re-ranked, plus a rotation slice
so that no list is older than ``refresh_days``; the others' lists are carried over
unchanged (their ``scored_at`` says when they were ranked). Customers no longer active
(lapsed, erased, merged away) are dropped. A new model version, a gap of
``refresh_days`` or more, or no previous ranking re-ranks everyone. The per-customer input
fingerprints and ranking dates live in ``ml.recommendation_inputs`` (same as_of_date).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from customer720 import warehouse
from ml.common import outputs, registry
from ml.common.config import RecConfig
from ml.common.data import lit
from ml.recs import data as rec_data
from ml.recs import rank
from ml.recs.candidates import Generator, Snapshot, active_customers, blend, cap_candidates
from ml.recs.reasons import reasons
from ml.recs.rules import apply_rules

log = logging.getLogger(__name__)

RECS_TABLE = "product_recommendations"
STATE_TABLE = "recommendation_inputs"
BLEND_VERSION = "blend-v1"
# At most this many customer keys are listed in one query (18k a day at 100k customers);
# above it the day reads everybody's older web rows, as a full ranking does.
MAX_LISTED_CUSTOMERS = 25_000
KIND = "recommendation"


def _scoring_model(cfg: RecConfig, as_of: dt.date) -> tuple[lgb.Booster | None, str, str]:
    """(booster, version, status): the champion (as of ``as_of``), else the newest model,
    else the blend."""
    try:
        version, status = registry.resolve_scoring_version(cfg.model_dir, KIND, as_of)
        booster = registry.load_booster(cfg.model_dir, version, KIND)
    except FileNotFoundError:
        log.warning("no recommendation model registered: ordering by the transparent blend")
        return None, BLEND_VERSION, "no_model_blend"
    missing = set(booster.feature_name()) - set(rank.FEATURES)
    if missing:
        log.warning("model %s needs features this code lacks (%s): blend used", version, missing)
        return None, BLEND_VERSION, "model_incompatible_blend"
    return booster, version, status


def score(
    snap: Snapshot, custs: np.ndarray, cfg: RecConfig, booster: lgb.Booster | None
) -> pd.DataFrame:
    """Top k of the customers ``custs`` (codes) at ``snap.at``: cust, item, score, rank,
    source, reason; ``cfg.batch_customers`` at a time (a customer's list depends only on
    their own history and the snapshot, not on who shares the batch)."""
    parts = []
    step = max(cfg.batch_customers, 1)
    for lo in range(0, len(custs), step):
        gen = Generator(snap, custs[lo : lo + step])
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
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=t) for c, t in (("cust", "int32"), ("item", "int32"))}
        ).assign(score=0.0, rank=0, source="", reason="")
    return pd.concat(parts, ignore_index=True)


def fingerprints(d: rec_data.RecData, custs: np.ndarray, as_of: dt.date) -> np.ndarray:
    """Per customer code in ``custs``: a hash of everything of theirs the ranking reads
    (order lines, product views/carts, sessions: counts, products, latest time). It moves
    with new activity, late data and an identity merge or split that moves history. Order
    lines and sessions (folded or not) are read whole; web rows only in part, so the
    warehouse sums them (:func:`ml.recs.data.web_totals`)."""
    # product ids (text), not codes: codes move when the catalogue gains a product
    # (31-bit hashes, so a customer's sum cannot overflow)
    id_hash = (pd.util.hash_array(d.product_ids.astype(object), categorize=False) >> 33).astype(
        np.int64
    )

    def totals(name: str, frame: pd.DataFrame, at: str, item: str | None) -> dict:
        x = frame[frame["cust"].isin(custs).to_numpy()]
        g = x.groupby("cust")
        n = g["n"].sum() if "n" in x else g.size()  # folded sessions count n each
        out = {
            f"{name}_n": n.reindex(custs).to_numpy(),
            f"{name}_last": g[at].max().astype("int64").reindex(custs).to_numpy(),
        }
        if item:
            ids = pd.Series(id_hash[x[item].to_numpy()], index=x["cust"].to_numpy())
            out[f"{name}_ids"] = ids.groupby(level=0).sum().reindex(custs).to_numpy()
        return out

    web = rec_data.web_totals(as_of, pd.Series(id_hash, d.product_ids))
    web = web.reindex(d.customers[custs].astype(str))
    # the column order is part of the hash: lines, web, sessions
    parts = (
        totals("lines", d.items, "ordered_at", "item")
        | {f"web_{c}": web[c].to_numpy() for c in ("n", "last", "ids")}
        | totals("sessions", d.sessions, "started_at", None)
    )
    # a customer without rows of a source: -1 (the column is float then: as it always was)
    f = pd.DataFrame(parts).fillna(-1).astype("int64")
    return pd.util.hash_pandas_object(f, index=False).to_numpy().view(np.int64)


def rotation_slot(keys: np.ndarray, refresh_days: int) -> np.ndarray:
    """Each customer key's day in the ``refresh_days`` rotation (stable across runs)."""
    h = pd.util.hash_array(np.asarray(keys, dtype=object), categorize=False)
    return (h % np.uint64(refresh_days)).astype(np.int64)


@dataclass
class Plan:
    rank: np.ndarray  # customer codes to rank now
    carried: pd.DataFrame  # previous rows kept (customer_key, rank, product_id, ...)
    ranked_as_of: pd.Series  # customer_key -> date its carried list was ranked
    why: dict  # counts per reason, for the summary and the log


def _previous(as_of: dt.date) -> dt.date | None:
    """The latest ranking date before ``as_of`` that has its input fingerprints."""
    if not (
        warehouse.table_exists(outputs.SCHEMA, RECS_TABLE)
        and warehouse.table_exists(outputs.SCHEMA, STATE_TABLE)
    ):
        return None
    return warehouse.scalar(
        f"select max(as_of_date) from {outputs.SCHEMA}.{STATE_TABLE} "
        f"where as_of_date < {lit(as_of)}"
    )


def plan(
    d: rec_data.RecData,
    custs: np.ndarray,
    prints: np.ndarray,
    as_of: dt.date,
    version: str,
    cfg: RecConfig,
) -> Plan:
    """Who is ranked today and which previous lists are carried over (see the module doc)."""
    keys = d.customers[custs].astype(str)
    everyone = Plan(custs, pd.DataFrame(), pd.Series(dtype=object), {"all": len(custs)})
    prev = _previous(as_of) if cfg.refresh_days > 1 else None
    if prev is None:
        return everyone
    prev = pd.Timestamp(prev).date()
    if (as_of - prev).days >= cfg.refresh_days:
        log.info("recommendations: last ranking %s is too old: re-ranking all", prev)
        return everyone
    state = warehouse.query_df(
        "select customer_key, inputs_hash, ranked_as_of, model_version "
        f"from {outputs.SCHEMA}.{STATE_TABLE} where as_of_date = {lit(prev)}"
    )
    if set(state["model_version"].astype(str)) - {version}:
        log.info("recommendations: model version changed since %s: re-ranking all", prev)
        return everyone
    rows = warehouse.query_df(
        "select customer_key, rank, product_id, score, reason, model_version, scored_at "
        f"from {outputs.SCHEMA}.{RECS_TABLE} where as_of_date = {lit(prev)}"
    )
    # nullable: a plain int64 becomes float64 on reindex and a 64-bit hash loses its bits
    state = state.astype({"inputs_hash": "Int64"}).set_index(state["customer_key"].astype(str))
    known = state.reindex(keys)
    new = known["inputs_hash"].isna().to_numpy()
    changed = ~new & (known["inputs_hash"].to_numpy("int64", na_value=0) != prints)
    ranked = pd.to_datetime(known["ranked_as_of"])
    stale = ~new & (ranked <= pd.Timestamp(as_of - dt.timedelta(days=cfg.refresh_days))).to_numpy()
    # Today's slot, and the slots of days skipped since the previous ranking.
    slots = [
        (prev + dt.timedelta(days=i)).toordinal() % cfg.refresh_days
        for i in range(1, (as_of - prev).days + 1)
    ]
    rotation = np.isin(rotation_slot(keys, cfg.refresh_days), slots)
    # A carried list must still hold only recommendable products (catalogue changes daily).
    pid = pd.Index(d.product_ids)
    code = pid.get_indexer(rows["product_id"].astype(str))
    bad_rows = (code < 0) | ~d.allowed[np.maximum(code, 0)]
    # pandas isin of object Indexes (hashing): numpy's isin of str against object arrays
    # compares all pairs, and an Arrow string Index's isin builds a Python list of the values
    # (5 s for the previous ranking's rows at scale M)
    listed = pd.Index(keys, dtype=object)
    row_keys = pd.Index(rows["customer_key"].astype(str).to_numpy(object), dtype=object)
    disallowed = listed.isin(row_keys[bad_rows])
    no_list = ~new & ~listed.isin(row_keys)
    redo = new | changed | stale | rotation | disallowed | no_list
    keep = keys[~redo]
    carried = rows[row_keys.isin(keep)]
    why = {
        "new": int(new.sum()),
        "inputs_changed": int(changed.sum()),
        "rotation": int((rotation & ~new & ~changed).sum()),
        "stale": int((stale & ~new & ~changed & ~rotation).sum()),
        "product_no_longer_allowed": int((disallowed & ~new & ~changed).sum()),
        "carried": len(keep),
        "dropped": int((~state.index.isin(keys)).sum()),
        "previous_ranking": prev.isoformat(),
    }
    return Plan(custs[redo], carried, known["ranked_as_of"][~redo], why)


def _coverage(
    d: rec_data.RecData,
    out: pd.DataFrame,
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
        items = pd.Index(d.product_ids).get_indexer(rows["product_id"].astype(str))
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
    """Rank active customers into ``ml.product_recommendations`` for ``as_of`` (idempotent
    per date; every active customer has a list, re-ranked today or carried over: see
    :func:`plan`) with the champion ranker; never trains (that is
    :func:`ml.recs.train.train_recommender`)."""
    cfg = cfg or RecConfig.from_settings()
    as_of_ts = pd.Timestamp(as_of).normalize()
    as_of = as_of_ts.date()
    # Web rows of the windows everybody's statistics use (a day more: an age of exactly
    # the window still counts); the ranked customers' older ones are added after the plan.
    d = rec_data.load(as_of, web_days=max(cfg.web_window_days, cfg.recent_view_days, 7) + 1)
    summary: dict = {"as_of": as_of.isoformat(), "web_data": d.has_web}
    if rec_data.no_items(d, as_of):
        return summary | {"rows": 0, "customers": 0, "method": "none", "model_version": None}
    booster, version, status = _scoring_model(cfg, as_of)
    custs = active_customers(Snapshot(d, as_of_ts, cfg))
    prints = fingerprints(d, custs, as_of)
    todo = plan(d, custs, prints, as_of, version, cfg)
    # the older web rows of the ranked customers; everybody's when most are ranked (a list
    # of most keys in the query costs more than the few other customers' rows) or when the
    # list would be longer than a query should carry (a million customers: ~180k a day)
    most = (
        "all" in todo.why
        or 2 * len(todo.rank) > len(custs)
        or len(todo.rank) > MAX_LISTED_CUSTOMERS
    )
    d = rec_data.with_web_history(d, as_of, None if most else todo.rank)
    recs = score(Snapshot(d, as_of_ts, cfg), todo.rank, cfg, booster)
    now = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None)).floor("s")
    fresh = pd.DataFrame(
        {
            "customer_key": d.customers[recs["cust"].to_numpy()].astype(str),
            "as_of_date": as_of,
            "rank": recs["rank"].astype("int32"),
            "product_id": d.product_ids[recs["item"].to_numpy()].astype(str),
            "score": recs["score"].astype(float),
            "reason": recs["reason"].astype(str),
            "model_version": version,
            "scored_at": now,
        }
    )
    carried = todo.carried.assign(as_of_date=as_of)
    out = pd.concat([fresh, carried[fresh.columns]], ignore_index=True) if len(carried) else fresh
    keys = d.customers[custs].astype(str)
    # carried lists keep the date they were ranked; the rest were ranked today
    ranked_as_of = pd.to_datetime(todo.ranked_as_of.reindex(keys)).fillna(as_of_ts)
    state = pd.DataFrame(
        {
            "customer_key": keys,
            "as_of_date": as_of,
            "inputs_hash": prints,
            "ranked_as_of": ranked_as_of.dt.date.to_numpy(),
            "model_version": version,
        }
    )
    written = outputs.write(out, RECS_TABLE, as_of)
    outputs.write(state, STATE_TABLE, as_of)
    summary["coverage"] = _coverage(d, out, as_of, version, cfg)
    summary |= {
        "model_version": version,
        "model_status": status,
        "method": "ranker" if booster is not None else "blend",
        "customers": int(out["customer_key"].nunique()),
        "ranked": int(len(todo.rank)),
        "plan": todo.why,
        "rows": int(written),
        "reasons": {str(k): int(v) for k, v in recs["source"].value_counts().items()},
    }
    log.info(
        "wrote %d recommendations for %d customers at %s (%s, %s); ranked %d now: %s",
        written,
        summary["customers"],
        as_of,
        version,
        status,
        len(todo.rank),
        todo.why,
    )
    return json.loads(json.dumps(summary, default=str))
