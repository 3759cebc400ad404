"""Erasure and suppression on a Postgres warehouse (raw layer only, no dbt build).

The DuckDB path through every layer is tested in ``tests/activate/test_readers_and_erasure.py``; this
checks the same SQL on Postgres, where ingest writes raw and suppression runs.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from customer720.settings import get_settings
from customer720.warehouse import open_destination
from ingest import extract_crm, load_events
from privacy.erasure import erase, find_traces, resolve_identity

CONTACTS = "contact_id,email,marketing_consent,created_at,updated_at,is_deleted\n"
ORDERS = "order_id,contact_id,ordered_at,status,total_amount,updated_at\n"


def _crm(folder: Path, contacts: list[str], orders: list[str]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "contacts.csv").write_text(CONTACTS + "".join(f"{r}\n" for r in contacts))
    (folder / "orders.csv").write_text(ORDERS + "".join(f"{r}\n" for r in orders))


def _events(folder: Path, day: str, rows: list[tuple[str, str | None]], bad: str = "") -> None:
    path = folder / f"date={day}" / "part-0.json.gz"
    path.parent.mkdir(parents=True)
    lines = [
        json.dumps(
            {
                "event_id": f"{day}-{i}",
                "event_type": "login" if user else "page_view",
                "collector_timestamp": f"{day}T10:00:0{i}Z",
                "anonymous_id": anon,
                "user_id": user,
            }
        )
        for i, (anon, user) in enumerate(rows)
    ]
    path.write_bytes(gzip.compress(("\n".join(lines + ([bad] if bad else [])) + "\n").encode()))


@pytest.fixture
def pg_warehouse(postgres_url: str, local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("C720_WAREHOUSE", postgres_url)
    monkeypatch.setenv("C720_QUARANTINE_MAX_RATE", "0.5")
    return local_dir


def test_erase_and_suppress_on_postgres(pg_warehouse: Path, tmp_path: Path) -> None:
    crm, events = tmp_path / "crm", tmp_path / "events"
    early, t0, t1 = "2024-02-28 10:00:00", "2024-03-01 10:00:00", "2024-03-02 10:00:00"
    # Ana had another email, and her order another total: the raw history keeps them.
    _crm(
        crm,
        [f"1,ana.old@example.com,true,{early},{early},false"],
        [f"10,1,{early},placed,10.0,{early}"],
    )
    extract_crm(crm)
    _crm(
        crm,
        [f"1,ana@example.com,true,{t0},{t0},false", f"2, ANA@example.com,true,{t0},{t0},false",
         f"3,bob@example.com,true,{t0},{t0},false"],
        [f"10,1,{t0},placed,12.5,{t0}", f"11,2,{t0},placed,3.0,{t0}", f"12,3,{t0},placed,8.0,{t0}"],
    )  # fmt: skip
    _events(
        events,
        "2024-03-01",
        [("c-ana", "1"), ("c-ana", None), ("c-bob", "3")],
        bad='{"event_id": "x", "anonymous_id": "c-ana", "user_id": "1", "event_',
    )
    extract_crm(crm)
    load_events(events)
    settings = get_settings()
    with open_destination(settings) as dest:
        ident = resolve_identity(dest.fetchall, email="ana@example.com")
    assert (ident.contact_ids, ident.order_ids, ident.anonymous_ids) == (
        {"1", "2"},  # ids are text (ingest/contract.json)
        {"10", "11"},
        {"c-ana"},
    )
    assert "ana.old@example.com" in ident.emails  # found in the history
    assert len(find_traces(ident)) >= 4

    result = erase(email="Ana@Example.com")
    assert result.remaining == []
    assert result.removed == {
        "raw.crm_contacts": 2,
        "raw.crm_contacts_history": 1,
        "raw.crm_orders": 2,
        "raw.crm_orders_history": 1,
        "raw.web_events": 2,
        "raw.quarantine": 1,
    }

    # The CRM changes both records and adds a third with her email; she logs in again.
    _crm(
        crm,
        [f"1,ana@example.com,true,{t0},{t1},false", f"2, ANA@example.com,true,{t0},{t1},false",
         f"3,bob@example.com,true,{t0},{t0},false", f"4,ana@example.com ,true,{t1},{t1},false"],
        [f"10,1,{t0},shipped,12.5,{t1}", f"13,4,{t1},placed,5.0,{t1}", f"12,3,{t0},shipped,8.0,{t1}"],
    )  # fmt: skip
    _events(
        events, "2024-03-02", [("c-new", "4"), ("c-new", None), ("c-ana", None), ("c-bob", None)]
    )
    assert extract_crm(crm).rows_changed >= 4
    load_events(events)
    ident.contact_ids.add(4)
    ident.order_ids.add(13)
    ident.anonymous_ids.add("c-new")
    assert find_traces(ident) == []
    with open_destination(settings) as dest:
        bob = dest.fetchall(
            """select (select count(*) from raw.crm_contacts where contact_id = '3'),
                      (select count(*) from raw.crm_orders where contact_id = '3'),
                      (select count(*) from raw.web_events where anonymous_id = 'c-bob')"""
        )[0]
        bob_history = dest.fetchall(
            "select count(*) from raw.crm_orders_history where contact_id = '3'"
        )
        suppressed = dict(
            dest.fetchall(
                "select table_name, sum(rows_removed) from privacy.suppression_log group by 1"
            )
        )
    assert bob == (1, 1, 2), "suppression took someone else's rows"
    assert bob_history == [(1,)], "suppression took someone else's earlier versions"
    assert suppressed == {"raw.crm_contacts": 3, "raw.crm_orders": 2, "raw.web_events": 3}
