"""Issue #20, acceptance 4: text ids load, join and come back unchanged.

Real CRMs key records by text: Salesforce's 18-character ids (``0035g00000AbCdEAAZ``),
Stripe's ``cus_…``, Shopify's ``gid://shopify/Product/…``. The small fault-test company is
simulated as such a source (``python -m simulator --text-ids``, the ids of export mode:
``simulator.export.text_id``): every id of every CRM table and of the web events
(``user_id``, ``product_id``, ``order_id``, ``email_contact_id``) is text in those forms
(two contact styles side by side, as after a CRM migration), and its simulator truth is
removed (a user's export has none). Then the
whole day runs (ingest, dbt, churn and recommendations, publish, CRM writeback) and the
ids must be the same text in raw, the marts, the score marts and the CRM's score table —
and web behaviour must still join the CRM person (logins, web orders).
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest
from faultkit import LAST, run_date, simulate

from simulator.export import EVENT_IDS, text_id

CONTACT_FORMS = r"0035g[0-9]{7}AbCdEA|cus_[0-9a-f]+Rz8i3"  # simulator.export.text_id


def _event_text_ids(folder: Path) -> int:
    """How many id fields of the event files hold a text id of the simulator's forms."""
    found = 0
    for path in sorted(folder.rglob("*.json.gz")):
        for line in gzip.decompress(path.read_bytes()).decode().split("\n"):
            try:
                event = json.loads(line)
            except ValueError:
                continue  # the simulator's malformed lines
            if isinstance(event, dict):
                found += sum(
                    isinstance(event.get(c), str) and event[c] == text_id(kind, _number(event[c]))
                    for c, kind in EVENT_IDS.items()
                    if event.get(c) is not None
                )
    return found


def _number(text: str) -> int:
    """The simulator's integer behind a text id (the inverse of text_id, for the check)."""
    if text.startswith("cus_"):
        return int(text[4:-5], 16)
    if text.startswith("0035g"):
        return int(text[5:12])
    if text.startswith("gid://shopify/Product/"):
        return int(text.rsplit("/", 1)[1])
    return int(text.rsplit("_", 1)[1], 16)


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("text_ids")
    local = root / "local"
    # the simulator writes every CRM and event id as text (simulator/export.py, text_id)
    sources = simulate(local, root / "simulate.log", "--text-ids")
    with sqlite3.connect(sources / "crm.sqlite") as con:
        contacts = {r[0] for r in con.execute("select contact_id from contacts")}
        products = {r[0] for r in con.execute("select product_id from products")}
    shutil.rmtree(sources / "truth", ignore_errors=True)  # a user's export has no truth
    out = run_date(local, LAST, root / "run.log")
    return {
        "local": local,
        "crm": sources / "crm.sqlite",
        "contacts": contacts,
        "products": products,
        "events_rewritten": _event_text_ids(sources / "events"),
        "run": json.loads(out.strip().splitlines()[-1]),
    }


def _warehouse(company: dict, sql: str) -> list[tuple]:
    with duckdb.connect(str(company["local"] / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def _values(company: dict, sql: str) -> set:
    return {r[0] for r in _warehouse(company, sql)}


def test_text_ids_load_unchanged_into_raw_and_the_marts(company: dict) -> None:
    assert company["events_rewritten"] > 1_000
    contacts, products = company["contacts"], company["products"]
    # both contact styles side by side, as after a CRM migration; products as Shopify GIDs
    assert all(re.fullmatch(CONTACT_FORMS, c) for c in contacts)
    assert {c[:4] for c in contacts} == {"0035", "cus_"}
    assert all(p.startswith("gid://shopify/Product/") for p in products)
    raw = _values(company, "select contact_id from raw.crm_contacts")
    assert raw and raw <= contacts
    assert len(raw) >= 0.9 * len(contacts)  # a few are the simulator's deliberate dirt
    assert _values(company, "select contact_id from marts.fct_orders") <= contacts
    assert (
        _values(company, "select primary_contact_id from marts.dim_customer_720") - {None}
        <= contacts
    )
    item_products = _values(company, "select product_id from marts.fct_order_items")
    assert item_products and item_products <= products
    # nothing that looks like a leftover integer id
    assert not _values(
        company,
        "select contact_id from marts.fct_orders where regexp_full_match(contact_id, '[0-9]+')",
    )


def test_web_behaviour_joins_the_crm_person_by_text_ids(company: dict) -> None:
    edges = _warehouse(
        company,
        "select edge_type, count(*), count(distinct contact_id) "
        "from intermediate.int_identity_edges_collected "
        "where edge_type in ('login', 'order_match') group by 1 order by 1",
    )
    assert [e[0] for e in edges] == ["login", "order_match"]
    assert all(n > 0 for _, n, _ in edges)
    assert (
        _values(
            company,
            "select contact_id from intermediate.int_identity_edges_collected "
            "where edge_type in ('login', 'order_match', 'email_click')",
        )
        <= company["contacts"]
    )
    # persons seen on the web and in the CRM at once: one row, web and orders together
    both = _warehouse(
        company,
        "select count(*) from marts.dim_customer_720 "
        "where primary_contact_id is not null and session_count > 0 "
        "and order_count > 0",
    )[0][0]
    assert both > 0


def test_scores_and_writeback_carry_the_same_text_ids(company: dict) -> None:
    contacts, products = company["contacts"], company["products"]
    scored = _warehouse(
        company,
        "select d.primary_contact_id from marts.customer_churn_scores s "
        "join marts.dim_customer_720 d using (customer_key) "
        "where d.primary_contact_id is not null",
    )
    assert scored and {r[0] for r in scored} <= contacts
    recommended = _values(company, "select product_id from marts.customer_recommendations")
    assert recommended and recommended <= products
    with sqlite3.connect(company["crm"]) as con:
        written = con.execute(
            "select contact_id, next_best_products from c720_customer_scores"
        ).fetchall()
    assert len(written) == company["run"]["sync"]["inserted"] > 0
    assert {c for c, _ in written} <= contacts
    listed = {p for _, products_text in written if products_text for p in products_text.split(",")}
    assert listed and listed <= products
