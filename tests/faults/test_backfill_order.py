"""Issue #19, item 4: D + 1 then D, through the stages, as a user's backfill would run them.

A small company is run for D; then its CRM changes (a contact's fields and consent are
edited, an order is added for D + 1, one is refunded, a ticket is closed); then it is run
for D + 1, D again (a backfill of a past date) and D + 1 again. After every run the
published snapshot's ``meta.publish_manifest.as_of_date`` is the newest date run so far
(it never goes backwards) and, in the snapshot, ``dim_customer_720`` is as of the same
date as the churn scores it carries.

The replay of D rebuilds what the first run of D built although the CRM changed in
between: staging reads the CRM as it was loaded when D was first run (the raw layer keeps
the versions a load replaced), so every table of the warehouse's ``marts`` and ``ml``
schemas (the marts, the feature table, the score tables) holds the same rows, apart from
run-time stamps and the rows of later dates that history tables keep (the score history
holds D + 1's scores too). The run of D + 1 after the replay rebuilds the first D + 1.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from faultkit import LAST, differences, run_date, save_state, simulate

D = LAST - timedelta(days=1)
D1 = LAST
# The CRM's edits are made on D + 1, after every row the simulator wrote (the extract reads
# rows with updated_at at or past its watermark, as a real CRM's changes would be).
EDITED_AT = f"{D1} 23:30:00"


def _snapshot_dates(published: Path) -> dict[str, list]:
    with duckdb.connect(str(published), read_only=True) as con:

        def dates(sql: str) -> list:
            return sorted({r[0] for r in con.execute(sql).fetchall()})

        return {
            "manifest": dates("select as_of_date from meta.publish_manifest"),
            "dim_customer_720": dates("select as_of_date from marts.dim_customer_720"),
            "dim_scores": dates(
                "select scores_as_of_date from marts.dim_customer_720 "
                "where scores_as_of_date is not null"
            ),
            "scores": dates("select as_of_date from marts.customer_churn_scores"),
            "recommendations": dates("select as_of_date from marts.customer_recommendations"),
        }


def _change_crm(crm: Path) -> dict[str, str]:
    """What a CRM's users do on D + 1; returns the ids changed."""
    con = sqlite3.connect(crm)
    try:
        # a customer with a delivered order: edited, consent withdrawn, a new email
        contact, order = con.execute(
            "select contact_id, order_id from orders where status = 'delivered' "
            "order by ordered_at limit 1"
        ).fetchone()
        con.execute(
            """update contacts set email = 'moved.' || contact_id || '@example.org',
                   phone = '+44 7700 900000', country = 'FR', lifecycle_stage = 'evangelist',
                   marketing_consent = not coalesce(marketing_consent, 0), updated_at = ?
               where contact_id = ?""",
            [EDITED_AT, contact],
        )
        # that order refunded
        con.execute(
            "update orders set status = 'returned', updated_at = ? where order_id = ?",
            [EDITED_AT, order],
        )
        # a new order of D + 1, with a line
        buyer = con.execute(
            "select contact_id from orders order by ordered_at desc limit 1"
        ).fetchone()[0]
        product, price = con.execute("select product_id, price from products limit 1").fetchone()
        new_order = "d1-order-1"
        con.execute(
            """insert into orders (order_id, contact_id, ordered_at, status, channel,
                   total_amount, delivered_at, promised_at, updated_at)
               values (?, ?, ?, 'placed', 'web', ?, null, ?, ?)""",
            [new_order, buyer, f"{D1} 21:00:00", 2 * price, f"{D1 + timedelta(3)} 20:00:00",
             EDITED_AT],
        )  # fmt: skip
        con.execute(
            """insert into order_items (order_item_id, order_id, product_id, quantity,
                   unit_price, updated_at) values ('d1-item-1', ?, ?, 2, ?, ?)""",
            [new_order, product, price, EDITED_AT],
        )
        # an open ticket closed
        ticket = con.execute(
            "select ticket_id from tickets where status <> 'closed' limit 1"
        ).fetchone()[0]
        con.execute(
            "update tickets set status = 'closed', resolved_at = ?, updated_at = ? "
            "where ticket_id = ?",
            [EDITED_AT, EDITED_AT, ticket],
        )
        con.commit()
    finally:
        con.close()
    return {"contact": contact, "refunded": order, "new_order": new_order, "ticket": ticket}


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("backfill_order")
    local = root / "local"
    simulate(local, root / "simulate.log")
    out: dict = {"local": local, "snapshots": []}
    for n, day in enumerate((D, D1, D, D1)):
        if n == 1:
            out["changed"] = _change_crm(local / "sources" / "crm.sqlite")
        run_date(local, day, root / f"run{n}_{day}.log")
        out["snapshots"].append((day, _snapshot_dates(local / "published.duckdb")))
        if n in (0, 1):
            out[f"first {day}"] = save_state(local, root / f"first_{day}")
        if n == 2:
            # the replay of D as it left the warehouse (the last run goes on from it)
            out["replay"] = save_state(local, root / "replay")
    return out


def test_published_date_never_goes_back_and_the_view_matches_its_scores(runs: dict) -> None:
    newest: date | None = None
    for day, snap in runs["snapshots"]:
        newest = max(day, newest or day)
        assert snap["manifest"] == [newest], (day, snap)
        assert snap["dim_customer_720"] == [newest], (day, snap)
        assert snap["scores"] == [newest], (day, snap)
        assert snap["dim_scores"] == [newest], (day, snap)
        assert snap["recommendations"] == [newest], (day, snap)


def test_the_crm_changes_reach_the_run_of_d_plus_1(runs: dict) -> None:
    # Without this, the replay's equality below could hold because nothing changed.
    found = differences(runs[f"first {D}"], runs[f"first {D1}"], through=D, parts=("warehouse",))
    changed = runs["changed"]
    assert "warehouse marts.fct_orders" in found, found.keys()
    with duckdb.connect(str(runs[f"first {D1}"] / "warehouse.duckdb"), read_only=True) as con:
        status = dict(con.execute("select order_id, status from marts.fct_orders").fetchall())
    assert status[changed["refunded"]] == "returned"
    assert status[changed["new_order"]] == "placed"


def test_a_replay_of_d_rebuilds_the_first_run_of_d(runs: dict) -> None:
    # The published snapshot and the CRM stay at D + 1 (the test above): the warehouse is
    # where the replay rebuilds D.
    assert differences(runs[f"first {D}"], runs["replay"], through=D, parts=("warehouse",)) == {}


def test_d_plus_1_after_the_replay_rebuilds_the_first_run_of_d_plus_1(runs: dict) -> None:
    assert differences(runs[f"first {D1}"], runs["local"]) == {}
