"""Run one Great Expectations suite over one DataFrame and keep the data docs."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from customer720.settings import Settings, get_settings
from quality.docs_assets.vendor import local_name

log = logging.getLogger(__name__)
# GX logs every decorated function at import; keep our logs readable.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)


@dataclass
class SuiteResult:
    suite: str
    success: bool
    failures: list[str] = field(default_factory=list)
    evaluated: int = 0


def gx_root(settings: Settings | None = None, as_of: date | None = None) -> Path:
    """One GX project (suites, results, data docs) per run date, so a date's docs show that
    date's validations only; ``undated`` for checks run outside a dated run."""
    folder = as_of.isoformat() if as_of else "undated"
    return (settings or get_settings()).reports_dir / "quality" / folder


def data_docs_index(settings: Settings | None = None, as_of: date | None = None) -> Path:
    return (
        gx_root(settings, as_of) / "gx" / "uncommitted" / "data_docs" / "local_site" / "index.html"
    )


# Filled by `make install` (quality/docs_assets/vendor.py) from the npm registry.
VENDORED_ASSETS = Path(sys.prefix) / "share" / "customer720" / "gx-docs-assets"
ASSETS_MANIFEST = Path(__file__).resolve().parent / "docs_assets" / "assets.json"
# The logo GX's styles load from its bucket; every site has GX's own logo in static/images/.
REMOTE_LOGO = re.compile(r"https://great-expectations-web-assets\.s3[^\"')]*\.png")
CDN_ATTRIBUTES = re.compile(r"""\s+(integrity|crossorigin)=("[^"]*"|'[^']*'|\S+)""")
ASSET_TAG = re.compile(r"<(?:link|script|img)\b[^>]*>", re.IGNORECASE)


def docs_assets_dir(settings: Settings | None = None) -> Path:
    """One copy of the vendored assets shared by every date's data docs (relative links,
    so the reports folder can be moved or zipped whole)."""
    return (settings or get_settings()).reports_dir / "quality" / "_assets"


def offline_data_docs(site: Path, settings: Settings | None = None) -> int:
    """Point every CDN asset (and the remote logo) of the data docs in ``site`` at local
    copies, so the docs render with no network; return the number of pages changed.

    The assets were vendored at install time; they are copied once per reports folder.
    Without them (no ``make install``) the pages are left linking the CDNs, with a warning.
    """
    urls = {a["url"]: a for a in json.loads(ASSETS_MANIFEST.read_text())["assets"]}
    shared = docs_assets_dir(settings)
    if not (shared / ".complete").exists():
        if not VENDORED_ASSETS.is_dir():
            log.warning("no vendored data-docs assets at %s: run make install", VENDORED_ASSETS)
            return 0
        shutil.copytree(VENDORED_ASSETS, shared, dirs_exist_ok=True)
        (shared / ".complete").touch()
    logo = site / "static" / "images" / "logo-long.png"
    changed = 0
    for page in [*site.rglob("*.html"), *site.glob("static/styles/*.css")]:
        text = page.read_text()

        def here(path: Path, page: Path = page) -> str:
            return os.path.relpath(path, page.parent)

        def rewrite(match: re.Match, page: Path = page) -> str:
            tag = match.group(0)
            hits = [u for u in urls if u in tag]
            for url in hits:
                tag = tag.replace(url, here(shared / local_name(url)))
            # GX counts the folders of a validation page wrongly for an unnamed run
            # (validations/<suite>/__none__/<time>/): re-anchor its static/ links.
            for ref in re.findall(r"""(?:href|src)=["'](\.[^"']*?static/([^"']+))["']""", tag):
                if not (page.parent / ref[0]).exists():
                    tag = tag.replace(ref[0], here(site / "static" / ref[1]))
            return CDN_ATTRIBUTES.sub("", tag) if hits else tag

        new = REMOTE_LOGO.sub(here(logo), ASSET_TAG.sub(rewrite, text))
        if new != text:
            page.write_text(new)
            changed += 1
    return changed


def _context(settings: Settings, as_of: date | None):
    import great_expectations as gx

    root = gx_root(settings, as_of)
    root.mkdir(parents=True, exist_ok=True)
    context = gx.get_context(mode="file", project_root_dir=str(root))
    context.variables.progress_bars = {"globally": False}
    return context


def _describe(result: Any) -> str:
    config = result.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id",)}
    observed = result.result.get("observed_value")
    unexpected = result.result.get("unexpected_count")
    detail = f"observed {observed}" if observed is not None else f"{unexpected} unexpected values"
    # The values themselves say why (a rejected file and its reasons, an unknown event type).
    sample = [v for v in result.result.get("partial_unexpected_list") or [] if v is not None]
    if sample:
        detail += ", e.g. " + " | ".join(str(v) for v in sample[:5])
    return f"{config.type}({', '.join(f'{k}={v}' for k, v in kwargs.items())}): {detail}"


def run_suite(
    name: str,
    df: pd.DataFrame,
    expectations: list[Any],
    settings: Settings | None = None,
    as_of: date | None = None,
) -> SuiteResult:
    """Validate ``df`` against ``expectations`` as suite ``name`` and keep the result in
    ``as_of``'s GX project; :func:`build_data_docs` renders the results into pages."""
    import great_expectations as gx

    settings = settings or get_settings()
    context = _context(settings, as_of)
    source = context.data_sources.add_or_update_pandas("customer720")
    try:
        asset = source.get_asset(name)
    except LookupError:
        asset = source.add_dataframe_asset(name)
    try:
        batch = asset.get_batch_definition("batch")
    except (LookupError, KeyError):
        batch = asset.add_batch_definition_whole_dataframe("batch")
    suite = context.suites.add_or_update(gx.ExpectationSuite(name=name, expectations=expectations))
    validation = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=name, data=batch, suite=suite)
    )
    checkpoint = context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=name,
            validation_definitions=[validation],
            # no UpdateDataDocsAction: it renders the whole site again after every suite
            # (a gate runs several); build_data_docs renders it once per gate
            actions=[],
            result_format="SUMMARY",
        )
    )
    outcome = checkpoint.run(batch_parameters={"dataframe": df})
    results = [r for run in outcome.run_results.values() for r in run.results]
    failures = [_describe(r) for r in results if not r.success]
    log.info("suite %s: %d expectations, %d failed", name, len(results), len(failures))
    return SuiteResult(name, outcome.success, failures, len(results))


def build_data_docs(settings: Settings | None = None, as_of: date | None = None) -> Path:
    """Render ``as_of``'s data docs from every suite and result kept for that date, with
    local assets (:func:`offline_data_docs`); return the index page."""
    settings = settings or get_settings()
    _context(settings, as_of).build_data_docs()
    index = data_docs_index(settings, as_of)
    offline_data_docs(index.parent, settings)
    return index
