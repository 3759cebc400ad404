"""The CLV model's report: ``<reports>/clv/<version>/`` with ``metrics.json``,
``holdout_predictions.csv`` (every held-out customer: realised revenue and each model's
prediction) and ``report.html`` (the comparison a reviewer reads)."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from ml.clv.baselines import NAMES
from ml.common import registry
from ml.common.evaluate import REGRESSION_METRICS
from ml.common.report import html_table

COLUMNS = [*REGRESSION_METRICS, "rows"]


def write_clv_report(
    folder: Path, version: str, meta: dict, metrics: dict[str, dict], holdout: pd.DataFrame
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    registry.write_json(folder / "metrics.json", {**meta, "holdout": metrics})
    holdout.to_csv(folder / "holdout_predictions.csv", index=False)
    names = {"lightgbm": "LightGBM", **NAMES}
    rows = {names.get(k, k): v for k, v in metrics.items()}
    failures = meta.get("gate_failures") or []
    page = f"""<!doctype html><html><head><meta charset="utf-8">
<title>CLV model {html.escape(version)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}
td,th{{padding:.2em .8em;text-align:right}}td:first-child{{text-align:left}}</style></head><body>
<h1>CLV model {html.escape(version)}</h1>
<p>CLV = expected net revenue in the next {meta["horizon_days"]} days, trained on a
{meta["label_days"]}-day label window (cutoffs {html.escape(", ".join(map(str, meta["cutoffs"])))};
predictions carried to the horizon by BG/NBD when shorter).
Holdout: a fifth of the customers at {html.escape(str(meta["holdout_cutoff"]))}, none of whose
rows trained the model; realised revenue in the label window.</p>
<h2>Held-out customers</h2>
{html_table(rows, COLUMNS)}
<p>poisson_deviance = mean Poisson deviance (lower is better; with Spearman, what the gates
judge: a proper score of expected revenue, where MAE rewards predicting 0 for the many who
buy nothing); total_ratio = sum predicted / sum realised (1 = calibrated totals);
top_decile_share = share of the realised revenue held by the top 10 % by prediction.</p>
<h2>Gates and champion</h2>
<p>{"passed" if not failures else "failed: " + html.escape("; ".join(failures))}.
{html.escape(str(meta.get("decision", "")))}</p>
</body></html>"""
    (folder / "report.html").write_text(page)
    return folder / "report.html"
