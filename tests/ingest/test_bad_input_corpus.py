"""Issue #19: bad input never costs good data or changes its meaning.

A small company (200 good contacts, 200 good orders, 300 good events a file) gets one
record or file of each bad kind. Every bad record lands in ``raw.quarantine`` with a
readable reason, every good record in raw (good in = good out), no load raises anything
but a clear IngestError, and a blank id never reaches raw.
"""

from __future__ import annotations

import gzip
import json
import logging
import sqlite3
from pathlib import Path

import duckdb
import pytest

from customer720.settings import get_settings
from ingest import extract_crm, load_events

DAY = "2024-03-01"
# Enough good rows that each table stays under the 5 % rejection threshold.
GOOD_CONTACTS, GOOD_ORDERS, GOOD_EVENTS = 200, 200, 300


def _query(sql: str) -> list[tuple]:
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _contact(i: int, **over) -> dict:
    row = {
        "contact_id": i,
        "email": f"p{i}@x.com",
        "country": "GB",
        "lifecycle_stage": "customer",
        "marketing_consent": "1",
        "created_at": "2024-01-01 00:00:00",
        "updated_at": "2024-01-01 00:00:00",
        "is_deleted": "0",
    }
    return {**row, **over}


def _order(i: int, **over) -> dict:
    row = {
        "order_id": 1000 + i,
        "contact_id": 1 + i % GOOD_CONTACTS,
        "ordered_at": "2024-02-01 10:00:00",
        "status": "delivered",
        "channel": "web",
        "total_amount": 10.0,
        "updated_at": "2024-02-01 10:00:00",
    }
    return {**row, **over}


# kind -> (table, row, the reason's expected start)
BAD_CONTACTS = {
    "created_at not a date": (_contact(301, created_at="not a date"), "created_at is not a valid"),
    "created_at year 1": (_contact(302, created_at="0001-01-01 00:00:00"), "created_at is impl"),
    "created_at year 1900": (_contact(303, created_at="1900-01-01 00:00:00"), "created_at is impl"),
    "created_at year 2999": (_contact(304, created_at="2999-01-01 00:00:00"), "created_at is impl"),
    "created_at year 9999": (_contact(305, created_at="9999-12-31 00:00:00"), "created_at is impl"),
    "unknown lifecycle_stage": (_contact(306, lifecycle_stage="vip"), "lifecycle_stage is not one"),
    "country not ISO-2": (_contact(307, country="England"), "country is not an ISO"),
    "is_deleted maybe": (_contact(308, is_deleted="maybe"), "is_deleted is not a valid boolean"),
}
BAD_ORDERS = {
    "order of an unknown customer": (_order(501, contact_id=99999), "contact_id names no known"),
    "negative total": (_order(502, total_amount=-5.0), "total_amount is below its minimum"),
    "unknown status": (_order(503, status="lost"), "status is not one of"),
    "unknown channel": (_order(504, channel="fax"), "channel is not one of"),
    "order of a quarantined contact": (_order(505, contact_id=306), "contact_id names no known"),
}
# A garbage consent is no consent: the contact loads (good data) with consent false.
MAYBE_CONSENT = _contact(500, marketing_consent="maybe")


def _event(i: int, **over) -> dict:
    row = {
        "event_id": f"e{i}",
        "event_type": "page_view",
        "anonymous_id": f"a{i % 7}",
        "collector_timestamp": f"{DAY}T10:00:00Z",
        "platform": "web",
    }
    return {**row, **over}


BAD_EVENTS = {
    "blank event_id": (_event(9001, event_id=""), "missing required field event_id"),
    "whitespace event_id": (_event(9002, event_id="   "), "missing required field event_id"),
    "blank anonymous_id": (_event(9003, anonymous_id=""), "missing required field anonymous_id"),
    "unknown event_type": (_event(9004, event_type="teleport"), "event_type is not one of"),
    "user_id a JSON object": (_event(9005, user_id={"id": 1}), "user_id is not a text value"),
    "user_id a JSON array": (_event(9006, user_id=[1]), "user_id is not a text value"),
    "collector time year 1": (
        _event(9007, collector_timestamp="0001-01-01T00:00:00Z"),
        "collector_timestamp is impl",
    ),
    "collector time year 2999": (
        _event(9008, collector_timestamp="2999-01-01T00:00:00Z"),
        "collector_timestamp is impl",
    ),
    "negative price": (_event(9009, price=-1), "price is below its minimum"),
    "quantity 0": (_event(9010, quantity=0), "quantity is below its minimum"),
    "unknown platform": (_event(9011, platform="fridge"), "platform is not one of"),
}


def _write_crm(path: Path, contacts: list[dict], orders: list[dict]) -> None:
    con = sqlite3.connect(path)
    con.execute(
        "create table contacts (contact_id integer primary key, email text, country text, "
        "lifecycle_stage text, marketing_consent integer, created_at datetime, "
        "updated_at datetime, is_deleted integer)"
    )
    con.execute(
        "create table orders (order_id integer primary key, contact_id integer, "
        "ordered_at datetime, status text, channel text, total_amount real, updated_at datetime)"
    )
    for table, rows in (("contacts", contacts), ("orders", orders)):
        cols = list(rows[0])
        con.executemany(
            f"insert into {table} ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
            [tuple(r[c] for c in cols) for r in rows],
        )
    con.commit()
    con.close()


def _gz(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data))


def _lines(events: list[dict]) -> bytes:
    return b"".join(json.dumps(e).encode() + b"\n" for e in events)


@pytest.fixture
def company(local_dir: Path) -> Path:
    src = get_settings().sources_dir
    src.mkdir(parents=True)
    contacts = [_contact(i) for i in range(1, GOOD_CONTACTS + 1)] + [MAYBE_CONSENT]
    contacts += [row for row, _ in BAD_CONTACTS.values()]
    orders = [_order(i) for i in range(GOOD_ORDERS)] + [row for row, _ in BAD_ORDERS.values()]
    _write_crm(src / "crm.sqlite", contacts, orders)
    day = src / "events" / f"date={DAY}"
    # File 1: 300 good events and one of each bad kind.
    good = [_event(i) for i in range(GOOD_EVENTS)]
    _gz(day / "part-00000.json.gz", _lines(good + [row for row, _ in BAD_EVENTS.values()]))
    # File 2: 300 good events and one line that is not UTF-8.
    good2 = [_event(1000 + i) for i in range(GOOD_EVENTS)]
    body = _lines(good2[:150]) + b'{"event_id": "bad\xff\xfe"}\n' + _lines(good2[150:])
    _gz(day / "part-00001.json.gz", body)
    # File 3: a gzip cut short: its whole lines load, the broken tail is quarantined.
    good3 = [_event(2000 + i) for i in range(GOOD_EVENTS)]
    whole = gzip.compress(_lines(good3))
    (day / "part-00002.json.gz").write_bytes(whole[: len(whole) * 2 // 3])
    # File 4: 0 bytes; file 5: an empty gzip. Empty deliveries, not failures.
    (day / "part-00003.json.gz").write_bytes(b"")
    _gz(day / "part-00004.json.gz", b"")
    return src


def test_bad_input_corpus_costs_no_good_record(company: Path) -> None:
    crm = extract_crm()  # no exception: 'not a date' is one quarantined row
    events = load_events()

    # CRM: good in = good out; each bad row quarantined with its reason.
    assert _query("select count(*) from raw.crm_contacts") == [(GOOD_CONTACTS + 1,)]
    assert _query("select count(*) from raw.crm_orders") == [(GOOD_ORDERS,)]
    for table, bad, id_col in (
        ("crm_contacts", BAD_CONTACTS, "contact_id"),
        ("crm_orders", BAD_ORDERS, "order_id"),
    ):
        got = dict(
            _query(
                f"select json_extract(raw_record, '$.{id_col}')::bigint, reason "
                f"from raw.quarantine where table_name = '{table}'"
            )
        )
        assert len(got) == len(bad), (table, got)
        for row, reason in bad.values():
            assert got[row[id_col]].startswith(reason), (row, got[row[id_col]])

    # Consent is never inferred: 'maybe' loads as false, with a warning.
    assert _query("select marketing_consent from raw.crm_contacts where contact_id = '500'") == [
        (False,)
    ]
    assert _query(
        "select rows from raw.load_audit where outcome = 'warned' "
        "and reason like 'marketing_consent is not an explicit yes%'"
    ) == [(1,)]
    assert any("contacts" in w for w in crm.warnings)

    # Events: every good line of every file loads; each bad line is quarantined.
    good_total = GOOD_EVENTS * 2
    loaded = _query("select count(*) from raw.web_events")[0][0]
    truncated_whole = loaded - good_total
    assert 0 < truncated_whole < GOOD_EVENTS  # the readable part of the cut file loaded
    assert _query("select count(*) from raw.web_events where _source like '%part-00002%'") == [
        (truncated_whole,)
    ]
    got = dict(
        _query(
            "select record_no, reason from raw.quarantine "
            "where table_name = 'web_events' and source like '%part-00000%'"
        )
    )
    assert len(got) == len(BAD_EVENTS)
    for no, (_, reason) in enumerate(BAD_EVENTS.values(), GOOD_EVENTS + 1):
        assert got[no].startswith(reason), (no, got[no])
    assert _query(
        "select record_no, reason from raw.quarantine where source like '%part-00001%'"
    ) == [(151, "not valid UTF-8 text (bytes shown as \\xNN)")]
    tail = _query("select reason from raw.quarantine where source like '%part-00002%'")
    assert any(r[0].startswith("truncated gzip") for r in tail)
    assert sorted(events.files_empty) == [
        f"date={DAY}/part-00003.json.gz",
        f"date={DAY}/part-00004.json.gz",
    ]
    assert events.files_rejected == []

    # Blank ids never reach raw; the gate sees only valid event types.
    assert _query(
        "select count(*) from raw.web_events where trim(event_id) = '' or trim(anonymous_id) = ''"
    ) == [(0,)]
    assert _query("select count(*) from raw.web_events where event_type not in ('page_view')") == [
        (0,)
    ]


def test_an_orphan_loads_once_its_parent_arrives(company: Path) -> None:
    extract_crm()
    con = sqlite3.connect(company / "crm.sqlite")
    con.execute(
        "update contacts set lifecycle_stage = 'lead', updated_at = '2024-03-02 00:00:00' "
        "where contact_id = '306'"
    )
    con.commit()
    con.close()
    extract_crm()
    assert _query("select count(*) from raw.crm_orders where contact_id = '306'") == [(1,)]


def test_an_orphan_past_the_wait_no_longer_holds_the_watermark(
    company: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An order whose contact never comes must not make every later load re-read all
    rows since it: after C720_ORPHAN_WAIT_DAYS it stays in quarantine, named in a warning."""
    extract_crm()
    later = _order(900, updated_at="2024-03-05 08:00:00")
    with sqlite3.connect(company / "crm.sqlite") as con:
        cols = list(later)
        con.execute(
            f"insert into orders ({', '.join(cols)}) values ({', '.join('?' for _ in cols)})",
            [later[c] for c in cols],
        )
    watermark = "select cast(watermark as varchar) from raw.watermarks where table_name = 'orders'"
    extract_crm()
    # within the wait the orphans hold the watermark at them: they are read again
    assert _query(watermark) == [("2024-02-01 10:00:00",)]
    with duckdb.connect(str(get_settings().warehouse_path)) as con:
        # as if the orphans had been first quarantined 8 days ago
        con.execute(
            "update raw.quarantine set quarantined_at = quarantined_at - interval 8 day "
            "where reason like '% names no known %'"
        )
    orphans = _query("select count(*) from raw.quarantine where reason like '% names no known %'")
    with caplog.at_level(logging.WARNING, logger="ingest.crm"):
        extract_crm()
    assert _query(watermark) == [("2024-03-05 08:00:00",)]
    assert "still unknown after the orphan wait" in caplog.text
    # kept in quarantine with their reason, not quarantined again
    assert (
        _query("select count(*) from raw.quarantine where reason like '% names no known %'")
        == orphans
    )


def test_header_only_contacts_csv_is_an_empty_delivery(local_dir: Path, tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "contacts.csv").write_text("contact_id,email,created_at,updated_at\n")
    (exports / "orders.csv").write_text("order_id,contact_id,ordered_at,updated_at\n")
    summary = extract_crm(exports)
    assert "contacts: empty delivery (no rows)" in summary.warnings
    assert _query("select count(*) from raw.load_audit where outcome = 'empty'") == [(2,)]
