"""GX data docs render with no network: every CDN asset and the logo point at local files."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pandas as pd
import pytest

TAG = re.compile(r"<(link|script|img)\b[^>]*>", re.IGNORECASE)
REF = re.compile(r"""\b(?:href|src)=["']([^"']+)["']""")


@pytest.mark.usefixtures("local_dir")
def test_data_docs_of_a_gate_run_reference_no_remote_asset() -> None:
    import great_expectations as gx

    from quality.gx_runner import VENDORED_ASSETS, build_data_docs, run_suite

    if not VENDORED_ASSETS.is_dir():
        pytest.fail(f"no vendored assets at {VENDORED_ASSETS}: run make install")
    df = pd.DataFrame({"id": [1, 2, None]})
    expectations = [
        gx.expectations.ExpectColumnValuesToNotBeNull(column="id"),
        gx.expectations.ExpectTableRowCountToBeBetween(min_value=1, max_value=10),
    ]
    day = date(2024, 1, 30)
    result = run_suite("tiny", df, expectations, as_of=day)
    assert not result.success  # a failed expectation renders its table and filters too

    site = build_data_docs(as_of=day).parent
    pages = list(site.rglob("*.html"))
    assert len(pages) >= 2  # the index and the validation result
    checked = 0
    for page in pages:
        for tag in TAG.finditer(page.read_text()):
            for ref in REF.findall(tag.group(0)):
                assert not ref.startswith(("http://", "https://", "//")), f"{page}: {tag.group(0)}"
                target = (page.parent / ref.split("?")[0].split("#")[0]).resolve()
                assert target.is_file(), f"{page}: {ref} -> {target} missing"
                checked += 1
    assert checked > 15 * 2
    # No page or style loads anything remote (the logo was a CSS background from a bucket).
    for sheet in [*pages, *site.glob("static/styles/*.css")]:
        assert not re.search(r"url\(['\"]?https?://", sheet.read_text()), sheet
    # Font Awesome's CSS finds its fonts beside it.
    fonts = list(Path(site).resolve().parents[4].glob("_assets/**/webfonts/fa-solid-900.woff2"))
    assert fonts
