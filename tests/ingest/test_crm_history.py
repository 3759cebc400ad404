"""The CRM as it was loaded (issue #19), on DuckDB and Postgres: ``ingest/crm_history.py``.

A load that changes CRM rows keeps the versions it replaced in ``raw.crm_<table>_history``
(only those: a load of an unchanged CRM adds nothing), a run pins the loads its date
read in ``raw.as_of_loads``, and the staging models read, for a re-run of a past date, the CRM
as that date's run read it - and the newest state for the newest date. The whole pipeline
replaying a date is ``tests/faults/test_backfill_order.py``; here the same SQL runs on both
warehouses (ingest, then ``dbt run`` of the CRM staging views).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest

from customer720.dbt import run_dbt
from customer720.settings import get_settings
from customer720.warehouse import open_destination
from ingest import extract_crm
from ingest.crm_history import pin_loads

D, D1 = date(2024, 3, 1), date(2024, 3, 2)
T0, T1 = "2024-03-01 09:00:00", "2024-03-02 09:00:00"


def _crm(path: Path, contacts: list[tuple], orders: list[tuple]) -> None:
    con = sqlite3.connect(path)
    con.execute(
        "create table if not exists contacts (contact_id text primary key, email text, "
        "marketing_consent integer, country text, created_at text, updated_at text)"
    )
    con.execute(
        "create table if not exists orders (order_id text primary key, contact_id text, "
        "ordered_at text, status text, total_amount real, updated_at text)"
    )
    con.executemany("insert or replace into contacts values (?, ?, ?, ?, ?, ?)", contacts)
    con.executemany("insert or replace into orders values (?, ?, ?, ?, ?, ?)", orders)
    con.commit()
    con.close()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, local_dir: Path) -> Callable[[str], list[tuple]]:
    """A fresh warehouse of either engine; returns a query function on it."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        request.getfixturevalue("monkeypatch").setenv("C720_WAREHOUSE", url)

    def query(sql: str) -> list[tuple]:
        with open_destination(get_settings()) as dest:
            return [tuple(r) for r in dest.fetchall(sql)]

    return query


def test_a_replay_reads_the_crm_as_its_first_run_did(warehouse: Callable) -> None:
    query = warehouse
    sources = get_settings().sources_dir
    sources.mkdir(parents=True)
    crm = sources / "crm.sqlite"
    _crm(
        crm,
        [("1", "ana@example.com", 1, "GB", T0, T0), ("2", "bob@example.com", 1, "DE", T0, T0)],
        [("10", "1", T0, "delivered", 20.0, T0), ("11", "2", T0, "placed", 5.0, T0)],
    )
    extract_crm()
    first = pin_loads(D)  # the run of D
    assert not first.replay

    # On D + 1 Ana moves and withdraws her consent, her order is refunded, Bob orders again.
    _crm(
        crm,
        [("1", "ana@new.example.com", 0, "FR", T0, T1)],
        [("10", "1", T0, "returned", 20.0, T1), ("12", "2", T1, "placed", 9.0, T1)],
    )
    assert extract_crm().rows_changed == 3
    history = query(
        """select h.contact_id, h.email, h._valid_to = c._loaded_at, h._replaced_by = c._batch_id
           from raw.crm_contacts_history h join raw.crm_contacts c using (contact_id)"""
    )
    assert history == [("1", "ana@example.com", True, True)]
    assert query("select order_id, status from raw.crm_orders_history") == [("10", "delivered")]
    # A load of an unchanged CRM keeps no version: only changed rows are added.
    assert extract_crm().rows_changed == 0
    assert query(
        "select (select count(*) from raw.crm_contacts_history), "
        "(select count(*) from raw.crm_orders_history)"
    ) == [(1, 1)]

    assert not pin_loads(D1).replay  # the run of D + 1
    replay = pin_loads(D)
    assert (replay.replay, replay.loaded_through) == (True, first.loaded_through)

    def staging(day: date) -> tuple[list[tuple], list[tuple]]:
        run_dbt("run", as_of=day, select="path:models/staging/crm")
        return (
            query(
                "select contact_id, email, has_marketing_consent, country "
                "from staging.stg_crm__contacts order by 1"
            ),
            query("select order_id, status from staging.stg_crm__orders order by 1"),
        )

    contacts, orders = staging(D)
    assert contacts == [("1", "ana@example.com", True, "GB"), ("2", "bob@example.com", True, "DE")]
    assert orders == [("10", "delivered"), ("11", "placed")]
    contacts, orders = staging(D1)
    assert contacts == [
        ("1", "ana@new.example.com", False, "FR"),
        ("2", "bob@example.com", True, "DE"),
    ]
    assert orders == [("10", "returned"), ("11", "placed"), ("12", "placed")]
    assert not pin_loads(D1).replay  # a re-run of the newest date reads the newest state


def test_a_date_never_run_before_a_later_one_reads_the_nearest_state(warehouse: Callable) -> None:
    get_settings().sources_dir.mkdir(parents=True)
    _crm(get_settings().sources_dir / "crm.sqlite", [("1", "a@x.com", 1, "GB", T0, T0)], [])
    extract_crm()
    later = pin_loads(D1)
    backfill = pin_loads(D)
    assert (backfill.replay, backfill.loaded_through) == (True, later.loaded_through)
    # ... and keeps it: a replay of that backfill reads the same state
    assert pin_loads(D) == backfill
