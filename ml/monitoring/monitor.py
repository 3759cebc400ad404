"""``monitor_models(as_of)``: one run of model monitoring → ``ml.model_monitoring``.

Every run writes, for its ``as_of_date`` (replaced per date, so a re-run is idempotent):

- **stability** of the churn scores issued today: PSI of each model feature and of the
  score against the reference distributions stored with the model version in use
  (:mod:`ml.monitoring.psi`, ``reference.json`` written at training time);
- **realised quality** (:mod:`ml.monitoring.realised`) of every issue week whose outcome
  window has closed and that no earlier run has judged yet, looking back at most
  :data:`LOOKBACK_WEEKS` weeks (so a gap in the runs is caught up, and the cost stays a
  week of scores). A week is judged once; the holdout figure of its model version is the
  reference.

Alerts (``is_alert``) follow the settings ``C720_MONITOR_AUC_MARGIN`` and
``C720_MONITOR_PSI_MAX``; :func:`quality.gates.check_models` reads them and
``orchestrate`` sends them through the alert callback.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from customer720 import warehouse
from customer720.settings import get_settings
from ml.churn.features import FeatureSpec, build_matrix
from ml.common import data, outputs
from ml.common.config import ChurnConfig, RecConfig
from ml.common.data import lit
from ml.monitoring import psi, realised

log = logging.getLogger(__name__)

TABLE = "model_monitoring"
REFERENCE_FILE = "reference.json"
LOOKBACK_WEEKS = 8


def write_reference(folder: Path, reference: dict) -> None:
    """Keep a model version's reference distributions beside its files (training time)."""
    (folder / REFERENCE_FILE).write_text(json.dumps(reference))


def _reference(model_dir: Path, version: str) -> tuple[dict | None, FeatureSpec | None]:
    """The version's reference and the feature spec its bins were made with. A baseline
    champion has its own score bins; its features are those of the LightGBM model of the
    run that chose it (``trained_with``)."""
    folder = model_dir / version
    if not (folder / REFERENCE_FILE).exists():
        return None, None
    ref = json.loads((folder / REFERENCE_FILE).read_text())
    meta = json.loads((folder / "metadata.json").read_text())
    spec_meta = meta
    if "trained_with" in meta:
        spec_meta = json.loads((model_dir / meta["trained_with"] / "metadata.json").read_text())
    spec = FeatureSpec.from_dict(spec_meta["features"]) if "features" in spec_meta else None
    return ref, spec


def churn_stability(as_of: dt.date, cfg: ChurnConfig) -> list[dict]:
    """PSI of each feature and of the score, today's scored customers vs the reference."""
    if not warehouse.table_exists("ml", "churn_predictions"):
        return []
    scores = warehouse.query_df(
        "select customer_key, churn_probability, model_version from ml.churn_predictions "
        f"where as_of_date = {lit(as_of)}"
    )
    out: list[dict] = []
    for version, g in scores.groupby("model_version"):
        ref, spec = _reference(cfg.model_dir, str(version))
        if ref is None:
            log.warning(
                "churn model %s has no reference distributions (trained before monitoring "
                "existed): no PSI until it is retrained",
                version,
            )
            continue
        base = {
            "model": "churn",
            "model_version": str(version),
            "issue_week": realised.week_start(as_of),
            "issued_from": as_of,
            "issued_to": as_of,
            "metric": "psi",
            "n_rows": int(len(g)),
        }
        if "score" in ref:  # a baseline champion scores from order history: no score bins
            out.append(
                base
                | {
                    "subject": "score",
                    "value": psi.column_psi(g["churn_probability"], ref["score"]),
                    "training_psi": ref["score"].get("training_psi"),
                }
            )
        if spec is None:
            continue
        feats = data.load_features([as_of])
        keys = set(g["customer_key"].astype(str))
        feats = feats[feats["customer_key"].astype(str).isin(keys)].reset_index(drop=True)
        X = build_matrix(feats, spec)
        for name, bins in ref["features"].items():
            if name in X.columns:
                value = psi.column_psi(X[name], bins)
                out.append(
                    base
                    | {"subject": name, "value": value, "training_psi": bins.get("training_psi")}
                )
    return out


def _judged(as_of: dt.date, model: str) -> set[tuple[str, dt.date]]:
    """(model_version, issue_week) already judged by runs of earlier dates."""
    if not warehouse.table_exists("ml", TABLE):
        return set()
    frame = warehouse.query_df(
        f"select distinct model_version, issue_week from ml.{TABLE} "
        f"where model = '{model}' and metric <> 'psi' and as_of_date < {lit(as_of)}"
    )
    return {(str(v), pd.Timestamp(w).date()) for v, w in frame.itertuples(index=False)}


def _weeks_to_judge(table: str, horizon: int, as_of: dt.date, model: str) -> tuple[list, list]:
    issued = [d for d in realised.issue_dates(table) if d <= as_of]
    oldest = as_of - dt.timedelta(days=horizon + 7 * LOOKBACK_WEEKS)
    weeks = [w for w in realised.closed_weeks(issued, horizon, as_of) if w >= oldest]
    judged = {w for _, w in _judged(as_of, model)}
    return [w for w in weeks if w not in judged], issued


def _holdout(model_dir: Path, version: str, metric: str) -> float | None:
    """The figure the version was judged on at training time (its holdout / evaluation week)."""
    path = model_dir / version / "metadata.json"
    if not path.exists():
        return None  # the transparent blend: no trained model, no reference figure
    meta = json.loads(path.read_text())
    if metric.startswith("map_at_"):
        value = meta.get("offline", {}).get("ranker", {}).get("map_at_k")
    else:
        value = meta.get("metrics", {}).get(metric)
    return None if value is None else float(value)


def _judge(rows: list[dict], churn: ChurnConfig, recs: RecConfig) -> pd.DataFrame:
    settings = get_settings()
    frame = pd.DataFrame(rows)
    for col in ("subject", "reference_value", "ci_low", "ci_high", "threshold", "n_positives"):
        if col not in frame:
            frame[col] = None
    frame["subject"] = frame["subject"].fillna("model")
    refs, thresholds, alerts = [], [], []
    for r in frame.itertuples(index=False):
        model_dir = churn.model_dir if r.model == "churn" else recs.model_dir
        ref = None if r.metric == "psi" else _holdout(model_dir, r.model_version, r.metric)
        threshold, alert = None, False
        if r.metric == "psi":
            natural = getattr(r, "training_psi", None)
            natural = natural if natural is not None and np.isfinite(natural) else 0.0
            threshold = max(settings.monitor_psi_max, float(natural))
            alert = bool(np.isfinite(r.value) and r.value > threshold)
        elif r.metric == "roc_auc" and ref is not None:
            threshold = ref - settings.monitor_auc_margin
            alert = bool(np.isfinite(r.value) and r.value < threshold)
        refs.append(ref)
        thresholds.append(threshold)
        alerts.append(alert)
    frame["reference_value"] = refs
    frame["threshold"] = thresholds
    frame["is_alert"] = alerts
    return frame.drop(columns=["training_psi"], errors="ignore")


def monitor_models(
    as_of: dt.date, churn: ChurnConfig | None = None, recs: RecConfig | None = None
) -> dict:
    """Compute and write this date's monitoring rows; returns a small summary with alerts."""
    churn = churn or ChurnConfig.from_settings()
    recs = recs or RecConfig.from_settings()
    as_of = pd.Timestamp(as_of).date()
    rows: list[dict] = churn_stability(as_of, churn)
    churn_weeks, churn_issued = _weeks_to_judge(
        "churn_predictions", churn.horizon_days, as_of, "churn"
    )
    for week in churn_weeks:
        rows += realised.churn_week(week, churn_issued, churn)
    rec_weeks, rec_issued = _weeks_to_judge(
        "product_recommendations", recs.horizon_days, as_of, "recommendations"
    )
    for week in rec_weeks:
        rows += realised.recommendation_week(week, rec_issued, recs)
    columns = list(outputs.columns(TABLE))
    if rows:
        frame = _judge(rows, churn, recs)
    else:
        frame = pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    frame["as_of_date"] = as_of
    frame["computed_at"] = pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None)).floor("s")
    for col in ("value", "reference_value", "ci_low", "ci_high", "threshold"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("n_rows", "n_positives"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    written = outputs.write(frame, TABLE, as_of)
    alerts = frame[frame["is_alert"].astype(bool)] if len(frame) else frame
    summary = {
        "as_of": as_of.isoformat(),
        "rows": int(written),
        "judged_weeks": {
            "churn": [w.isoformat() for w in churn_weeks],
            "recommendations": [w.isoformat() for w in rec_weeks],
        },
        "realised": [
            {
                "model": r.model,
                "model_version": r.model_version,
                "issue_week": pd.Timestamp(r.issue_week).date().isoformat(),
                "metric": r.metric,
                "value": realised.nan_to_none(r.value),
                "reference_value": realised.nan_to_none(r.reference_value),
            }
            for r in frame[frame["metric"] != "psi"].itertuples(index=False)
        ],
        "max_psi": {
            str(s): round(float(v), 4)
            for s, v in frame[frame["metric"] == "psi"]
            .set_index("subject")["value"]
            .sort_values(ascending=False)
            .head(5)
            .items()
        }
        if len(frame)
        else {},
        "alerts": int(len(alerts)),
    }
    # The chart is re-drawn when a week is judged (weekly): drawing the report costs
    # seconds, and the daily PSI rows and alerts are in the mart and the alert the same day
    # (`python -m ml churn report` draws it on demand).
    summary["reports"] = _update_reports(frame, churn, render=bool(churn_weeks))
    log.info("model monitoring %s: %d rows, %d alert(s)", as_of, written, len(alerts))
    return summary


def _update_reports(frame: pd.DataFrame, cfg: ChurnConfig, render: bool) -> list[str]:
    """Keep each churn version's monitoring rows beside its report (``monitoring.json``,
    drawn by ``python -m ml churn report`` too) and, with ``render``, re-render the report."""
    from ml.monitoring import report

    paths = []
    versions = set(frame.loc[frame["model"] == "churn", "model_version"]) if len(frame) else set()
    for version in sorted(versions):
        meta_path = cfg.model_dir / version / "metadata.json"
        if not meta_path.exists():
            continue
        meta = json.loads(meta_path.read_text())
        # a baseline champion's report is the one of the LightGBM run that chose it
        shown = meta.get("trained_with", version)
        out = cfg.reports_dir / shown
        report.save(out, report.version_rows(version))
        if render and (out / "holdout_predictions.csv").exists():
            from ml.churn.report import render_churn_html  # matplotlib: only to draw

            shown_meta = json.loads((cfg.model_dir / shown / "metadata.json").read_text())
            predictions = pd.read_csv(out / "holdout_predictions.csv")
            paths.append(str(render_churn_html(out, shown_meta, predictions)))
    return paths
