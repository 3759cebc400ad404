"""Train the CLV model for one as-of date: training set (:mod:`ml.clv.dataset`) → LightGBM →
holdout comparison with the two baselines → promote (the one
:func:`ml.common.registry.promote`) → report (:mod:`ml.clv.report`).

Gates: LightGBM must beat both baselines on the holdout on Spearman *and* mean Poisson
deviance (a proper score of expected revenue; MAE, best at the median, would reward
predicting 0 for the many customers who buy nothing: ml/README.md, CLV). When it
does not, the best baseline (Spearman) is registered as a challenger (version
``baseline-<name>-…``) and scores if it wins, as a churn baseline can. The champion
contest is the holdout Spearman on the same rows, with ``champion_margin``.
"""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pandas as pd

from ml.churn.features import build_matrix
from ml.clv import registry as clv_registry
from ml.clv.baselines import NAMES, historical_average
from ml.clv.dataset import history_view, training_data
from ml.clv.model import fit_booster, predict
from ml.clv.report import write_clv_report
from ml.common import registry
from ml.common.config import ClvConfig
from ml.common.evaluate import regression_metrics

log = logging.getLogger(__name__)

MODELS = ("lightgbm", "historical_average", "bgnbd_gamma_gamma")


def holdout_predictions(
    method: str, rows: pd.DataFrame, label_days: int, loaded: clv_registry.LoadedClv | None = None
) -> np.ndarray:
    """A method's label-window revenue for training-frame rows (the holdout)."""
    if method == "historical_average":
        return historical_average(history_view(rows), label_days)
    if method == "bgnbd_gamma_gamma":
        return rows["pm_revenue"].to_numpy(float)
    if loaded is None or loaded.booster is None:
        raise ValueError(f"no LightGBM model to predict with for {method!r}")
    return predict(loaded.booster, build_matrix(rows, loaded.spec))


def gates(metrics: dict[str, dict]) -> list[str]:
    ours = metrics["lightgbm"]
    failures = []
    for name in ("historical_average", "bgnbd_gamma_gamma"):
        base = metrics[name]
        if not ours["spearman"] > base["spearman"]:
            failures.append(
                f"Spearman {ours['spearman']:.4f} does not beat {NAMES[name]} ({base['spearman']:.4f})"
            )
        if not ours["poisson_deviance"] < base["poisson_deviance"]:
            failures.append(
                f"Poisson deviance {ours['poisson_deviance']:.2f} does not beat "
                f"{NAMES[name]} ({base['poisson_deviance']:.2f})"
            )
    return failures


def train_clv(as_of: dt.date, cfg: ClvConfig | None = None) -> dict:
    """Train, evaluate and register a CLV model for ``as_of``; returns a small summary."""
    cfg = cfg or ClvConfig.from_settings()
    as_of = pd.Timestamp(as_of).date()
    td = training_data(as_of, cfg)
    booster = fit_booster(td.X["train"], td.y["train"], td.X["valid"], td.y["valid"], cfg)
    holdout, y = td.parts["holdout"], td.y["holdout"]
    preds = {"lightgbm": predict(booster, td.X["holdout"])}
    for name in ("historical_average", "bgnbd_gamma_gamma"):
        preds[name] = holdout_predictions(name, holdout, td.label_days)
    metrics = {name: regression_metrics(y, p) for name, p in preds.items()}
    failures = gates(metrics)
    for failure in failures:
        log.warning("CLV sanity gate: %s", failure)

    def champion_spearman(version: str) -> float:
        loaded = clv_registry.load(cfg.model_dir, version)
        return regression_metrics(
            y, holdout_predictions(loaded.method, holdout, td.label_days, loaded)
        )["spearman"]

    contest = registry.Contest(
        "Spearman", "champion_holdout_spearman", "this holdout", cfg.champion_margin
    )

    def metadata_of(method: str):
        def build(version: str, decision: dict) -> dict:
            return {
                "version": version,
                "model_type": "lightgbm_tweedie" if method == "lightgbm" else f"baseline_{method}",
                "method": method,
                "as_of": as_of,
                "registered_at": dt.datetime.now(dt.UTC).replace(tzinfo=None),
                "horizon_days": cfg.horizon_days,
                "label_days": td.label_days,
                "inactivity_days": cfg.inactivity_days,
                "cutoffs": td.cutoffs,
                "holdout_cutoff": td.holdout_cutoff,
                "rows": {k: int(len(v)) for k, v in td.parts.items()},
                "features": td.spec.to_dict(),
                "trees": booster.current_iteration(),
                "metrics": metrics[method],
                "all_models": metrics,
                "gates": {"passed": method != "lightgbm" or not failures, "failures": failures},
                "champion_decision": decision,
                "code_version": registry.code_version(),
            }

        return build

    version, decision = registry.promote(
        cfg.model_dir,
        clv_registry.KIND,
        as_of,
        [booster.model_to_string(), str(td.label_days)],
        gates_ok=not failures,
        score=metrics["lightgbm"]["spearman"],
        champion_score=champion_spearman,
        contest=contest,
        metadata=metadata_of("lightgbm"),
        write_model=lambda folder: clv_registry.write_model(folder, booster),
    )
    challenger = None
    if failures:
        best = max(
            ("historical_average", "bgnbd_gamma_gamma"), key=lambda n: metrics[n]["spearman"]
        )
        challenger, challenger_decision = registry.promote(
            cfg.model_dir,
            clv_registry.KIND,
            as_of,
            [best, str(td.label_days), version],
            gates_ok=True,
            score=metrics[best]["spearman"],
            champion_score=champion_spearman,
            contest=contest,
            metadata=metadata_of(best),
            write_model=lambda folder: clv_registry.write_baseline(folder, best),
            prefix=f"baseline-{best}",
        )
        log.warning(
            "CLV: LightGBM failed its gates; baseline %s registered as %s (%s)",
            NAMES[best],
            challenger,
            challenger_decision["reason"],
        )
    holdout_rows = td.parts["holdout"][["customer_key", "cutoff_date", "revenue"]].copy()
    for name, p in preds.items():
        holdout_rows[name] = p
    report_path = write_clv_report(
        cfg.reports_dir / version,
        version,
        {
            "horizon_days": cfg.horizon_days,
            "label_days": td.label_days,
            "cutoffs": td.cutoffs,
            "holdout_cutoff": td.holdout_cutoff,
            "gate_failures": failures,
            "decision": decision["reason"],
        },
        metrics,
        holdout_rows,
    )
    summary = {
        "version": version,
        "as_of": as_of.isoformat(),
        "horizon_days": cfg.horizon_days,
        "label_days": td.label_days,
        "holdout_cutoff": td.holdout_cutoff.isoformat(),
        "rows": {k: int(len(v)) for k, v in td.parts.items()},
        "metrics": {
            name: {
                k: m[k]
                for k in ("spearman", "poisson_deviance", "mae", "total_ratio", "top_decile_share")
            }
            for name, m in metrics.items()
        },
        "gates_passed": not failures,
        "gate_failures": failures,
        "promoted": decision["promoted"],
        "decision": decision["reason"],
        "champion": registry.champion_version(cfg.model_dir),
        "report": str(report_path),
    }
    if challenger:
        summary["baseline_version"] = challenger
    log.info(
        "CLV model %s: holdout Spearman %.4f, Poisson deviance %.2f (historical average "
        "%.4f / %.2f, BG/NBD + Gamma-Gamma %.4f / %.2f); %s",
        version,
        metrics["lightgbm"]["spearman"],
        metrics["lightgbm"]["poisson_deviance"],
        metrics["historical_average"]["spearman"],
        metrics["historical_average"]["poisson_deviance"],
        metrics["bgnbd_gamma_gamma"]["spearman"],
        metrics["bgnbd_gamma_gamma"]["poisson_deviance"],
        decision["reason"],
    )
    return summary
