"""Issue #20, acceptance 4: text ids load, join and come back unchanged.

Real CRMs key records by text: Salesforce's 18-character ids (``0035g00000AbCdEAAZ``),
Stripe's ``cus_…``, Shopify's ``gid://shopify/Product/…``. The small fault-test company is
turned into such a source before anything loads: every id of every CRM table and of the
web events (``user_id``, ``product_id``, ``order_id``, ``email_contact_id``) is rewritten,
consistently, into those forms (two contact styles side by side, as after a CRM
migration), and its simulator truth is removed (a user's export has none). Then the
whole day runs (ingest, dbt, churn and recommendations, publish, CRM writeback) and the
ids must be the same text in raw, the marts, the score marts and the CRM's score table —
and web behaviour must still join the CRM person (logins, web orders).
"""

from __future__ import annotations

import gzip
import json
import shutil
import sqlite3
from pathlib import Path

import duckdb
import pytest
from faultkit import LAST, run_date, simulate

# The id columns of each CRM table, by the kind of record they name.
CRM_IDS = {
    "contacts": {"contact_id": "contact"},
    "products": {"product_id": "product"},
    "orders": {"order_id": "order", "contact_id": "contact"},
    "order_items": {"order_item_id": "line", "order_id": "order", "product_id": "product"},
    "tickets": {"ticket_id": "ticket", "contact_id": "contact", "order_id": "order"},
    "email_events": {"email_event_id": "email", "contact_id": "contact"},
    "survey_responses": {"survey_response_id": "survey", "contact_id": "contact"},
}
EVENT_IDS = {
    "user_id": "contact",
    "email_contact_id": "contact",
    "product_id": "product",
    "order_id": "order",
}


def text_id(kind: str, n: int) -> str:
    """The text form of the simulator's integer id ``n`` (one-to-one per kind)."""
    if kind == "contact":
        # Salesforce-style for even ids, Stripe-style for odd ones
        return f"0035g{n:07d}AbCdEA" if n % 2 == 0 else f"cus_{n:x}Rz8i3"
    if kind == "product":
        return f"gid://shopify/Product/{n}"
    return f"{kind}_{n:x}"


def _sql_text_id(kind: str, column: str) -> str:
    """:func:`text_id` in SQLite, for an UPDATE of a column holding integer text."""
    n = f'cast("{column}" as integer)'
    if kind == "contact":
        return (
            f"case when {n} % 2 = 0 then '0035g' || printf('%07d', {n}) || 'AbCdEA' "
            f"else 'cus_' || printf('%x', {n}) || 'Rz8i3' end"
        )
    if kind == "product":
        return f"'gid://shopify/Product/' || {n}"
    return f"'{kind}_' || printf('%x', {n})"


def _rewrite_crm(path: Path) -> None:
    with sqlite3.connect(path) as con:
        for table, columns in CRM_IDS.items():
            sets = ", ".join(
                f'"{c}" = case when "{c}" is null then null else {_sql_text_id(k, c)} end'
                for c, k in columns.items()
            )
            con.execute(f'update "{table}" set {sets}')


def _rewrite_events(folder: Path) -> int:
    """Rewrite the ids of every event file; returns how many ids were rewritten."""
    rewritten = 0
    for path in sorted(folder.rglob("*.json.gz")):
        lines = gzip.decompress(path.read_bytes()).decode().split("\n")
        out = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                out.append(line)  # the simulator's malformed lines stay as they are
                continue
            if isinstance(event, dict):
                for column, kind in EVENT_IDS.items():
                    value = event.get(column)
                    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
                        event[column] = text_id(kind, int(value))
                        rewritten += 1
                line = json.dumps(event)
            out.append(line)
        path.write_bytes(gzip.compress("\n".join(out).encode(), mtime=0))
    return rewritten


@pytest.fixture(scope="module")
def company(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("text_ids")
    local = root / "local"
    sources = simulate(local, root / "simulate.log")
    with sqlite3.connect(sources / "crm.sqlite") as con:
        integer_contacts = [r[0] for r in con.execute("select contact_id from contacts")]
        integer_products = [r[0] for r in con.execute("select product_id from products")]
    _rewrite_crm(sources / "crm.sqlite")
    rewritten = _rewrite_events(sources / "events")
    shutil.rmtree(sources / "truth", ignore_errors=True)
    out = run_date(local, LAST, root / "run.log")
    return {
        "local": local,
        "crm": sources / "crm.sqlite",
        "contacts": {text_id("contact", int(c)) for c in integer_contacts},
        "products": {text_id("product", int(p)) for p in integer_products},
        "events_rewritten": rewritten,
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
