"""Train the churn model for one as-of date: training set (:mod:`ml.churn.dataset`) → fit →
calibrate → evaluate → compare with baselines → promote (:func:`ml.common.registry.promote`:
version, champion/challenger, registry) → report.

``train_churn(as_of)`` is the entry point for the CLI and the Airflow task.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import lightgbm as lgb
import numpy as np
import pandas as pd

from ml.churn import baselines, labels
from ml.churn.baseline_model import NAMES, BaselineModel, fit_baseline
from ml.churn.data import order_history
from ml.churn.dataset import TrainingData, history_view, training_data
from ml.churn.features import build_matrix
from ml.churn.model import (
    Calibrator,
    feature_importance,
    fit_booster,
    predict_proba,
    raw_scores,
    refit_booster,
)
from ml.churn.registry import (
    KIND,
    LoadedBaseline,
    load_any,
    load_evaluated,
    write_baseline,
    write_model,
)
from ml.common import data, oracle, registry
from ml.common.config import ChurnConfig
from ml.common.evaluate import calibration_curve, classification_metrics, paired_auc_difference
from ml.monitoring.monitor import write_reference
from ml.monitoring.psi import reference

log = logging.getLogger(__name__)

Step = Callable[[str], None]
NATURAL_SHIFT_DAYS = 28  # monitoring: the span whose feature shift counts as natural


def _noop(_: str) -> None:
    pass


def best_baseline(baseline_metrics: dict) -> str | None:
    """The baseline with the highest holdout ROC-AUC (None when none could be evaluated)."""
    aucs = {k: m["roc_auc"] for k, m in baseline_metrics.items() if np.isfinite(m["roc_auc"])}
    return max(aucs, key=aucs.get) if aucs else None


def compare_with_baselines(
    y: np.ndarray, prob: np.ndarray, base_scores: dict, seed: int
) -> dict[str, dict]:
    """Model − baseline ROC-AUC on the holdout with a 95 % paired bootstrap interval."""
    if len(np.unique(y)) < 2:
        return {}
    return {
        name: paired_auc_difference(y, prob, scores, seed) for name, scores in base_scores.items()
    }


def beats(comparison: dict | None) -> bool:
    """Beating a baseline = the whole 95 % interval of the ROC-AUC difference above 0."""
    return comparison is None or comparison["ci95"][0] > 0


def sanity_gates(metrics: dict, baseline_metrics: dict, cfg: ChurnConfig) -> tuple[bool, list[str]]:
    """The model must beat every baseline's ROC-AUC — the best one with the whole paired
    bootstrap interval of the difference above 0 (``metrics["vs_baselines"]``) — and keep
    ECE within ``cfg.max_ece``."""
    failures = []
    best = best_baseline(baseline_metrics)
    vs = metrics.get("vs_baselines", {}).get(best)
    if best and not beats(vs):
        lo, hi = vs["ci95"]
        failures.append(
            f"ROC-AUC difference to the best baseline {best} {vs['difference']:+.4f} "
            f"(95 % CI {lo:+.4f} to {hi:+.4f}) is not above 0"
        )
    for name, m in baseline_metrics.items():
        if not metrics["roc_auc"] > m.get("roc_auc", float("-inf")):
            failures.append(
                f"ROC-AUC {metrics['roc_auc']:.4f} does not beat baseline {name} "
                f"({m['roc_auc']:.4f})"
            )
    if not metrics["ece"] <= cfg.max_ece:
        failures.append(f"ECE {metrics['ece']:.4f} above the limit {cfg.max_ece}")
    return not failures, failures


def _champion_auc(holdout: pd.DataFrame, cfg: ChurnConfig) -> Callable[[str], float]:
    """The champion's ROC-AUC on the same holdout rows (for the champion/challenger step):
    of its evaluated fit, like the challenger's (its deployed refit fitted a cutoff whose
    label window can reach into this holdout's when it was trained a few weeks earlier)."""

    def score(version: str) -> float:
        champ = load_any(cfg.model_dir, version)
        y = holdout["churned"].to_numpy(int)
        if isinstance(champ, LoadedBaseline):
            prob = champ.model.predict_proba(history_view(holdout))
        else:
            booster, calibrator = load_evaluated(cfg.model_dir, version)
            prob = predict_proba(booster, calibrator, build_matrix(holdout, champ.spec))
        return classification_metrics(y, prob)["roc_auc"]

    return score


def train_churn(as_of: dt.date, cfg: ChurnConfig | None = None, on_step: Step = _noop) -> dict:
    """Train, evaluate and register a churn model for ``as_of``; returns a small summary."""
    from ml.churn import report  # matplotlib is heavy; import only when training

    cfg = cfg or ChurnConfig.from_settings()
    as_of = pd.Timestamp(as_of).date()
    on_step("labels and features")
    td = training_data(as_of, cfg)
    frame, info, spec, X, y = td.frame, td.info, td.spec, td.X, td.y
    train, holdout = td.parts["train"], td.parts["holdout"]

    on_step("LightGBM")
    booster = fit_booster(X["train"], y["train"], X["valid"], y["valid"], cfg)
    calibrator = _calibrated(booster, td, cfg)
    on_step("evaluation and baselines")
    prob = predict_proba(booster, calibrator, X["holdout"])
    metrics = classification_metrics(y["holdout"], prob)
    metrics["calibration_curve"] = calibration_curve(y["holdout"], prob)
    metrics["raw_roc_auc"] = classification_metrics(
        y["holdout"], raw_scores(booster, X["holdout"])
    )["roc_auc"]
    fit_rows = frame[frame["split"] != "holdout"]
    base_metrics, base_scores = baselines.evaluate_baselines(
        history_view(fit_rows), history_view(holdout), cfg.horizon_days, cfg.seed
    )
    truth = oracle.oracle_metrics(holdout, prob, cfg.horizon_days)  # simulated companies only
    if truth:
        metrics.update(truth)
    metrics["vs_baselines"] = compare_with_baselines(y["holdout"], prob, base_scores, cfg.seed)
    gates_ok, failures = sanity_gates(metrics, base_metrics, cfg)
    for failure in failures:
        log.warning("sanity gate: %s", failure)

    # Everything above judged `booster` (fitted without the purged rows); what is registered
    # and scores is `deployed`, the same fit plus those rows when there are any.
    on_step("deployed refit")
    deployed, deployed_calibrator, deployed_refit = _deployed_model(td, booster, calibrator, cfg)
    importance = feature_importance(deployed)
    on_step("registry and report")
    features_ref = _monitoring_reference(as_of, td.spec, deployed, deployed_calibrator, cfg)

    metadata: dict = {}

    def metadata_of(version: str, decision: dict) -> dict:
        metadata.update(
            {
                "version": version,
                "model_type": "lightgbm_binary+" + cfg.calibration,
                "as_of": as_of,
                "registered_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                "horizon_days": cfg.horizon_days,
                "inactivity_days": cfg.inactivity_days,
                "training_window": {
                    "first_cutoff": min(frame["cutoff_date"]).date(),
                    "last_cutoff": max(frame["cutoff_date"]).date(),
                },
                "cutoffs": info["splits"],
                # customers in the training frame when sampled (C720_CHURN_TRAIN_CUSTOMERS)
                "sampled_customers": info["sampled_customers"],
                "rows": {k: int(len(v)) for k, v in y.items()},
                "churn_rate": {k: float(np.mean(v)) if len(v) else None for k, v in y.items()},
                "features": spec.to_dict(),
                "feature_source_dtypes": {
                    n: str(train[n].dtype) if n in train else "derived (ml.churn.features)"
                    for n in spec.names
                },
                "trees": booster.current_iteration(),
                # what the registered (scoring) model fitted beyond the evaluated one's
                # rows["train"] + rows["valid"]; None: it is the evaluated model itself
                "deployed_refit": deployed_refit,
                "params": {
                    k: v for k, v in vars(cfg).items() if k not in ("model_dir", "reports_dir")
                },
                "metrics": metrics,
                "baselines": base_metrics,
                "feature_importance_gain": importance,
                "gates": {"passed": gates_ok, "failures": failures},
                "champion_decision": decision,
                "code_version": registry.code_version(),
            }
        )
        return metadata

    best = best_baseline(base_metrics)
    challenger = None
    if best and not beats(metrics["vs_baselines"].get(best)):
        on_step(f"baseline champion ({best})")
        trained_with = registry.version_id(
            as_of, deployed.model_to_string(), repr(deployed_calibrator.method)
        )
        challenger = _register_baseline(
            best,
            fit_rows,
            holdout,
            as_of,
            cfg,
            metrics["vs_baselines"][best],
            trained_with,
            (train, features_ref),
        )
    contest = registry.Contest(
        "ROC-AUC", "champion_holdout_roc_auc", "this holdout", cfg.champion_margin
    )
    version, decision = registry.promote(
        cfg.model_dir,
        KIND,
        as_of,
        [deployed.model_to_string(), repr(deployed_calibrator.method)],
        gates_ok=gates_ok,
        score=metrics["roc_auc"],
        champion_score=_champion_auc(holdout, cfg),
        contest=contest,
        metadata=metadata_of,
        write_model=lambda folder: (
            write_model(
                folder,
                deployed,
                deployed_calibrator,
                None if deployed_refit is None else (booster, calibrator),
            ),
            write_reference(folder, features_ref),
        ),
    )
    champion = registry.champion_version(cfg.model_dir)
    metadata["champion_after_run"] = _champion_note(champion, version, challenger, cfg)
    registry.write_json(cfg.model_dir / version / "metadata.json", metadata)
    predictions = holdout[["customer_key", "cutoff_date", "churned"]].copy()
    predictions["model"] = prob
    for name, s in base_scores.items():
        predictions[name] = s
    report_path = report.write_churn_report(version, metadata, predictions, cfg.reports_dir)
    summary = {
        "version": version,
        "as_of": as_of.isoformat(),
        "rows": metadata["rows"],
        "holdout_cutoffs": [d.isoformat() for d in info["splits"]["holdout"]],
        "metrics": {
            k: metrics[k]
            for k in (
                "roc_auc",
                "pr_auc",
                "brier",
                "log_loss",
                "ece",
                "top_decile_lift",
                "oracle_roc_auc",
                "gap_to_oracle",
            )
            if k in metrics
        },
        "baselines_roc_auc": {k: v["roc_auc"] for k, v in base_metrics.items()},
        "vs_baselines": {
            k: {"difference": v["difference"], "ci95": v["ci95"]}
            for k, v in metrics["vs_baselines"].items()
        },
        "best_baseline": best,
        "gates_passed": gates_ok,
        "gate_failures": failures,
        "promoted": decision["promoted"],
        "champion": champion,
        "champion_kind": metadata["champion_after_run"]["kind"],
        "champion_note": metadata["champion_after_run"]["text"],
        "decision": decision["reason"],
        "report": str(report_path),
    }
    if challenger is not None:
        summary["baseline_version"] = challenger["version"]
        summary["baseline_promoted"] = challenger["promoted"]
        summary["baseline_decision"] = challenger["decision"]
    log.info(
        "churn model %s: ROC-AUC %.4f, gates %s, %s",
        version,
        metrics["roc_auc"],
        "passed" if gates_ok else "FAILED",
        decision["reason"],
    )
    return summary


def _calibrated(booster: lgb.Booster, td: TrainingData, cfg: ChurnConfig) -> Calibrator:
    """``booster``'s calibration, fitted on the calibration cutoff (no booster fits it)."""
    return Calibrator(cfg.calibration, cfg.seed).fit(
        raw_scores(booster, td.X["calibration"]), td.y["calibration"]
    )


def _deployed_model(
    td: TrainingData, booster: lgb.Booster, calibrator: Calibrator, cfg: ChurnConfig
) -> tuple[lgb.Booster, Calibrator, dict | None]:
    """The model registered for scoring: evaluate with a gap, then refit on the fresh rows.

    The evaluated ``booster`` fitted the train and valid rows (valid = the customers held
    out for early stopping, fitted once they chose the number of trees), not the purged
    rows of the valid cutoff inside the holdout's label window (ml.churn.dataset), so its
    holdout metrics are honest. Those purged rows are the freshest whose label is known by
    as_of, and a young company has few others: the deployed booster fits train + valid +
    purged with the same parameters and number of trees, and is calibrated like the
    evaluated one on the calibration cutoff (a later cutoff, never fitted by a booster).
    The holdout is fitted by neither. Its holdout metrics are not measured (the holdout's
    customers with nearly their holdout label are among the purged rows); the evaluated
    model's stand for it, a conservative estimate (ml/README.md, measurements).

    No purged rows (the default grid's fallback, or no valid cutoff inside the window):
    the evaluated model is deployed, and the third value is None."""
    if not len(td.purged):
        return booster, calibrator, None
    X_purged = build_matrix(td.purged, td.spec)
    y_purged = td.purged["churned"].to_numpy(int)
    X = pd.concat([td.X["train"], td.X["valid"], X_purged], ignore_index=True)
    y = np.concatenate([td.y["train"], td.y["valid"], y_purged])
    deployed = refit_booster(X, y, booster.current_iteration(), cfg)
    deployed_calibrator = _calibrated(deployed, td, cfg)
    cutoffs = sorted({c.date() for c in td.purged["cutoff_date"]})
    log.info(
        "deployed model: refitted with %d purged rows of %s (%d rows in all, %d trees)",
        len(y_purged),
        [c.isoformat() for c in cutoffs],
        len(y),
        deployed.current_iteration(),
    )
    return (
        deployed,
        deployed_calibrator,
        {"rows": int(len(y)), "purged_rows": int(len(y_purged)), "cutoffs": cutoffs},
    )


def _register_baseline(
    name: str,
    fit_rows: pd.DataFrame,
    holdout: pd.DataFrame,
    as_of: dt.date,
    cfg: ChurnConfig,
    vs: dict,
    trained_with: str,
    training: tuple[pd.DataFrame, dict],
) -> dict:
    """The best baseline as a challenger, through the one ``registry.promote``: it passes
    its gates when its probabilities are calibrated (ECE within ``cfg.max_ece``) — it beats
    or equals every baseline by construction and LightGBM did not beat it."""
    model: BaselineModel = fit_baseline(name, history_view(fit_rows), cfg.horizon_days, cfg.seed)
    y = holdout["churned"].to_numpy(int)
    prob = model.predict_proba(history_view(holdout))
    metrics = classification_metrics(y, prob)
    failures = (
        []
        if metrics["ece"] <= cfg.max_ece
        else [f"ECE {metrics['ece']:.4f} above the limit {cfg.max_ece}"]
    )
    lo, hi = vs["ci95"]
    why = (
        f"LightGBM does not beat {NAMES.get(name, name)} on the holdout: ROC-AUC difference "
        f"{vs['difference']:+.4f} (95 % CI {lo:+.4f} to {hi:+.4f})"
    )
    log.warning("churn: %s; %s is the challenger", why, NAMES.get(name, name))
    coef = model.pipeline[-1].coef_.ravel().tolist()
    # monitoring's reference: the features as binned for the LightGBM model of this run;
    # no score bins (this model scores from order history, not from the feature rows)
    _, features_ref = training
    ref = {k: v for k, v in features_ref.items() if k != "score"}

    def metadata(version: str, decision: dict) -> dict:
        return {
            "version": version,
            "model_type": f"baseline_{name}+logistic",
            "baseline": name,
            "as_of": as_of,
            "registered_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
            "horizon_days": cfg.horizon_days,
            "inactivity_days": cfg.inactivity_days,
            "metrics": metrics,
            "lightgbm_vs_baseline": vs,
            "why": why,
            "trained_with": trained_with,  # the LightGBM model of the same run (its report)
            "gates": {"passed": not failures, "failures": failures},
            "champion_decision": decision,
            "code_version": registry.code_version(),
        }

    version, decision = registry.promote(
        cfg.model_dir,
        KIND,
        as_of,
        [name, repr(coef), repr(model.pipeline[-1].intercept_.tolist())],
        gates_ok=not failures,
        score=metrics["roc_auc"],
        champion_score=_champion_auc(holdout, cfg),
        contest=registry.Contest(
            "ROC-AUC", "champion_holdout_roc_auc", "this holdout", cfg.champion_margin
        ),
        metadata=metadata,
        write_model=lambda folder: (write_baseline(folder, model), write_reference(folder, ref)),
        prefix=f"baseline-{name}",
    )
    return {
        "name": name,
        "version": version,
        "roc_auc": metrics["roc_auc"],
        "promoted": decision["promoted"],
        "decision": decision["reason"],
        "why": why,
    }


def _scored_population(day: dt.date, spec, cfg: ChurnConfig) -> pd.DataFrame:
    """The model matrix of the customers scoring would score at ``day`` (the eligible)."""
    feats = data.load_features([day])
    hist = labels.label_history(
        order_history([day], cfg.horizon_days, labels.needs_engagement(cfg)), cfg
    )
    eligible = set(hist.loc[hist["eligible"], "customer_key"].astype(str))
    feats = feats[feats["customer_key"].astype(str).isin(eligible)].reset_index(drop=True)
    return build_matrix(feats, spec)


def _monitoring_reference(as_of: dt.date, spec, booster, calibrator, cfg: ChurnConfig) -> dict:
    """What monitoring compares each day's scored population with (ml.monitoring.psi): the
    population this model is trained to score, at ``as_of`` (features and scores, binned;
    nothing is read again later), with each feature's shift over the four weeks before
    as_of (from the newest cutoff at least :data:`NATURAL_SHIFT_DAYS` earlier) as its
    natural shift: a young company ages, a 90-day email count follows the campaign
    calendar; a model retrained weekly never sees more than that between trainings.
    Measured on a default 1,000 x 365 company (seed 11): the training rows themselves, which
    span the year of cutoffs, differ from a young company's population of the next day by
    PSI 0.5 (revenue_last_90d), so they cannot be the yardstick."""
    now = _scored_population(as_of, spec, cfg)
    limit = as_of - dt.timedelta(days=NATURAL_SHIFT_DAYS)
    earlier = [c.date() for c in data.feature_cutoffs() if c.date() <= limit]
    rows = now
    cutoffs = pd.Series(pd.Timestamp(as_of), index=now.index)
    if earlier:
        before = _scored_population(earlier[-1], spec, cfg)
        rows = pd.concat([before, now], ignore_index=True)
        cutoffs = pd.Series(
            [pd.Timestamp(earlier[-1])] * len(before) + [pd.Timestamp(as_of)] * len(now)
        )
    ref = reference(rows, predict_proba(booster, calibrator, rows), cutoffs)
    # the bins and shares of today's population only (the earlier rows gave the natural shift)
    today = reference(now, predict_proba(booster, calibrator, now))
    for name, entry in today["features"].items():
        entry["training_psi"] = ref["features"][name].get("training_psi")
    today["score"]["training_psi"] = ref["score"].get("training_psi")
    return today


def _champion_note(
    champion: str | None, trained: str, challenger: dict | None, cfg: ChurnConfig
) -> dict:
    """Which model scores after this run, and why, in words for the report and summary."""
    if champion is None:
        return {
            "version": None,
            "kind": None,
            "text": "no champion yet: the newest run's best model on the holdout scores",
        }
    if challenger is not None and champion == challenger["version"]:
        return {
            "version": champion,
            "kind": "baseline",
            "text": f"baseline {NAMES.get(challenger['name'], challenger['name'])} "
            f"({champion}) is the champion: {challenger['why']}",
        }
    kind = "baseline" if champion.startswith("baseline-") else "lightgbm"
    what = "this model" if champion == trained else f"{kind} {champion}"
    return {"version": champion, "kind": kind, "text": f"{what} is the champion"}
