"""The monitoring chart of a churn model's report: realised ROC-AUC per issue week against
the holdout, and the PSI of the score and the most shifted features per run date.

``monitor_models`` keeps the version's rows in ``<reports_dir>/churn/<version>/monitoring.json``
and re-renders that version's ``report.html`` (:func:`ml.churn.report.render_churn_html`
embeds :func:`chart` when the file exists).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from customer720 import warehouse

log = logging.getLogger(__name__)

FILE = "monitoring.json"
TOP_FEATURES = 5


def version_rows(version: str) -> pd.DataFrame:
    """Every monitoring row of a churn model version (all run dates)."""
    quoted = "'" + version.replace("'", "''") + "'"
    frame = warehouse.query_df(
        "select as_of_date, metric, subject, issue_week, value, reference_value, ci_low, "
        f"ci_high, threshold, is_alert from ml.model_monitoring where model = 'churn' "
        f"and model_version = {quoted} order by as_of_date, metric, subject"
    )
    for col in ("as_of_date", "issue_week"):
        frame[col] = pd.to_datetime(frame[col]).dt.date.astype(str)
    return frame


def save(folder: Path, rows: pd.DataFrame) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    path.write_text(rows.to_json(orient="records"))
    return path


def chart(path: Path) -> str | None:
    """The chart (base64 PNG) from a version's ``monitoring.json``; None when it is empty."""
    from ml.churn.report import _png, plt  # matplotlib loads only when a chart is drawn

    rows = pd.DataFrame(json.loads(path.read_text()))
    if rows.empty:
        return None
    fig, (ax_auc, ax_psi) = plt.subplots(1, 2, figsize=(11, 4))
    auc = rows[rows["metric"] == "roc_auc"].drop_duplicates("issue_week", keep="last")
    if len(auc):
        weeks = pd.to_datetime(auc["issue_week"])
        err = [auc["value"] - auc["ci_low"], auc["ci_high"] - auc["value"]]
        ax_auc.errorbar(weeks, auc["value"], yerr=err, fmt="o-", label="realised (95 % CI)")
        ax_auc.axhline(auc["reference_value"].iloc[-1], color="k", ls=":", label="holdout")
        ax_auc.axhline(auc["threshold"].iloc[-1], color="#a00", ls="--", label="alert below")
        ax_auc.legend(fontsize=8)
    else:
        ax_auc.text(
            0.5, 0.5, "no issue week has closed yet", ha="center", transform=ax_auc.transAxes
        )
    ax_auc.set(title="Realised ROC-AUC by issue week", xlabel="week the scores were issued")
    psi = rows[rows["metric"] == "psi"]
    if len(psi):
        latest = psi[psi["as_of_date"] == psi["as_of_date"].max()]
        top = latest[latest["subject"] != "score"].nlargest(TOP_FEATURES, "value")["subject"]
        for subject in ["score", *top]:
            s = psi[psi["subject"] == subject]
            ax_psi.plot(pd.to_datetime(s["as_of_date"]), s["value"], marker=".", label=subject)
        ax_psi.axhline(psi["threshold"].min(), color="#a00", ls="--", label="PSI limit")
        ax_psi.legend(fontsize=7)
    ax_psi.set(title="PSI vs the model's reference", xlabel="run date")
    fig.autofmt_xdate()
    return _png(fig)
