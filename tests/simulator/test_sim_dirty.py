"""Every dirty mode injects at its rate, and truth/ records exactly what it injected."""

from __future__ import annotations

import json
import re
from datetime import datetime

import pandas as pd
import pytest
from conftest import ALL_DIRTY
from sim_helpers import crm_table, read_lines, truth

from simulator import parse_dirty


def _parse(rows):
    good, bad = [], []
    for day, name, line in rows:
        try:
            good.append((day, name, json.loads(line)))
        except json.JSONDecodeError:
            bad.append((day, name, line))
    return good, bad


def test_event_modes_match_truth(dirty):
    summary = json.loads((dirty / "simulation.json").read_text())
    injected = summary["dirty_injected"]
    recorded = truth(dirty, "dirty_events")
    rows = read_lines(dirty)
    good, bad = _parse(rows)
    lines = len(rows)
    pending = recorded[(recorded["mode"] == "late_files")]
    # Rates: within a generous binomial band of the configured rate.
    for mode in (
        "malformed_json",
        "missing_ids",
        "duplicate_event_ids",
        "late_files",
        "clock_skew",
        "schema_drift",
    ):
        assert abs(injected[mode] / lines - ALL_DIRTY[mode]) < 0.35 * ALL_DIRTY[mode], mode
    assert len(bad) == injected["malformed_json"]
    events = [e for _, _, e in good]
    assert (
        sum("event_id" not in e for e in events) + sum("anonymous_id" not in e for e in events)
        == injected["missing_ids"]
    )
    ids = pd.Series([e["event_id"] for e in events if "event_id" in e])
    assert ids.duplicated().sum() == injected["duplicate_event_ids"]
    late_lines = sum(1 for _, name, _ in rows if name == "part-00001.json.gz")
    held = summary["events"]["late_files_pending"]
    assert late_lines <= len(pending) and (late_lines == len(pending) or held > 0)

    def skewed(e):
        if "device_timestamp" not in e:
            return False
        dev = datetime.fromisoformat(e["device_timestamp"].replace("Z", "+00:00"))
        col = datetime.fromisoformat(e["collector_timestamp"].replace("Z", "+00:00"))
        return abs((dev - col).total_seconds()) > 3600

    assert sum(skewed(e) for e in events) == injected["clock_skew"]
    drift = sum(
        ("app_version" in e) or ("url" in e) or isinstance(e.get("price"), str) for e in events
    )
    assert drift == injected["schema_drift"]
    # Each recorded line can be found where truth says it is.
    malformed = recorded[recorded["mode"] == "malformed_json"].iloc[0]
    file_lines = [
        line for day, name, line in rows if day == malformed["date"] and name == malformed["file"]
    ]
    with pytest.raises(json.JSONDecodeError):
        json.loads(file_lines[malformed["line"] - 1])


def test_crm_modes_match_truth(dirty):
    injected = json.loads((dirty / "simulation.json").read_text())["dirty_injected"]
    recorded = truth(dirty, "dirty_crm")
    contacts = crm_table(dirty, "contacts")
    assert (
        contacts["contact_id"].duplicated().sum()
        + crm_table(dirty, "orders")["order_id"].duplicated().sum()
        == injected["duplicate_crm_rows"]
    )
    valid = contacts["email"].str.strip().str.fullmatch(r"[^@\s]+@[^@\s]+\.[a-z]+", case=False)
    invalid_ids = set(contacts.loc[~valid, "contact_id"])
    assert invalid_ids == set(recorded.loc[recorded["mode"] == "invalid_emails", "id"])
    items = crm_table(dirty, "order_items")
    assert set(items.loc[items["quantity"] < 0, "order_item_id"]) == set(
        recorded.loc[recorded["mode"] == "negative_quantities", "id"]
    )
    assert (
        abs(len(invalid_ids) / contacts["contact_id"].nunique() - ALL_DIRTY["invalid_emails"])
        < 0.02
    )
    negative_share = (items["quantity"] < 0).mean()
    assert (
        abs(negative_share - ALL_DIRTY["negative_quantities"])
        < 0.6 * ALL_DIRTY["negative_quantities"]
    )
    rows = len(contacts) + len(crm_table(dirty, "orders"))
    assert (
        abs(injected["duplicate_crm_rows"] / rows - ALL_DIRTY["duplicate_crm_rows"])
        < 0.6 * ALL_DIRTY["duplicate_crm_rows"]
    )


def test_dirty_is_off_by_default(small):
    injected = json.loads((small / "simulation.json").read_text())["dirty_injected"]
    assert injected == {}


def test_parse_dirty_errors_say_what_to_do():
    assert parse_dirty("malformed_json=0.01, missing_ids=0.02") == {
        "malformed_json": 0.01,
        "missing_ids": 0.02,
    }
    with pytest.raises(ValueError, match="choose from"):
        parse_dirty("broken_stuff=0.1")
    with pytest.raises(ValueError, match="not a number"):
        parse_dirty("malformed_json=lots")
    assert re.search(
        "between 0 and 0.5", str(pytest.raises(ValueError, parse_dirty, "clock_skew=0.9").value)
    )
