"""The recommender's report: ``<reports_dir>/recommendations/<as_of>/metrics.json`` and a
small HTML page with the offline evaluation table."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from ml.common.registry import write_json
from ml.common.report import html_table


def write_recommendation_report(as_of: str, metrics: dict, reports_dir: Path) -> Path:
    out = reports_dir / as_of
    write_json(out / "metrics.json", metrics)
    rows = metrics["offline"]
    cols = ["map_at_k", "recall_at_k", "ndcg_at_k", "precision_at_k", "candidate_recall"]
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Recommendations {as_of}
</title><style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head>
<body><h1>Recommendations — offline evaluation, as of {as_of}</h1>
<p>Trained on data up to {metrics["split_date"]}, judged on purchases in the
{metrics["eval_days"]} days after it ({rows.get("blend", {}).get("n_users", 0)} customers).</p>
{html_table(rows, cols)}</body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path


def rebuild_recommendation_report(as_of: dt.date) -> Path:
    """Re-render ``report.html`` of the recommender trained for ``as_of`` from its
    ``metrics.json``."""
    from ml.common.config import RecConfig

    reports_dir = RecConfig.from_settings().reports_dir
    path = reports_dir / as_of.isoformat() / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(
            f"no recommender was trained for {as_of} ({path} is missing); run "
            f"`python -m ml recs train --as-of {as_of}`"
        )
    return write_recommendation_report(as_of.isoformat(), json.loads(path.read_text()), reports_dir)
