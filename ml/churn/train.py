"""Train the churn model for one as-of date: training set (:mod:`ml.churn.dataset`) → fit →
calibrate → evaluate → compare with baselines → promote (:func:`ml.common.registry.promote`:
version, champion/challenger, registry) → report.

``train_churn(as_of)`` is the entry point for the CLI and the Airflow task.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import numpy as np
import pandas as pd

from ml.churn import baselines
from ml.churn.dataset import history_view, training_data
from ml.churn.features import build_matrix
from ml.churn.model import Calibrator, feature_importance, fit_booster, predict_proba, raw_scores
from ml.churn.registry import KIND, load_model, write_model
from ml.common import oracle, registry
from ml.common.config import ChurnConfig
from ml.common.evaluate import calibration_curve, classification_metrics

log = logging.getLogger(__name__)

Step = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def sanity_gates(metrics: dict, baseline_metrics: dict, cfg: ChurnConfig) -> tuple[bool, list[str]]:
    """The model must beat every baseline's ROC-AUC and keep ECE within ``cfg.max_ece``."""
    failures = []
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
    """The champion's ROC-AUC on the same holdout rows (for the champion/challenger step)."""

    def score(version: str) -> float:
        champ = load_model(cfg.model_dir, version)
        y = holdout["churned"].to_numpy(int)
        prob = predict_proba(champ.booster, champ.calibrator, build_matrix(holdout, champ.spec))
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
    calibrator = Calibrator(cfg.calibration, cfg.seed).fit(
        raw_scores(booster, X["calibration"]), y["calibration"]
    )
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
    gates_ok, failures = sanity_gates(metrics, base_metrics, cfg)
    for failure in failures:
        log.warning("sanity gate: %s", failure)

    importance = feature_importance(booster)
    on_step("registry and report")

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
                "rows": {k: int(len(v)) for k, v in y.items()},
                "churn_rate": {k: float(np.mean(v)) if len(v) else None for k, v in y.items()},
                "features": spec.to_dict(),
                "feature_source_dtypes": {
                    n: str(train[n].dtype) if n in train else "derived (ml.churn.features)"
                    for n in spec.names
                },
                "best_iteration": booster.best_iteration,
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

    version, decision = registry.promote(
        cfg.model_dir,
        KIND,
        as_of,
        [booster.model_to_string(), repr(calibrator.method)],
        gates_ok=gates_ok,
        score=metrics["roc_auc"],
        champion_score=_champion_auc(holdout, cfg),
        contest=registry.Contest(
            "ROC-AUC", "champion_holdout_roc_auc", "this holdout", cfg.champion_margin
        ),
        metadata=metadata_of,
        write_model=lambda folder: write_model(folder, booster, calibrator),
    )
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
        "gates_passed": gates_ok,
        "gate_failures": failures,
        "promoted": decision["promoted"],
        "champion": registry.champion_version(cfg.model_dir),
        "decision": decision["reason"],
        "report": str(report_path),
    }
    log.info(
        "churn model %s: ROC-AUC %.4f, gates %s, %s",
        version,
        metrics["roc_auc"],
        "passed" if gates_ok else "FAILED",
        decision["reason"],
    )
    return summary
