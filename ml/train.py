"""Train the churn model for one as-of date: labels → split → fit → calibrate → evaluate →
compare with baselines and the champion → register → report.

``train_churn(as_of)`` is the entry point for the CLI and the Airflow task.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml import baselines, data, labels, oracle, registry
from ml.config import ChurnConfig
from ml.evaluate import calibration_curve, classification_metrics
from ml.features import FeatureSpec, build_matrix, infer_spec
from ml.model import Calibrator, feature_importance, fit_booster, predict_proba, raw_scores

log = logging.getLogger(__name__)

Step = Callable[[str], None]
SPLITS = ("train", "valid", "calibration", "holdout")
HIST = "hist__"  # prefix of order-history columns (labels, baselines) in the training frame


def history_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The order-history columns of a training frame, under their own names (for baselines)."""
    cols = {c: c.removeprefix(HIST) for c in frame.columns if c.startswith(HIST)}
    return frame[["customer_key", "cutoff_date", "churned", *cols]].rename(columns=cols)


def _noop(_: str) -> None:
    pass


def build_training_frame(as_of: dt.date, cfg: ChurnConfig) -> tuple[pd.DataFrame, dict]:
    """Features joined to labels for every labelled cutoff, with a ``split`` column."""
    cutoffs = data.feature_cutoffs()
    labelled = labels.labelled_cutoffs(cutoffs, as_of, cfg.horizon_days)
    splits = labels.assign_splits(labelled, cfg)
    hist = labels.churn_labels(labelled, cfg)
    feats = data.load_features(labelled)
    hist = hist.rename(
        columns={
            c: HIST + c for c in hist.columns if c not in ("customer_key", "cutoff_date", "churned")
        }
    )
    frame = feats.merge(hist, on=["customer_key", "cutoff_date"], how="inner")
    dropped = len(hist) - len(frame)
    if dropped:
        log.info(
            "%d labelled rows have no feature row (customers outside ml.customer_features)", dropped
        )
    frame["split"] = frame["cutoff_date"].map(splits)
    frame = frame[frame["split"].notna()]  # purged cutoffs (labels.assign_splits)
    feature_cols = [c for c in feats.columns if c not in data.KEY_COLUMNS]
    frame = frame.sort_values(["cutoff_date", "customer_key"], kind="mergesort").reset_index(
        drop=True
    )
    if not len(frame):
        raise ValueError(
            "no labelled feature rows: ml.customer_features and marts.fct_orders "
            "do not overlap for the labelled cutoffs"
        )
    info = {
        "all_cutoffs": [c.date() for c in cutoffs],
        "feature_columns": feature_cols,
        "splits": {
            name: sorted(c.date() for c, s in splits.items() if s == name) for name in SPLITS
        },
    }
    return frame, info


def _fallback_split(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """With too few cutoffs, carve valid/calibration from the train customers (logged)."""
    names = set(frame["split"])
    if "valid" in names and "calibration" in names:
        return frame
    frame = frame.copy()
    if "valid" in names:
        frame.loc[frame["split"] == "valid", "split"] = "valid+calibration"
        return frame
    if "calibration" in names:
        frame.loc[frame["split"] == "calibration", "split"] = "valid+calibration"
        return frame
    keys = frame.loc[frame["split"] == "train", "customer_key"].unique()
    rng = np.random.default_rng(seed)
    held = set(rng.choice(keys, size=max(1, len(keys) // 5), replace=False))
    mask = (frame["split"] == "train") & frame["customer_key"].isin(held)
    frame.loc[mask, "split"] = "valid+calibration"
    log.warning(
        "only train + holdout cutoffs: 20%% of train customers used for early stopping "
        "and calibration"
    )
    return frame


def _rows(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[
        frame["split"].isin(
            [name, "valid+calibration"] if name in ("valid", "calibration") else [name]
        )
    ]


@dataclass
class TrainingData:
    """What a churn fit needs: the labelled frame and, per split, its rows and matrices."""

    frame: pd.DataFrame  # every labelled row, with its ``split``
    info: dict  # from build_training_frame
    parts: dict[str, pd.DataFrame]  # split name → its rows
    spec: FeatureSpec
    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]


def training_data(as_of: dt.date, cfg: ChurnConfig) -> TrainingData:
    """Labels, features, split and feature matrices for ``as_of`` (train_churn's inputs)."""
    frame, info = build_training_frame(as_of, cfg)
    frame = _fallback_split(frame, cfg.seed)
    parts = {name: _rows(frame, name) for name in SPLITS}
    spec = infer_spec(parts["train"][info["feature_columns"]])
    return TrainingData(
        frame=frame,
        info=info,
        parts=parts,
        spec=spec,
        X={name: build_matrix(rows, spec) for name, rows in parts.items()},
        y={name: rows["churned"].to_numpy(int) for name, rows in parts.items()},
    )


def _version(as_of: dt.date, booster_text: str, cal: Calibrator) -> str:
    digest = hashlib.sha256(booster_text.encode())
    digest.update(repr(cal.method).encode())
    return f"{as_of:%Y%m%d}-{digest.hexdigest()[:8]}"


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


def challenge(
    version: str, metrics: dict, gates_ok: bool, holdout: pd.DataFrame, cfg: ChurnConfig
) -> dict:
    """Decide whether ``version`` becomes champion; compares both on the same holdout rows."""
    current = registry.champion_version(cfg.model_dir)
    decision = {"previous_champion": current, "champion_holdout_roc_auc": None}
    if not gates_ok:
        decision.update(promoted=False, reason="failed sanity gates")
        return decision
    if current is None:
        decision.update(promoted=True, reason="first model to pass the sanity gates")
        return decision
    if current == version:
        decision.update(promoted=False, reason="identical to the champion (same version)")
        return decision
    try:
        champ = registry.load_model(cfg.model_dir, current)
        y = holdout["churned"].to_numpy(int)
        prob = predict_proba(champ.booster, champ.calibrator, build_matrix(holdout, champ.spec))
        champ_auc = classification_metrics(y, prob)["roc_auc"]
    except (FileNotFoundError, ValueError, KeyError) as exc:
        decision.update(
            promoted=True,
            reason=f"champion {current} cannot be evaluated on this holdout ({exc}); replacing it",
        )
        return decision
    decision["champion_holdout_roc_auc"] = champ_auc
    needed = champ_auc + cfg.champion_margin
    if metrics["roc_auc"] >= needed:
        decision.update(
            promoted=True,
            reason=f"ROC-AUC {metrics['roc_auc']:.4f} >= champion "
            f"{champ_auc:.4f} + margin {cfg.champion_margin}",
        )
    else:
        decision.update(
            promoted=False,
            reason=f"ROC-AUC {metrics['roc_auc']:.4f} < champion "
            f"{champ_auc:.4f} + margin {cfg.champion_margin}; champion kept",
        )
    return decision


def train_churn(as_of: dt.date, cfg: ChurnConfig | None = None, on_step: Step = _noop) -> dict:
    """Train, evaluate and register a churn model for ``as_of``; returns a small summary."""
    from ml import report  # matplotlib is heavy; import only when training

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

    version = _version(as_of, booster.model_to_string(), calibrator)
    decision = challenge(version, metrics, gates_ok, holdout, cfg)
    importance = feature_importance(booster)
    metadata = {
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
            n: str(train[n].dtype) if n in train else "derived (ml.features)" for n in spec.names
        },
        "best_iteration": booster.best_iteration,
        "params": {k: v for k, v in vars(cfg).items() if k not in ("model_dir", "reports_dir")},
        "metrics": metrics,
        "baselines": base_metrics,
        "feature_importance_gain": importance,
        "gates": {"passed": gates_ok, "failures": failures},
        "champion_decision": decision,
        "code_version": registry.code_version(),
    }
    on_step("registry and report")
    registry.save_model(cfg.model_dir, version, booster, calibrator, metadata)
    if decision["promoted"]:
        registry.set_champion(cfg.model_dir, version, decision["reason"])
    else:
        log.info("model %s not promoted: %s", version, decision["reason"])
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
