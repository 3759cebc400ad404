"""The recommender's report: ``<reports_dir>/recommendations/<as_of>/metrics.json`` and a
small HTML page: k, the champion, the offline evaluation table, the business rules and what
they cost, coverage, and (after scoring, ``scoring.json``) coverage of the active customers
with a few example lists."""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from ml.common.registry import write_json
from ml.common.report import html_table

SCORING_FILE = "scoring.json"


def _pct(v) -> str:
    return "–" if v is None or v != v else f"{v:.1%}"


def _rules_html(rules: dict, k: int) -> str:
    if not rules:
        return ""
    items = [f"category cap: {html.escape(str(rules.get('category_cap_note', '')))}"]
    items.append(
        "no just-bought one-off products (C720_REC_EXCLUDE_JUST_BOUGHT): "
        + ("on" if rules.get("exclude_just_bought") else "off")
    )
    if "map_cost" in rules:
        items.append(
            f"cost of the rules on the evaluation week: MAP@{k} {rules['map_with_rules']:.4f} "
            f"with them, {rules['map_without_rules']:.4f} without "
            f"({rules['map_cost']:+.4f} lost)"
        )
    return "<h2>Business rules</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _coverage_html(cov: dict, scoring: dict | None, k: int) -> str:
    items = []
    if cov:
        items.append(
            f"evaluation week ({cov['customers']:,} buyers): {_pct(cov['full_list_share'])} with "
            f"a full list of {k}, {_pct(cov['catalogue_share'])} of the catalogue recommended"
        )
    if scoring:
        items.append(
            f"scoring {scoring['as_of']} ({scoring['active_customers']:,} active customers, "
            f"{html.escape(str(scoring['model_version']))}): {_pct(scoring['full_list_share'])} "
            f"with a full list of {k}, {_pct(scoring['catalogue_share'])} of the catalogue "
            "recommended"
        )
    if not items:
        return ""
    return "<h2>Coverage</h2><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _examples_html(scoring: dict | None) -> str:
    if not scoring or not scoring.get("examples"):
        return ""
    parts = ["<h2>Example lists</h2>"]
    for ex in scoring["examples"]:
        rows = "".join(
            f"<tr><td>{r['rank']}</td><td>{html.escape(str(r['product']))}</td>"
            f"<td>{html.escape(str(r['reason']))}</td></tr>"
            for r in ex["items"]
        )
        parts.append(
            f"<h3>customer {html.escape(str(ex['customer_key']))}</h3><table>"
            f"<tr><th>rank</th><th>product</th><th>reason</th></tr>{rows}</table>"
        )
    return "".join(parts)


def write_recommendation_report(
    as_of: str, metrics: dict, reports_dir: Path, scoring: dict | None = None
) -> Path:
    out = reports_dir / as_of
    write_json(out / "metrics.json", metrics)
    if scoring is None and (out / SCORING_FILE).exists():
        scoring = json.loads((out / SCORING_FILE).read_text())
    rows = metrics["offline"]
    k = metrics.get("k") or next((m.get("k") for m in rows.values() if m.get("k")), 10)
    cols = ["map_at_k", "recall_at_k", "ndcg_at_k", "precision_at_k", "candidate_recall"]
    champion = metrics.get("champion") or "none yet (scoring uses the newest model or the blend)"
    trained = metrics.get("version") or "none (too little data for a ranker)"
    decision = metrics.get("decision", "")
    gap = metrics.get("map_gap_to_best_baseline_ci95")
    gap_html = (
        f"<p>MAP@{k} gap of ours to the best baseline ({html.escape(str(metrics['best_baseline']))})"
        f": 95 % CI {gap[0]:+.4f} to {gap[1]:+.4f} (paired bootstrap).</p>"
        if gap and metrics.get("best_baseline")
        else ""
    )
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>Recommendations {as_of}
</title><style>body{{font-family:sans-serif;max-width:900px;margin:2em auto}}
table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px}}</style></head>
<body><h1>Recommendations — offline evaluation, as of {as_of}</h1>
<table>
<tr><th>k (recommendations a customer)</th><td>{k}</td></tr>
<tr><th>model trained</th><td>{html.escape(str(trained))}</td></tr>
<tr><th>champion</th><td>{html.escape(str(champion))}</td></tr>
<tr><th>decision</th><td>{html.escape(str(decision))}</td></tr>
<tr><th>evaluation week</th><td>purchases in the {metrics["eval_days"]} days after
{metrics["split_date"]} ({rows.get("blend", {}).get("n_users", 0):,} customers)</td></tr>
</table>
<h2>Offline evaluation</h2>
{html_table(rows, cols)}
{gap_html}
{_rules_html(metrics.get("rules", {}), k)}
{_coverage_html(metrics.get("coverage", {}), scoring, k)}
{_examples_html(scoring)}
</body></html>"""
    path = out / "report.html"
    path.write_text(page)
    return path


def add_scoring(as_of: str, scoring: dict, reports_dir: Path) -> Path | None:
    """Keep the scoring run's coverage and examples; re-render the date's report if the
    recommender was trained for that date."""
    out = reports_dir / as_of
    write_json(out / SCORING_FILE, scoring)
    if (out / "metrics.json").exists():
        metrics = json.loads((out / "metrics.json").read_text())
        return write_recommendation_report(as_of, metrics, reports_dir, scoring)
    return None


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
