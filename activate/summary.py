"""The run summary: what a person reads when a run ends.

Each pipeline step returns a small dict; this module turns them into a short Markdown
report (also kept as JSON) under ``reports/runs/<date>/`` and ``reports/run_summary.md``.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from customer720.settings import Settings, get_settings

log = logging.getLogger(__name__)

# The customers most at risk who are still active: a lapsed customer scores high too, but
# is one for a win-back campaign, not a retention call (the README's query, the app's list).
EXAMPLE_QUERY = """select customer_key, journey_stage, churn_probability, churn_risk_band,
       churn_top_reasons, next_best_products
from marts.dim_customer_720
where churn_risk_band = 'high' and journey_stage <> 'lapsed'
order by churn_probability desc
limit 10;"""

BASELINE_NAMES = {"recency_rule": "recency", "rfm_logistic": "RFM logistic", "bgnbd": "BG/NBD"}
CLV_NAMES = {
    "lightgbm": "LightGBM",
    "historical_average": "historical average",
    "bgnbd_gamma_gamma": "BG/NBD + Gamma-Gamma",
}


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _ingest(parts: dict) -> list[str]:
    crm, events = parts.get("ingest_crm") or {}, parts.get("ingest_events") or {}
    if not crm and not events:
        return []
    line = f"- ingest: CRM {_n(crm.get('rows_changed', 0))} new or changed rows"
    seconds = crm.get("seconds", 0) or 0
    if events:
        line += (
            f"; events {_n(events.get('rows_loaded', 0))} rows from "
            f"{_n(events.get('files_loaded', 0))} new files, "
            f"{_n(events.get('rows_quarantined', 0))} quarantined"
        )
        seconds += events.get("seconds", 0) or 0
    return [line + f" ({seconds:.1f} s)", *_quarantine(crm, events)]


def _quarantine(crm: dict, events: dict) -> list[str]:
    """Quarantined records of this run's loads per CRM table and for events, with the top
    reasons and the query that lists them (``ingest.quarantine``)."""
    lines = []
    for what, part in (("CRM", crm), ("events", events)):
        q = part.get("quarantine") or {}
        if not q.get("total"):
            continue
        lines.append(
            f"- quarantined ({what}): {_n(q['total'])} records — list them: `{q['query']}`"
        )
        for table, entry in q.get("tables", {}).items():
            reasons = "; ".join(f"{_n(n)} x {r}" for r, n in entry.get("reasons", []))
            lines.append(f"    - {table}: {_n(entry['rows'])} ({reasons})")
    return lines


def _gates(parts: dict) -> list[str]:
    gates = [
        (k.removeprefix("quality_"), v) for k, v in parts.items() if k.startswith("quality_") and v
    ]
    if not gates:
        return []
    marks = ", ".join(f"{name} {_gate_mark(g)}" for name, g in gates)
    return [f"- quality gates: {marks} (data docs: {gates[-1][1].get('data_docs', '')})"]


def _gate_mark(gate: dict) -> str:
    """passed, FAILED, or ALERT for the non-blocking model monitoring gate."""
    if gate.get("success"):
        return "passed"
    return "ALERT" if gate.get("blocking") is False else "FAILED"


def _monitoring(parts: dict) -> list[str]:
    gate = parts.get("quality_models") or {}
    if not gate or gate.get("success"):
        return []
    drifted = ", ".join(gate.get("drifted_features") or []) or "none"
    alerts = gate.get("alerts") or []
    return [
        f"- model monitoring: {len(alerts)} alert(s) (drifted features: {drifted}); "
        "marts.fct_model_monitoring has the figures"
    ] + [f"    - {a}" for a in alerts[:10]]


def _churn(parts: dict) -> list[str]:
    model, scores = parts.get("churn_model") or {}, parts.get("churn_scores") or {}
    lines = []
    if model:
        m = model.get("metrics", {})
        baselines = ", ".join(
            f"{BASELINE_NAMES.get(k, k)} {v:.3f}"
            for k, v in model.get("baselines_roc_auc", {}).items()
        )
        lines.append(
            f"- churn model {model.get('version')}: holdout ROC-AUC {m.get('roc_auc', float('nan')):.3f}, "
            f"PR-AUC {m.get('pr_auc', float('nan')):.3f}, Brier {m.get('brier', float('nan')):.3f}, "
            f"calibration error {m.get('ece', float('nan')):.3f}; baselines ROC-AUC: {baselines}; "
            f"{'champion' if model.get('promoted') else 'not promoted'} ({model.get('decision', '')})"
        )
        if model.get("champion_kind") == "baseline" or model.get("baseline_version"):
            lines.append(f"- churn champion: {model.get('champion_note', model.get('champion'))}")
    if scores:
        bands = scores.get("risk_bands", {})
        lines.append(
            f"- churn scores: {_n(scores.get('rows', 0))} customers with model {scores.get('model_version')}"
            f" ({scores.get('model_status')}): "
            + ", ".join(f"{_n(bands[b])} {b}" for b in ("high", "medium", "low") if b in bands)
        )
    return lines


def _clv(parts: dict) -> list[str]:
    model, scores = parts.get("clv_model") or {}, parts.get("clv_scores") or {}
    lines = []
    if model:
        m = model.get("metrics", {})
        figures = "; ".join(
            f"{CLV_NAMES.get(k, k)} Spearman {v.get('spearman') or float('nan'):.3f}, "
            f"MAE {v.get('mae') or float('nan'):.1f}"
            for k, v in m.items()
        )
        lines.append(
            f"- CLV model {model.get('version')} (label window {model.get('label_days')} days, "
            f"horizon {model.get('horizon_days')}): held-out customers: {figures}; "
            f"{'champion' if model.get('promoted') else 'not promoted'} ({model.get('decision', '')})"
        )
    if scores:
        lines.append(
            f"- CLV: {_n(scores.get('rows', 0))} customers with model {scores.get('model_version')}"
            f" ({scores.get('model_status')}), expected revenue in the next "
            f"{scores.get('horizon_days')} days {_n(round(scores.get('total_clv') or 0))}"
        )
    return lines


def _recommendations(parts: dict) -> list[str]:
    recs = parts.get("recommendations") or {}
    if not recs:
        return []
    # The offline evaluation comes from a training run of this date (the weekly DAG).
    trained = parts.get("recommender_model") or recs
    offline = trained.get("offline", {})
    ours = offline.get(recs.get("method", ""), {})
    # A metric is None when nothing could be evaluated (e.g. no order items in the CRM).
    baselines = {
        k: v
        for k, v in offline.items()
        if k not in ("blend", "ranker") and v.get("map_at_k") is not None
    }
    best = max(baselines.items(), key=lambda kv: kv[1]["map_at_k"], default=(None, {}))
    model = ", ".join(str(recs[k]) for k in ("model_version", "model_status") if recs.get(k))
    line = (
        f"- recommendations: {_n(recs.get('rows', 0))} for {_n(recs.get('customers', 0))} customers "
        f"({recs.get('method')}{': ' + model if model else ''})"
    )
    if ours.get("map_at_k") is not None and best[0]:
        line += (
            f"; offline MAP@10 {ours['map_at_k']:.3f} vs best baseline {best[0]} "
            f"{best[1]['map_at_k']:.3f}, candidate recall {ours.get('candidate_recall', 0):.2f}"
        )
    cov = recs.get("coverage") or {}
    if cov.get("full_list_share") is not None:
        line += (
            f"; {cov['full_list_share']:.0%} of customers with a full list of {cov.get('k', 10)}, "
            f"{cov['catalogue_share']:.0%} of the catalogue recommended"
        )
    lines = [line]
    rules = trained.get("rules") or {}
    if rules:
        text = f"- recommendation rules: category cap {rules.get('category_cap_note', '')}"
        if rules.get("map_cost") is not None:
            text += (
                f"; cost MAP@10 {rules['map_cost']:+.3f} (with the rules "
                f"{rules['map_with_rules']:.3f}, without {rules['map_without_rules']:.3f})"
            )
        lines.append(text)
    return lines


def _writeback(parts: dict) -> list[str]:
    sync = parts.get("crm_writeback") or {}
    if not sync:
        return []
    if sync.get("skipped_reason"):
        return [f"- CRM writeback: skipped, {sync['skipped_reason']}"]
    return [
        f"- CRM writeback: {_n(sync['inserted'])} new, {_n(sync['updated'])} changed, "
        f"{_n(sync['unchanged'])} unchanged, {_n(sync['skipped_no_consent'])} without consent, "
        f"{_n(sync['skipped_deleted'])} deleted, {_n(sync['failed'])} failed"
    ]


def render(as_of: date, parts: dict[str, dict[str, Any]], settings: Settings) -> str:
    published = parts.get("publish") or {}
    lines = [f"# customer720 run for {as_of.isoformat()}", ""]
    lines += _ingest(parts) + _gates(parts)
    if parts.get("dbt"):
        lines.append(f"- dbt: {parts['dbt'].get('nodes')} models and tests built")
    lines += (
        _churn(parts)
        + _clv(parts)
        + _recommendations(parts)
        + _writeback(parts)
        + _monitoring(parts)
    )
    if published.get("tables"):
        lines += ["", "Rows per published table:", ""]
        lines += [f"    {name:<40} {n:>12,}" for name, n in published["tables"].items()]
    lines += [
        "",
        f"Warehouse (the pipeline writes here):  {settings.warehouse}",
        f"Published snapshot (read this one):    {published.get('published', settings.published)}",
        f"Reports (models, data docs, runs):     {settings.reports_dir}",
        "",
        "Try a query:",
        "",
        f".venv/bin/python -c \"import duckdb; print(duckdb.connect('{settings.published}', "
        "read_only=True).sql('''",
        EXAMPLE_QUERY,
        "'''))\"",
        "",
    ]
    return "\n".join(lines)


def write_summary(
    as_of: date, parts: dict[str, dict[str, Any]], settings: Settings | None = None
) -> Path:
    """Write the summary for ``as_of`` as Markdown and JSON; return the Markdown path."""
    settings = settings or get_settings()
    out = settings.reports_dir / "runs" / as_of.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    text = render(as_of, parts, settings)
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(json.dumps(parts, indent=2, default=str))
    (settings.reports_dir / "run_summary.md").write_text(text)
    log.info("run summary written to %s", out / "summary.md")
    return out / "summary.md"
