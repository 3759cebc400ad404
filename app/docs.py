"""``make docs``: one offline site under ``<local>/docs/`` behind ``index.html``.

- ``dbt/index.html``: ``dbt docs generate --static`` (manifest and catalog inside the one
  file), generated into its own target path so the pipeline's target is untouched;
- ``quality/``: the Great Expectations data docs of every date with their shared
  ``_assets/`` (already offline: ``quality/docs_assets``), copied with their layout so
  their relative links hold;
- ``models/churn/<version>/`` and ``models/recommendations/<as_of>/``: the training
  reports (self-contained HTML, figures inline).

``dbt docs generate`` reads the warehouse's catalog, so run it when no pipeline run
writes the DuckDB file (``make run`` holds it for the whole chain).
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from app.registry import REPORT_KINDS
from customer720.dbt import DbtError, project_args, project_vars
from customer720.settings import Settings, apply_tool_env, get_settings

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
# What a page may not reference: anything on another host (the site must work offline).
EXTERNAL = re.compile(
    r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["'](?:https?:)?//""", re.I
)


def _dbt_docs(settings: Settings, out: Path) -> Path:
    """``dbt docs generate --static`` (a two-word command, which ``run_dbt`` does not take)."""
    from dbt.cli.main import dbtRunner

    apply_tool_env()
    target = settings.local_dir / "dbt" / "docs_target"
    cli = ["docs", "generate", "--static", "--target-path", str(target), *project_args(settings)]
    cli += ["--vars", json.dumps(project_vars(settings))]
    log.info("dbt %s", " ".join(cli))
    result = dbtRunner().invoke(cli)
    if not result.success:
        raise DbtError(
            f"dbt docs generate failed: {result.exception or 'see the dbt log'}\n"
            f"Log: {settings.local_dir / 'dbt' / 'logs'}"
        )
    out.mkdir(parents=True, exist_ok=True)
    page = out / "index.html"
    page.write_text(_fix_dbt_page((target / "static_index.html").read_text()))
    for name in ("manifest.json", "catalog.json"):  # for tools that read them beside the page
        shutil.copyfile(target / name, out / name)
    return page


# dbt-docs' own page requests two URLs that exist nowhere: the menu's SVG icons as a
# literal "{{ getIcon(...) }}" (xlink:href is set before Angular interpolates it) and a
# webpack placeholder for the favicon. Angular's ng-attr- sets the icon only once it is
# known; the favicon link goes (the page has no icon file to point at).
DBT_PAGE_FIXES = (
    ('<use xlink:href="{{ getIcon(', '<use ng-attr-xlink:href="{{ getIcon('),
    ("""<link rel="shortcut icon" href="${require('./assets/favicons/favicon.ico')}"/>""", ""),
)


def _fix_dbt_page(html: str) -> str:
    for old, new in DBT_PAGE_FIXES:
        html = html.replace(old, new)
    return html


def _data_docs(settings: Settings, out: Path) -> list[tuple[str, str]]:
    src = settings.reports_dir / "quality"
    if not src.is_dir():
        return []
    shutil.copytree(src, out, dirs_exist_ok=True)
    pages = sorted(out.glob("*/gx/uncommitted/data_docs/local_site/index.html"), reverse=True)
    return [(p.relative_to(out).parts[0], p.relative_to(out.parent).as_posix()) for p in pages]


def _model_reports(settings: Settings, out: Path) -> dict[str, list[tuple[str, str]]]:
    found: dict[str, list[tuple[str, str]]] = {}
    for kind in sorted(REPORT_KINDS):
        pages = []
        for report in sorted((settings.reports_dir / kind).glob("*/report.html"), reverse=True):
            dest = out / kind / report.parent.name
            shutil.copytree(report.parent, dest, dirs_exist_ok=True)
            pages.append(
                (report.parent.name, (dest / "report.html").relative_to(out.parent).as_posix())
            )
        found[kind] = pages
    return found


def _links(items: list[tuple[str, str]], testid: str) -> str:
    if not items:
        return '<p class="muted">None yet.</p>'
    rows = "".join(f'<li><a href="{escape(href)}">{escape(name)}</a></li>' for name, href in items)
    return f'<ul data-testid="{testid}">{rows}</ul>'


def build_docs(settings: Settings | None = None) -> Path:
    """Build the site; return its index page. Every page is checked for off-site links."""
    settings = settings or get_settings()
    site = settings.local_dir / "docs"
    partial = site.with_name("docs.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _dbt_docs(settings, partial / "dbt")
    quality = _data_docs(settings, partial / "quality")
    reports = _model_reports(settings, partial / "models")
    shutil.copyfile(HERE / "static" / "app.css", partial / "app.css")
    models = "".join(
        f"<h3>{escape(kind)}</h3>{_links(items, f'reports-{kind}')}"
        for kind, items in reports.items()
    )
    built = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    (partial / "index.html").write_text(
        f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>customer720 docs</title>
<link rel="stylesheet" href="app.css"></head>
<body><header class="top"><span class="brand">customer<b>720</b> docs</span></header><main>
<h1>customer720 documentation</h1>
<div class="grid">
<section class="panel"><h2>Warehouse models (dbt)</h2>
<p><a href="dbt/index.html" data-testid="dbt-docs">dbt docs</a>: every source, model, column, test and
exposure, with lineage (one static page, <code>dbt docs generate --static</code>).</p></section>
<section class="panel"><h2>Data quality (Great Expectations)</h2>
<p class="muted">The gates' data docs per run date: raw, marts and scores suites.</p>
{_links(quality, "data-docs")}</section>
<section class="panel"><h2>Model reports</h2>{models}</section>
</div>
<p class="muted">Built {built}; works offline (no page links another host).</p>
</main></body></html>
"""
    )
    offenders = [
        str(p.relative_to(partial))
        for p in partial.rglob("*.html")
        if EXTERNAL.search(p.read_text(errors="replace"))
    ]
    if offenders:
        log.warning("pages that reference another host (need the network): %s", offenders)
    shutil.rmtree(site, ignore_errors=True)
    partial.rename(site)
    return site / "index.html"
