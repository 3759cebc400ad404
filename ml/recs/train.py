"""Train the recommender for one as-of date (the weekly training DAG): a LightGBM
LambdaRank model (:mod:`ml.recs.rank`) on ``train_weeks`` past weekly cutoffs
(:mod:`ml.recs.weeks`), early-stopped on the next week, evaluated on the last week before
``as_of`` against the baselines (:mod:`ml.recs.evaluate`), then promoted with the churn
model's rule (:func:`ml.common.registry.promote`): beat every baseline, and the champion by
``champion_margin`` MAP@k on the same customers and candidates. The registered model is
the one evaluated: it has seen labels up to the validation cutoff only.

Scoring is :func:`ml.recs.score.recommend`; it never trains.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import lightgbm as lgb
import pandas as pd

from ml.common import registry
from ml.common.config import RecConfig
from ml.recs import data as rec_data
from ml.recs import rank
from ml.recs.evaluate import BASELINES, evaluate, gates, map_on_week
from ml.recs.weeks import cutoffs, labelled_week, training_rows

log = logging.getLogger(__name__)

KIND = "recommendation"


def train_and_register(d: rec_data.RecData, as_of: pd.Timestamp, cfg: RecConfig) -> dict:
    """Train on past weeks, evaluate on the last one, register, decide the champion."""
    train_at, valid_at, ev_at = cutoffs(as_of, cfg)
    train = pd.concat(
        [training_rows(d, at, cfg, qid=i) for i, at in enumerate(train_at)], ignore_index=True
    )
    valid = labelled_week(d, valid_at, cfg, qid=len(train_at))
    ev = labelled_week(d, ev_at, cfg, qid=len(train_at) + 1)
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
            "train": [at.date().isoformat() for at in train_at],
            "validation": valid.at.date().isoformat(),
            "evaluation": ev.at.date().isoformat(),
        },
        "rows": {"train": int(len(train)), "validation": int(len(valid.feats))},
        "train_customers_per_week": cfg.train_customers or None,
        "candidates_per_customer": float(len(ev.feats) / max(ev.feats["cust"].nunique(), 1)),
        "web_data": d.has_web,
        **evaluation,
    }
    if booster is None:
        return info | {"version": None, "promoted": False}
    ok, failures = gates(evaluation)
    for failure in failures:
        log.warning("sanity gate: %s", failure)
    importance = dict(
        zip(
            booster.feature_name(),
            booster.feature_importance("gain").round(2).tolist(),
            strict=True,
        )
    )

    def metadata(version: str, decision: dict) -> dict:
        return {
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

    version, decision = registry.promote(
        cfg.model_dir,
        KIND,
        as_of.date(),
        [text],
        gates_ok=ok,
        score=evaluation["offline"]["ranker"]["map_at_k"] if ok else None,
        champion_score=lambda v: map_on_week(
            registry.load_booster(cfg.model_dir, v, KIND), ev, cfg
        ),
        contest=registry.Contest(
            "MAP@k",
            "champion_map_at_k",
            "this week",
            cfg.champion_margin,
            (FileNotFoundError, KeyError, ValueError, lgb.basic.LightGBMError),
        ),
        metadata=metadata,
        write_model=lambda folder: (folder / "model.txt").write_text(text),
    )
    return info | {
        "version": version,
        "gates_passed": ok,
        "gate_failures": failures,
        "promoted": decision["promoted"],
        "decision": decision["reason"],
    }


def _train(d: rec_data.RecData, as_of_ts: pd.Timestamp, cfg: RecConfig) -> dict:
    """Train, register and report: the training summary."""
    from ml.recs import report

    run = train_and_register(d, as_of_ts, cfg)
    run |= {"k": cfg.k, "champion": registry.champion_version(cfg.model_dir)}
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
        for k in (
            "gates_passed",
            "promoted",
            "decision",
            "map_gap_to_best_baseline_ci95",
            "rules",
            "coverage",
            "champion",
        )
        if k in run
    }
    return summary | {"trained_version": run["version"], "report": str(path)}


def train_recommender(as_of: dt.date, cfg: RecConfig | None = None) -> dict:
    """Train, evaluate, register and decide the champion (the weekly training DAG); the
    summary and the report. Daily scoring (:func:`ml.recs.score.recommend`) uses the champion."""
    cfg = cfg or RecConfig.from_settings()
    as_of_ts = pd.Timestamp(as_of).normalize()
    # Made even when nothing can be trained: "training has run" (orchestrate.needs_training).
    cfg.model_dir.mkdir(parents=True, exist_ok=True)
    d = rec_data.load(as_of_ts.date())
    summary: dict = {"as_of": as_of_ts.date().isoformat(), "web_data": d.has_web}
    if rec_data.no_items(d, as_of_ts.date()):
        return summary | {"trained_version": None}
    return json.loads(json.dumps(summary | _train(d, as_of_ts, cfg), default=str))
