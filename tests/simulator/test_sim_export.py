"""Export mode (simulator/export.py): the same company, shown as a real retail export."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from sim_helpers import crm_table, read_events, truth

from simulator import SimulationConfig, generate
from simulator.export import CRM_IDS, EVENT_IDS, text_id


@pytest.fixture(scope="module")
def export(tmp_path_factory, small: Path) -> Path:
    """The ``small`` company (same seed, size and days) in export mode."""
    out = tmp_path_factory.mktemp("export")
    generate(SimulationConfig(customers=500, days=90, seed=7, out=out, export=True))
    return out


def _crm(out: Path, table: str) -> pd.DataFrame:
    with sqlite3.connect(out / "crm.sqlite") as con:
        return pd.read_sql(f"select * from {table}", con)


def test_every_id_is_the_text_form_of_the_same_record(small: Path, export: Path) -> None:
    for table, columns in CRM_IDS.items():
        plain, text = crm_table(small, table), _crm(export, table)
        if table == "orders":  # credit notes are extra rows (below)
            text = text[text["status"] != "returned"]
        for column, kind in columns.items():
            expected = sorted(text_id(kind, int(n)) for n in plain[column].dropna())
            assert sorted(text[column].dropna()) == expected, (table, column)
    events_plain, events_text = read_events(small, 20), read_events(export, 20)
    assert len(events_plain) == len(events_text)
    for column, kind in EVENT_IDS.items():
        expected = [None if pd.isna(n) else text_id(kind, int(n)) for n in events_plain[column]]
        got = [None if pd.isna(v) else v for v in events_text[column]]
        assert got == expected, column
    persons = truth(export, "contact_persons")
    assert set(_crm(export, "contacts")["contact_id"]) <= set(persons["contact_id"])


def test_no_product_categories(export: Path) -> None:
    products = _crm(export, "products")
    assert len(products) > 0 and products["category"].isna().all()


def test_returns_are_credit_notes_that_net_out(small: Path, export: Path) -> None:
    plain, text = crm_table(small, "orders"), _crm(export, "orders")
    returned = plain[plain["status"] == "returned"]
    assert len(returned) > 0
    notes = text[text["status"] == "returned"]
    assert len(notes) == len(returned)
    assert (notes["total_amount"] < 0).all()
    assert notes["order_id"].str.startswith("credit_note_").all()
    # each credit note refunds one returned order: same contact, minus its amount, dated
    # when it came back; the order itself stays in the export as delivered
    originals = returned.assign(
        order_id=[text_id("credit_note", int(n)) for n in returned["order_id"]],
        contact_id=[text_id("contact", int(n)) for n in returned["contact_id"]],
    ).set_index("order_id")
    notes = notes.set_index("order_id").loc[originals.index]
    assert (notes["contact_id"] == originals["contact_id"]).all()
    assert (notes["total_amount"] == -originals["total_amount"]).all()
    assert (notes["ordered_at"] == originals["updated_at"]).all()
    kept = text.set_index("order_id").loc[[text_id("order", int(n)) for n in returned["order_id"]]]
    assert (kept["status"] == "delivered").all()
    assert (kept["updated_at"] <= notes["ordered_at"].to_numpy()).all()
    # credit notes have no order lines: the contract has no negative lines
    items = _crm(export, "order_items")
    assert not items["order_id"].str.startswith("credit_note_").any()
    assert (
        abs(
            text["total_amount"].sum()
            - (plain["total_amount"].sum() - returned["total_amount"].sum())
        )
        < 1e-6
    )
