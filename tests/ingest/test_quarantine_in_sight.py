"""Quarantine in plain sight (issue #20): a delivery with a few bad rows shows its counts and
reasons in the load's WARNING, the run summary and ``python -m ingest status``."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from test_bad_input_corpus import BAD_CONTACTS, BAD_ORDERS, company  # noqa: F401 - fixture

from activate.summary import render
from customer720.settings import get_settings
from ingest import extract_crm, load_events
from ingest.__main__ import main


def test_quarantine_counts_in_warning_summary_and_status(
    company: Path,  # noqa: F811 - the bad-input corpus fixture
    caplog,
    capsys,
) -> None:
    with caplog.at_level(logging.WARNING, logger="ingest.quarantine"):
        crm = extract_crm()
        events = load_events()
    warnings = [r.getMessage() for r in caplog.records if r.name == "ingest.quarantine"]
    assert any(
        f"select * from raw.quarantine where batch_id = '{crm.batch_id}'" in w for w in warnings
    )
    assert any(f"where batch_id = '{events.batch_id}'" in w for w in warnings)

    q = crm.as_dict()["quarantine"]
    assert q["tables"]["crm_contacts"]["rows"] == len(BAD_CONTACTS)
    assert q["tables"]["crm_orders"]["rows"] == len(BAD_ORDERS)
    assert all(1 <= len(t["reasons"]) <= 3 for t in q["tables"].values())
    ev = events.as_dict()["quarantine"]
    assert ev["total"] == events.rows_quarantined > 0 and "web_events" in ev["tables"]

    text = render(
        dt.date(2024, 3, 1),
        {"ingest_crm": crm.as_dict(), "ingest_events": events.as_dict()},
        get_settings(),
    )
    assert f"- quarantined (CRM): {q['total']:,} records" in text
    assert f"    - crm_orders: {len(BAD_ORDERS)} (" in text
    assert f"    - crm_contacts: {len(BAD_CONTACTS)} (" in text
    top_reason = q["tables"]["crm_orders"]["reasons"][0][0]
    assert top_reason in text
    assert f"- quarantined (events): {ev['total']:,} records" in text
    assert f"where batch_id = '{crm.batch_id}'" in text

    capsys.readouterr()
    assert main(["status"]) == 0
    out = capsys.readouterr().out
    assert "quarantined records" in out and "top reasons" in out
    for table in ("crm_contacts", "crm_orders", "web_events"):
        assert table in out
    assert "select * from raw.quarantine" in out
