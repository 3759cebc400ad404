"""The churn model's report: metrics JSON and a self-contained HTML page (plots embedded as
base64 PNG) in ``<reports_dir>/churn/<version>/{metrics.json, holdout_predictions.csv,
report.html}``."""

from __future__ import annotations

import base64
import datetime as dt
import html
import io
import json
import logging
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve, roc_curve  # noqa: E402

from ml.common.evaluate import calibration_curve  # noqa: E402
from ml.common.registry import write_json  # noqa: E402
from ml.common.report import html_table  # noqa: E402

log = logging.getLogger(__name__)


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def _curves(pred: pd.DataFrame, score_cols: list[str]) -> tuple[str, str]:
    y = pred["churned"].to_numpy(int)
    fig_roc, ax_roc = plt.subplots(figsize=(5, 4))
    fig_pr, ax_pr = plt.subplots(figsize=(5, 4))
    for col in score_cols:
        s = pred[col].to_numpy(float)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr, _ = roc_curve(y, s)
        ax_roc.plot(fpr, tpr, label=col)
        prec, rec, _ = precision_recall_curve(y, s)
        ax_pr.plot(rec, prec, label=col)
    ax_roc.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax_roc.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (holdout)")
    ax_pr.set(xlabel="recall", ylabel="precision", title="Precision-recall (holdout)")
    ax_roc.legend(fontsize=8)
    ax_pr.legend(fontsize=8)
    return _png(fig_roc), _png(fig_pr)


def _calibration_plot(pred: pd.DataFrame) -> str:
    curve = calibration_curve(pred["churned"].to_numpy(int), pred["model"].to_numpy(float))
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.plot(curve["mean_predicted"], curve["observed_rate"], "o-", label="model")
    ax.set(
        xlabel="mean predicted churn probability",
        ylabel="observed churn rate",
        title="Calibration (holdout)",
        xlim=(0, 1),
        ylim=(0, 1),
    )
    return _png(fig)


def _importance_plot(importance: dict[str, float], top: int = 15) -> str:
    items = list(importance.items())[:top][::-1]
    fig, ax = plt.subplots(figsize=(5, 0.3 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items])
    ax.set(xlabel="share of total gain", title="Feature importance")
    return _png(fig)


def _lift_plot(pred: pd.DataFrame) -> str:
    df = pred.sort_values("model", ascending=False, kind="mergesort").reset_index(drop=True)
    df["decile"] = np.minimum(df.index * 10 // max(len(df), 1), 9) + 1
    rate = df.groupby("decile")["churned"].mean() / max(df["churned"].mean(), 1e-12)
    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.bar(rate.index.astype(str), rate.to_numpy())
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set(
        xlabel="decile by churn probability (1 = riskiest)", ylabel="lift", title="Lift by decile"
    )
    return _png(fig)


def _split_table(metadata: dict) -> str:
    """Rows and churn rate per split, as a table (not a raw dict)."""
    rows, rate = metadata["rows"], metadata["churn_rate"]
    head = "<tr><th>split</th><th>rows</th><th>churn rate</th></tr>"
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{n:,}</td>"
        f"<td>{'' if rate.get(k) is None else f'{rate[k]:.3f}'}</td></tr>"
        for k, n in rows.items()
    )
    refit = metadata.get("deployed_refit")
    note = (
        ""
        if not refit
        else "<p>The holdout figures are of the model fitted on train + valid. The model "
        f"that scores was refitted with the same trees on those rows plus {refit['purged_rows']:,} "
        "rows of cutoff(s) "
        f"{html.escape(', '.join(str(c) for c in refit['cutoffs']))} (inside the holdout's "
        f"label window, so left out of the evaluated fit): {refit['rows']:,} rows in all.</p>"
    )
    return f"<table>{head}{body}</table>{note}"


def _comparison_table(vs: dict) -> str:
    """LightGBM − baseline ROC-AUC with the paired bootstrap interval, per baseline."""
    if not vs:
        return ""
    head = (
        "<tr><th>baseline</th><th>ROC-AUC difference (model − baseline)</th>"
        "<th>95 % CI (paired bootstrap)</th><th>model beats it</th></tr>"
    )
    body = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v['difference']:+.4f}</td>"
        f"<td>{v['ci95'][0]:+.4f} to {v['ci95'][1]:+.4f}</td>"
        f"<td>{'yes' if v['ci95'][0] > 0 else 'no'}</td></tr>"
        for k, v in vs.items()
    )
    return f"<h2>Model against each baseline</h2><table>{head}{body}</table>"


def write_churn_report(
    version: str, metadata: dict, predictions: pd.DataFrame, reports_dir: Path
) -> Path:
    """Write metrics.json, holdout_predictions.csv and report.html; returns the HTML path."""
    out = reports_dir / version
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "metrics.json",
        {
            k: metadata[k]
            for k in (
                "version",
                "as_of",
                "horizon_days",
                "cutoffs",
                "rows",
                "deployed_refit",
                "churn_rate",
                "metrics",
                "baselines",
                "feature_importance_gain",
                "gates",
                "champion_decision",
                "champion_after_run",
                "code_version",
            )
            if k in metadata
        },
    )
    predictions.to_csv(out / "holdout_predictions.csv", index=False)
    return render_churn_html(out, metadata, predictions)


def _monitoring_html(out: Path) -> str:
    """The section "Since deployment" when monitoring has rows for this version."""
    from ml.monitoring import report as monitoring_report

    path = out / monitoring_report.FILE
    png = monitoring_report.chart(path) if path.exists() else None
    if png is None:
        return ""
    return (
        "<h2>Since deployment (model monitoring)</h2><p>Realised ROC-AUC of the scores "
        "issued each week, once their outcome window closed, against the holdout; PSI of "
        "the score and of the most shifted features against the population the model was "
        "trained to score (marts.fct_model_monitoring).</p>"
        f'<img src="data:image/png;base64,{png}">'
    )


def render_churn_html(out: Path, metadata: dict, predictions: pd.DataFrame) -> Path:
    score_cols = [
        c for c in predictions.columns if c not in ("customer_key", "cutoff_date", "churned")
    ]
    roc, pr = _curves(predictions, score_cols)
    rows = {"LightGBM (calibrated)": metadata["metrics"], **metadata["baselines"]}
    cols = ["roc_auc", "pr_auc", "top_decile_lift", "brier", "log_loss", "ece"]
    gates = metadata["gates"]
    decision = metadata["champion_decision"]
    gate_html = (
        "<p class=ok>Sanity gates passed.</p>"
        if gates["passed"]
        else "<p class=bad>Sanity gates FAILED: "
        + "; ".join(html.escape(f) for f in gates["failures"])
        + "</p>"
    )
    m = metadata["metrics"]
    champ = metadata.get("champion_after_run")
    champion_html = (
        f"<p><b>Champion after this run:</b> {html.escape(champ['text'])}.</p>" if champ else ""
    )
    oracle_html = (
        f"<p>Simulator oracle (true churn probability, same holdout rows and label): ROC-AUC "
        f"{m['oracle_roc_auc']:.4f}; gap to the oracle {m['gap_to_oracle']:.4f} "
        f"({m.get('oracle_rows', '?')} rows).</p>"
        if "oracle_roc_auc" in m
        else ""
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>Churn model {html.escape(metadata["version"])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}
.ok{{color:#176317}}.bad{{color:#a00}} img{{margin:4px}}</style></head><body>
<h1>Churn model {html.escape(metadata["version"])}</h1>
<p>As of {metadata["as_of"]}; churn = no order within {metadata["horizon_days"]} days after the
cutoff. Holdout cutoff(s): {", ".join(str(c) for c in metadata["cutoffs"]["holdout"])}.</p>
{_split_table(metadata)}
{gate_html}
<p>Champion decision for this model: {"promoted" if decision["promoted"] else "not promoted"} —
{html.escape(decision["reason"])}.</p>
{champion_html}
<h2>Holdout metrics</h2>{html_table(rows, cols)}
{_comparison_table(m.get("vs_baselines", {}))}
{oracle_html}
<p>Baselines without probabilities (recency rule, BG/NBD) are judged on ranking only.</p>
<h2>Plots</h2>
<img src="data:image/png;base64,{roc}"><img src="data:image/png;base64,{pr}">
<img src="data:image/png;base64,{_calibration_plot(predictions)}">
<img src="data:image/png;base64,{_lift_plot(predictions)}">
<img src="data:image/png;base64,{_importance_plot(metadata["feature_importance_gain"])}">
{_monitoring_html(out)}
<p>Code version: {html.escape(str(metadata.get("code_version")))}</p>
</body></html>"""
    path = out / "report.html"
    path.write_text(page)
    log.info("churn report written to %s", path)
    return path


def rebuild_churn_report(version: str | None = None, as_of: dt.date | None = None) -> Path:
    """Re-render the HTML report of a churn model.

    ``version`` wins; else the newest model trained for ``as_of``; else the champion (or the
    newest model when there is no champion).
    """
    from ml.common import registry
    from ml.common.config import ChurnConfig

    cfg = ChurnConfig.from_settings()
    if version is None and as_of is not None:
        trained = [
            v
            for v in registry.list_versions(cfg.model_dir)
            if json.loads((cfg.model_dir / v / "metadata.json").read_text())["as_of"]
            == as_of.isoformat()
        ]
        if not trained:
            raise FileNotFoundError(
                f"no churn model was trained for {as_of}; run `python -m ml churn train --as-of "
                f"{as_of}` or omit --as-of to report on the champion"
            )
        version = trained[-1]
    version = version or registry.resolve_scoring_version(cfg.model_dir)[0]
    metadata = json.loads((cfg.model_dir / version / "metadata.json").read_text())
    if "trained_with" in metadata:  # a baseline champion: the report of the run that chose it
        version = metadata["trained_with"]
        metadata = json.loads((cfg.model_dir / version / "metadata.json").read_text())
    out = cfg.reports_dir / version
    predictions = pd.read_csv(out / "holdout_predictions.csv")
    return render_churn_html(out, metadata, predictions)
