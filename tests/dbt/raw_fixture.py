"""A tiny hand-made raw layer for building and testing the dbt project.

``create_raw(target)`` creates schema ``raw`` with every table of ``ingest/contract.json``
(contract columns + ``_batch_id``/``_loaded_at``/``_source``), the CRM tables' empty history
tables and ``as_of_loads``, in a DuckDB file (a path) or a Postgres database (a
``postgresql://`` URL) and fills it with a few rows that cover the
identity-stitching cases. ``EXPECTED_PERSONS`` lists the persons dim_customer_720 must hold.

Cases:
- contacts 1 and 2: one person, same email differing in case/whitespace (CRM duplicate);
- contact 3: one person with two anonymous ids (anon-b1, anon-b2) linked by login;
- contact 4: a CRM-only lead (no orders, no web), unsubscribed from email;
- contact 5: a web purchase (anon-d1) matched to CRM order 105;
- contact 6: a tracked email click (anon-e1 lands with email_contact_id 6);
- contacts 7..12: six contacts logging in on one shared device (anon-shared) - the
  over-merge guard (identity_max_degree = 5) must keep them apart;
- contact 13: a soft-deleted contact;
- anon-x1: an anonymous-only visitor (with a duplicated event_id);
- tickets with negative and positive text, NPS/CSAT answers, orders across several months.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CONTRACT = Path(__file__).resolve().parents[2] / "ingest" / "contract.json"
TABLES = [
    "crm_contacts",
    "crm_products",
    "crm_orders",
    "crm_order_items",
    "crm_tickets",
    "crm_email_events",
    "crm_survey_responses",
    "web_events",
]
# tables a CRM-only data set keeps (orders and contacts are required tables)
CRM_ONLY_TABLES = {"crm_contacts", "crm_orders"}
METADATA = {"_batch_id": "VARCHAR", "_loaded_at": "TIMESTAMP", "_source": "VARCHAR"}
LOADED_AT = "2026-03-02 00:00:00"

# Persons the fixture contains, as sets of identity nodes (see int_identity_nodes).
EXPECTED_PERSONS = [
    {"contact:1", "contact:2"},
    {"contact:3", "anon:anon-b1", "anon:anon-b2"},
    {"contact:4"},
    {"contact:5", "anon:anon-d1"},
    {"contact:6", "anon:anon-e1"},
    *({f"contact:{i}"} for i in range(7, 13)),
    {"contact:13"},
    {"anon:anon-shared"},
    {"anon:anon-x1"},
]
EXPECTED_PERSONS_CRM_ONLY = 12  # contacts 1..13, with 1 and 2 merged by email


def contract_columns() -> dict[str, dict[str, str]]:
    """raw table name -> {column: duckdb type}, metadata columns included."""
    contract = json.loads(CONTRACT.read_text())
    tables: dict[str, dict[str, str]] = {}
    for name, spec in contract["crm"]["tables"].items():
        tables[f"crm_{name}"] = {col: c["type"] for col, c in spec["columns"].items()}
    tables["web_events"] = {col: c["type"] for col, c in contract["events"]["columns"].items()}
    for cols in tables.values():
        cols.update(METADATA)
    return tables


def _ts(day: str, time: str = "12:00:00") -> str:
    return f"{day} {time}"


def fixture_rows() -> dict[str, list[dict[str, Any]]]:
    contacts = [
        dict(
            contact_id=1,
            first_name="Alice",
            last_name="Smith",
            email=" Alice@Example.com ",
            phone="+49 1",
            country="DE",
            lifecycle_stage="customer",
            marketing_consent=True,
            owner="rep_a",
            created_at=_ts("2025-01-10"),
            updated_at=_ts("2025-01-10"),
            is_deleted=False,
        ),
        dict(
            contact_id=2,
            first_name="Alice",
            last_name="Smith",
            email="alice@example.com",
            phone=None,
            country="DE",
            lifecycle_stage="lead",
            marketing_consent=False,
            owner="rep_b",
            created_at=_ts("2025-06-01"),
            updated_at=_ts("2025-06-01"),
            is_deleted=False,
        ),
        dict(
            contact_id=3,
            first_name="Bob",
            last_name="Jones",
            email="bob@example.com",
            country="FR",
            lifecycle_stage="customer",
            marketing_consent=True,
            owner="rep_a",
            created_at=_ts("2025-02-01"),
            updated_at=_ts("2025-02-01"),
            is_deleted=False,
        ),
        dict(
            contact_id=4,
            first_name="Carol",
            last_name="Lead",
            email="carol@example.com",
            country="GB",
            lifecycle_stage="lead",
            marketing_consent=True,
            owner="rep_c",
            created_at=_ts("2025-12-01"),
            updated_at=_ts("2025-12-01"),
            is_deleted=False,
        ),
        dict(
            contact_id=5,
            first_name="Dave",
            last_name="Buyer",
            email="dave@example.com",
            country="US",
            lifecycle_stage="customer",
            marketing_consent=True,
            owner="rep_b",
            created_at=_ts("2025-10-01"),
            updated_at=_ts("2025-10-01"),
            is_deleted=False,
        ),
        dict(
            contact_id=6,
            first_name="Erin",
            last_name="Clicker",
            email="erin@example.com",
            country="US",
            lifecycle_stage="subscriber",
            marketing_consent=True,
            owner="rep_c",
            created_at=_ts("2025-11-01"),
            updated_at=_ts("2025-11-01"),
            is_deleted=False,
        ),
        *(
            dict(
                contact_id=i,
                first_name=f"Shared{i}",
                last_name="Device",
                email=f"shared{i}@example.com",
                country="ES",
                lifecycle_stage="lead",
                marketing_consent=False,
                owner="rep_a",
                created_at=_ts("2025-12-15"),
                updated_at=_ts("2025-12-15"),
                is_deleted=False,
            )
            for i in range(7, 13)
        ),
        dict(
            contact_id=13,
            first_name="Zed",
            last_name="Gone",
            email="zed@example.com",
            country="IT",
            lifecycle_stage="other",
            marketing_consent=False,
            owner=None,
            created_at=_ts("2025-03-01"),
            updated_at=_ts("2025-09-01"),
            is_deleted=True,
        ),
    ]
    products = [
        dict(
            product_id=1001,
            name="Trail shoe",
            category="shoes",
            brand="Acme",
            price=120.0,
            is_discontinued=False,
            created_at=_ts("2024-01-01"),
            updated_at=_ts("2024-01-01"),
        ),
        dict(
            product_id=1002,
            name="Rain jacket",
            category="outerwear",
            brand="Acme",
            price=80.0,
            is_discontinued=False,
            created_at=_ts("2024-01-01"),
            updated_at=_ts("2024-01-01"),
        ),
        dict(
            product_id=1003,
            name="Wool socks",
            category="accessories",
            brand="Knit",
            price=10.0,
            is_discontinued=False,
            created_at=_ts("2024-01-01"),
            updated_at=_ts("2024-01-01"),
        ),
        dict(
            product_id=1004,
            name="Old cap",
            category="accessories",
            brand="Knit",
            price=15.0,
            is_discontinued=True,
            created_at=_ts("2024-01-01"),
            updated_at=_ts("2025-01-01"),
        ),
    ]

    def order(
        order_id,
        contact_id,
        day,
        status,
        channel,
        amount,
        delivered=None,
        promised=None,
        updated=None,
    ):
        return dict(
            order_id=order_id,
            contact_id=contact_id,
            ordered_at=_ts(day, "09:30:00"),
            status=status,
            channel=channel,
            total_amount=amount,
            delivered_at=_ts(delivered) if delivered else None,
            promised_at=_ts(promised) if promised else None,
            updated_at=_ts(updated or delivered or day, "18:00:00"),
        )

    orders = [
        order(101, 1, "2025-09-05", "delivered", "web", 130.0, "2025-09-08", "2025-09-09"),
        order(102, 1, "2025-11-10", "delivered", "store", 80.0, "2025-11-20", "2025-11-14"),
        order(
            103,
            1,
            "2026-01-15",
            "returned",
            "web",
            25.0,
            "2026-01-18",
            "2026-01-20",
            updated="2026-01-25",
        ),
        order(104, 2, "2026-02-01", "delivered", "app", 120.0, "2026-02-03", "2026-02-05"),
        order(105, 5, "2026-02-25", "shipped", "web", 80.0, None, "2026-03-03"),
        order(106, 3, "2025-12-01", "delivered", "phone", 90.0, "2025-12-04", "2025-12-05"),
        order(107, 3, "2026-02-20", "cancelled", "web", 10.0, None, "2026-02-25"),
    ]
    item_rows = [
        (1, 101, 1001, 1, 120.0),
        (2, 101, 1003, 1, 10.0),
        (3, 102, 1002, 1, 80.0),
        (4, 103, 1003, 1, 10.0),
        (5, 103, 1004, 1, 15.0),
        (6, 104, 1001, 1, 120.0),
        (7, 105, 1002, 1, 80.0),
        (8, 106, 1003, 9, 10.0),
        (9, 107, 1003, 1, 10.0),
    ]
    order_items = [
        dict(
            order_item_id=i,
            order_id=o,
            product_id=p,
            quantity=q,
            unit_price=u,
            updated_at=_ts("2026-02-26"),
        )
        for i, o, p, q, u in item_rows
    ]
    tickets = [
        dict(
            ticket_id=501,
            contact_id=1,
            order_id=102,
            subject="Late and broken",
            body="Terrible experience, the package arrived broken and late. Very disappointed and angry.",
            status="solved",
            priority="high",
            created_at=_ts("2025-11-21"),
            resolved_at=_ts("2025-11-23"),
            updated_at=_ts("2025-11-23"),
        ),
        dict(
            ticket_id=502,
            contact_id=3,
            order_id=106,
            subject="Thanks!",
            body="Great service, thanks a lot. Very happy with the fast delivery, love it.",
            status="closed",
            priority="low",
            created_at=_ts("2025-12-06"),
            resolved_at=_ts("2025-12-06", "15:00:00"),
            updated_at=_ts("2025-12-06"),
        ),
        dict(
            ticket_id=503,
            contact_id=5,
            order_id=105,
            subject="Where is my order",
            body="Where is my order? Tracking number please.",
            status="open",
            priority="normal",
            created_at=_ts("2026-02-28"),
            resolved_at=None,
            updated_at=_ts("2026-02-28"),
        ),
    ]
    email_events = [
        dict(
            email_event_id=1,
            contact_id=6,
            campaign_id="feb_promo",
            event_type="sent",
            occurred_at=_ts("2026-02-10", "08:00:00"),
        ),
        dict(
            email_event_id=2,
            contact_id=6,
            campaign_id="feb_promo",
            event_type="open",
            occurred_at=_ts("2026-02-10", "09:00:00"),
        ),
        dict(
            email_event_id=3,
            contact_id=6,
            campaign_id="feb_promo",
            event_type="click",
            occurred_at=_ts("2026-02-10", "09:01:00"),
        ),
        dict(
            email_event_id=4,
            contact_id=1,
            campaign_id="feb_promo",
            event_type="sent",
            occurred_at=_ts("2026-02-10", "08:00:00"),
        ),
        dict(
            email_event_id=5,
            contact_id=1,
            campaign_id="feb_promo",
            event_type="open",
            occurred_at=_ts("2026-02-11", "08:00:00"),
        ),
        dict(
            email_event_id=6,
            contact_id=4,
            campaign_id="feb_promo",
            event_type="sent",
            occurred_at=_ts("2026-02-10", "08:00:00"),
        ),
        dict(
            email_event_id=7,
            contact_id=4,
            campaign_id="feb_promo",
            event_type="unsubscribe",
            occurred_at=_ts("2026-02-12", "08:00:00"),
        ),
    ]
    for e in email_events:
        e["updated_at"] = e["occurred_at"]
    survey_responses = [
        dict(
            survey_response_id=1,
            contact_id=1,
            survey_type="nps",
            score=3,
            comment="not great",
            responded_at=_ts("2025-11-25"),
            updated_at=_ts("2025-11-25"),
        ),
        dict(
            survey_response_id=2,
            contact_id=3,
            survey_type="csat",
            score=5,
            comment="super",
            responded_at=_ts("2025-12-07"),
            updated_at=_ts("2025-12-07"),
        ),
    ]

    events: list[dict[str, Any]] = []

    def ev(event_id, anon, day, time, event_type, **kw):
        row = dict(
            event_id=event_id,
            anonymous_id=anon,
            event_type=event_type,
            collector_timestamp=_ts(day, time),
            device_timestamp=_ts(day, time),
            platform=kw.pop("platform", "web"),
            device_type=kw.pop("device_type", "desktop"),
            user_agent="Mozilla/5.0",
            page_url=kw.pop("page_url", "https://shop.example.com/"),
        )
        row.update(kw)
        events.append(row)

    # contact 3: two anonymous ids joined by login; first session has an abandoned cart
    ev(
        "e-b1-1",
        "anon-b1",
        "2026-02-10",
        "10:00:00",
        "page_view",
        referrer="https://www.google.com/",
    )
    ev("e-b1-2", "anon-b1", "2026-02-10", "10:05:00", "login", user_id="3")
    ev(
        "e-b1-3",
        "anon-b1",
        "2026-02-10",
        "10:10:00",
        "product_view",
        user_id="3",
        product_id=1001,
        price=120.0,
    )
    ev(
        "e-b1-4",
        "anon-b1",
        "2026-02-10",
        "10:15:00",
        "add_to_cart",
        user_id="3",
        product_id=1001,
        price=120.0,
        quantity=1,
    )
    ev(
        "e-b1-5", "anon-b1", "2026-02-10", "11:00:00", "page_view", user_id="3"
    )  # > 30 min later: new session
    ev(
        "e-b2-1",
        "anon-b2",
        "2026-02-20",
        "09:00:00",
        "login",
        user_id=" 3",
        platform="ios",
        device_type="mobile",
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="feb_promo",
    )
    ev(
        "e-b2-2",
        "anon-b2",
        "2026-02-20",
        "09:03:00",
        "product_view",
        user_id="3",
        platform="ios",
        device_type="mobile",
        product_id=1003,
        price=10.0,
    )
    # contact 5: anonymous purchase matched to CRM order 105
    ev(
        "e-d1-1",
        "anon-d1",
        "2026-02-25",
        "12:00:00",
        "page_view",
        referrer="https://www.google.com/search?q=jacket",
    )
    ev("e-d1-2", "anon-d1", "2026-02-25", "12:02:00", "product_view", product_id=1002, price=80.0)
    ev(
        "e-d1-3",
        "anon-d1",
        "2026-02-25",
        "12:03:00",
        "add_to_cart",
        product_id=1002,
        price=80.0,
        quantity=1,
    )
    ev("e-d1-4", "anon-d1", "2026-02-25", "12:05:00", "checkout_start")
    ev(
        "e-d1-5",
        "anon-d1",
        "2026-02-25",
        "12:06:00",
        "purchase",
        product_id=1002,
        price=80.0,
        quantity=1,
        order_id=105,
    )
    # contact 6: tracked email click
    ev(
        "e-e1-1",
        "anon-e1",
        "2026-02-10",
        "09:01:00",
        "email_click",
        email_contact_id=6,
        utm_source="newsletter",
        utm_medium="email",
        utm_campaign="feb_promo",
        platform="android",
        device_type="mobile",
    )
    ev(
        "e-e1-2",
        "anon-e1",
        "2026-02-10",
        "09:02:00",
        "product_view",
        product_id=1004,
        price=15.0,
        platform="android",
        device_type="mobile",
    )
    # a shared device where six different contacts log in (over-merge guard)
    for i in range(7, 13):
        ev(
            f"e-sh-{i}",
            "anon-shared",
            f"2026-01-{i:02d}",
            "15:00:00",
            "login",
            user_id=str(i),
            device_type="tablet",
        )
    # an anonymous-only visitor, with a duplicated event (same event_id loaded twice)
    ev(
        "e-x1-1",
        "anon-x1",
        "2026-03-01",
        "20:00:00",
        "page_view",
        referrer="https://www.facebook.com/",
    )
    ev("e-x1-2", "anon-x1", "2026-03-01", "20:01:00", "product_view", product_id=1003, price=10.0)
    events.append(dict(events[-1]))

    return {
        "crm_contacts": contacts,
        "crm_products": products,
        "crm_orders": orders,
        "crm_order_items": order_items,
        "crm_tickets": tickets,
        "crm_email_events": email_events,
        "crm_survey_responses": survey_responses,
        "web_events": events,
    }


def _pg_type(duck_type: str) -> str:
    return {"DOUBLE": "DOUBLE PRECISION"}.get(duck_type, duck_type)


def create_raw(target: str | Path, *, crm_only: bool = False, empty: bool = False) -> None:
    """Create and fill schema ``raw`` in a DuckDB file (path) or Postgres database (URL).

    crm_only: keep only contacts and orders (every other table exists but is empty).
    empty: create the tables without rows.
    """
    tables = contract_columns()
    rows = {} if empty else fixture_rows()
    is_pg = str(target).startswith(("postgres://", "postgresql://"))
    if is_pg:
        import psycopg2

        con = psycopg2.connect(str(target))
        con.autocommit = True
        placeholder = "%s"
    else:
        import duckdb

        con = duckdb.connect(str(target))
        placeholder = "?"
    try:
        cur = con.cursor()
        cur.execute("create schema if not exists raw")
        for table in TABLES:
            cols = tables[table]
            ddl = ", ".join(f"{c} {_pg_type(t) if is_pg else t}" for c, t in cols.items())
            cur.execute(f"drop table if exists raw.{table}" + (" cascade" if is_pg else ""))
            cur.execute(f"create table raw.{table} ({ddl})")
            data = rows.get(table, [])
            if crm_only and table not in CRM_ONLY_TABLES:
                data = []
            if not data:
                continue
            names = list(cols)
            sql = f"insert into raw.{table} ({', '.join(names)}) values ({', '.join([placeholder] * len(names))})"
            values = []
            for i, r in enumerate(data):
                meta = {
                    "_batch_id": "fixture-1",
                    "_loaded_at": LOADED_AT,
                    "_source": f"fixture://{table}/{i}",
                }
                values.append([{**r, **meta}.get(c) for c in names])
            cur.executemany(sql, values)
        # The CRM history (replaced versions) and the pins of the loads runs read:
        # empty, as after loads that changed nothing (ingest/crm_history.py).
        for table in TABLES:
            if not table.startswith("crm_"):
                continue
            cols = {**tables[table], "_valid_to": "TIMESTAMP", "_replaced_by": "VARCHAR"}
            ddl = ", ".join(f"{c} {_pg_type(t) if is_pg else t}" for c, t in cols.items())
            cur.execute(f"drop table if exists raw.{table}_history")
            cur.execute(f"create table raw.{table}_history ({ddl})")
        cur.execute("drop table if exists raw.as_of_loads")
        cur.execute(
            "create table raw.as_of_loads "
            "(as_of_date date primary key, loaded_through timestamp, recorded_at timestamp)"
        )
        if not is_pg:
            con.commit()
    finally:
        con.close()
