"""The run summary: what a person reads when a run ends."""

from __future__ import annotations

import json
import logging
from datetime import date
from pathlib import Path
from typing import Any

from customer720.settings import Settings, get_settings

log = logging.getLogger(__name__)

EXAMPLE_QUERY = """select customer_key, journey_stage, churn_probability, churn_risk_band,
       churn_top_reasons, next_best_products
from marts.dim_customer_720
where churn_risk_band = 'high'
order by churn_probability desc
limit 10;"""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _section(title: str, values: dict[str, Any]) -> list[str]:
    lines = [f"## {title}", ""]
    for key, value in values.items():
        if isinstance(value, dict):
            lines.append(
                f"- {key}: "
                + ", ".join(
                    f"{k} {_fmt(v)}" for k, v in value.items() if not isinstance(v, dict | list)
                )
            )
        elif not isinstance(value, list):
            lines.append(f"- {key}: {_fmt(value)}")
    return lines + [""]


def write_summary(
    as_of: date, parts: dict[str, dict[str, Any]], settings: Settings | None = None
) -> Path:
    """Render ``parts`` (one dict per stage) as Markdown + JSON under the reports folder."""
    settings = settings or get_settings()
    out = settings.reports_dir / "runs" / as_of.isoformat()
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# customer720 run for {as_of.isoformat()}", ""]
    published = parts.get("publish", {})
    if published.get("tables"):
        lines += ["## Rows per published table", ""]
        lines += [f"- {name}: {n:,}" for name, n in published["tables"].items()]
        lines.append("")
    for title, values in parts.items():
        if title != "publish" and values:
            lines += _section(title, values)
    warehouse = settings.warehouse
    lines += [
        "## Where the results are",
        "",
        f"- warehouse (pipeline writes here): {warehouse}",
        f"- published snapshot (read this one): {published.get('published', settings.published)}",
        f"- reports (churn model, recommendations, data docs): {settings.reports_dir}",
        "",
        "## Try a query",
        "",
        "```sql",
        f"-- .venv/bin/python -c \"import duckdb; print(duckdb.connect('{settings.published}', "
        "read_only=True).sql('''<query>'''))\"",
        EXAMPLE_QUERY,
        "```",
        "",
    ]
    text = "\n".join(lines)
    (out / "summary.md").write_text(text)
    (out / "summary.json").write_text(json.dumps(parts, indent=2, default=str))
    latest = settings.reports_dir / "run_summary.md"
    latest.write_text(text)
    log.info("run summary written to %s", latest)
    return latest
