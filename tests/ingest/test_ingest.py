"""Ingest: idempotent, incremental, and no record lost — bad ones quarantined with a reason."""

from __future__ import annotations

import gzip
import json
import os
import sqlite3
from pathlib import Path

import duckdb
import pytest

from customer720.settings import get_settings
from ingest import IngestError, extract_crm, load_events


def _crm(path: Path, contacts: list[tuple], orders: list[tuple]) -> None:
    con = sqlite3.connect(path)
    con.execute(
        "create table if not exists contacts (contact_id integer primary key, email text, "
        "marketing_consent integer, created_at text, updated_at text, is_deleted integer)"
    )
    con.execute(
        "create table if not exists orders (order_id integer primary key, contact_id integer, "
        "ordered_at text, status text, total_amount real, updated_at text)"
    )
    con.executemany("insert or replace into contacts values (?, ?, ?, ?, ?, ?)", contacts)
    con.executemany("insert or replace into orders values (?, ?, ?, ?, ?, ?)", orders)
    con.commit()
    con.close()


def _events(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(lines) + "\n")


def _event(i: int, **extra) -> str:
    body = {
        "event_id": f"e{i}",
        "event_type": "page_view",
        "anonymous_id": f"a{i % 7}",
        "collector_timestamp": "2024-03-01T10:00:00Z",
    }
    body.update(extra)
    return json.dumps(body)


def _query(sql: str) -> list[tuple]:
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _content_checksum(table: str, columns: str) -> tuple:
    return _query(f"select count(*), sum(hash({columns})) from raw.{table}")[0]


@pytest.fixture
def sources(local_dir: Path) -> Path:
    src = get_settings().sources_dir
    src.mkdir(parents=True)
    _crm(
        src / "crm.sqlite",
        [
            (1, "A@x.com", 1, "2024-01-01 00:00:00", "2024-01-01 00:00:00", 0),
            (2, "b@x.com", 0, "2024-01-02 00:00:00", "2024-01-02 00:00:00", 0),
        ],
        [(10, 1, "2024-02-01 10:00:00", "delivered", 25.0, "2024-02-01 10:00:00")],
    )
    _events(
        src / "events" / "date=2024-03-01" / "part-00000.json.gz", [_event(i) for i in range(50)]
    )
    return src


def test_loading_twice_leaves_raw_unchanged(sources: Path) -> None:
    extract_crm()
    load_events()
    before = [
        _content_checksum("crm_contacts", "contact_id, email, updated_at, _batch_id"),
        _content_checksum("crm_orders", "order_id, total_amount, _batch_id"),
        _content_checksum("web_events", "event_id, _batch_id"),
    ]
    second_crm = extract_crm()
    second_events = load_events()
    after = [
        _content_checksum("crm_contacts", "contact_id, email, updated_at, _batch_id"),
        _content_checksum("crm_orders", "order_id, total_amount, _batch_id"),
        _content_checksum("web_events", "event_id, _batch_id"),
    ]
    assert after == before
    assert second_crm.rows_changed == 0
    assert (second_events.files_loaded, second_events.files_skipped) == (0, 1)


def test_only_new_rows_and_files_load(sources: Path) -> None:
    extract_crm()
    load_events()
    # A contact changes (soft delete), an order arrives, a new day and a late file arrive.
    _crm(
        sources / "crm.sqlite",
        [(2, "b@x.com", 0, "2024-01-02 00:00:00", "2024-03-02 09:00:00", 1)],
        [(11, 2, "2024-03-02 08:00:00", "placed", 9.5, "2024-03-02 08:00:00")],
    )
    _events(
        sources / "events" / "date=2024-03-02" / "part-00000.json.gz",
        [_event(100 + i, collector_timestamp="2024-03-02T10:00:00Z") for i in range(5)],
    )
    _events(
        sources / "events" / "date=2024-02-20" / "part-00000.json.gz",
        [_event(200 + i, collector_timestamp="2024-02-20T10:00:00Z") for i in range(3)],
    )
    crm = extract_crm()
    events = load_events()
    assert {t.table: t.rows_changed for t in crm.tables if t.rows_changed} == {
        "contacts": 1,
        "orders": 1,
    }
    assert events.files_loaded == 2 and events.rows_loaded == 8
    assert _query("select is_deleted from raw.crm_contacts where contact_id = '2'") == [(True,)]
    assert _query("select count(*) from raw.web_events") == [(58,)]


def test_bad_records_are_quarantined_with_reasons_and_counted(sources: Path) -> None:
    good = [_event(300 + i, new_field={"x": i}) for i in range(96)]
    bad = [
        "{not json",
        json.dumps({"event_type": "page_view"}),
        _event(999, price="12,50"),
        _event(998, collector_timestamp="yesterday"),
    ]
    _events(sources / "events" / "date=2024-03-03" / "part-00000.json.gz", good + bad)
    summary = load_events()
    assert summary.rows_in == 50 + 100
    assert summary.rows_loaded == 50 + 96
    assert summary.rows_quarantined == 4
    reasons = dict(_query("select raw_record, reason from raw.quarantine"))
    assert reasons["{not json"] == "malformed record: not a JSON object"
    assert "missing required field event_id" in reasons[json.dumps({"event_type": "page_view"})]
    assert reasons[_event(999, price="12,50")] == "price is not a valid double"
    assert reasons[_event(998, collector_timestamp="yesterday")].startswith(
        "collector_timestamp is not"
    )
    # The new field is kept, not dropped, and reported.
    assert summary.new_fields == {"new_field": 96}
    assert _query("select count(*) from raw.web_events where _extra like '%new_field%'") == [(96,)]


def test_a_mostly_bad_file_fails_the_load_naming_file_and_reason(sources: Path) -> None:
    path = sources / "events" / "date=2024-03-04" / "part-00000.json.gz"
    _events(path, ["{broken"] * 10 + [_event(400 + i) for i in range(10)])
    with pytest.raises(IngestError) as error:
        load_events()
    message = str(error.value)
    assert "date=2024-03-04/part-00000.json.gz" in message
    assert "malformed record" in message
    # Nothing of the rejected file is in raw, its bad rows are in quarantine for inspection.
    assert _query("select count(*) from raw.web_events where _source like 'date=2024-03-04%'") == [
        (0,)
    ]
    assert _query("select count(*) from raw.quarantine where source like 'date=2024-03-04%'") == [
        (10,)
    ]


def test_a_file_changed_after_loading_is_reported_not_reloaded(sources: Path) -> None:
    load_events()
    path = sources / "events" / "date=2024-03-01" / "part-00000.json.gz"
    _events(path, [_event(i) for i in range(60)])
    os.utime(path, (1, 1))
    summary = load_events()
    assert summary.files_changed == ["date=2024-03-01/part-00000.json.gz"]
    assert _query("select count(*) from raw.web_events") == [(50,)]


def test_crm_rows_with_bad_values_are_quarantined(sources: Path) -> None:
    _crm(
        sources / "crm.sqlite",
        [],
        [(12, 1, "not a date", "placed", 1.0, "2024-03-05 00:00:00")]
        + [
            (20 + i, 1, "2024-03-05 00:00:00", "placed", 1.0, "2024-03-05 00:00:00")
            for i in range(30)
        ],
    )
    summary = extract_crm()
    orders = next(t for t in summary.tables if t.table == "orders")
    assert (orders.rows_in, orders.rows_quarantined) == (32, 1)
    assert _query("select reason from raw.quarantine where table_name = 'crm_orders'") == [
        ("ordered_at is not a valid timestamp",)
    ]


def test_absent_optional_tables_exist_empty_in_raw(sources: Path) -> None:
    extract_crm()
    tables = {
        r[0]
        for r in _query(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        )
    }
    assert {"crm_products", "crm_tickets", "crm_email_events", "crm_survey_responses"} <= tables
    assert _query("select count(*) from raw.crm_tickets") == [(0,)]


def test_missing_required_table_is_a_clear_error(local_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "empty.sqlite"
    sqlite3.connect(db).close()
    with pytest.raises(IngestError, match="no 'contacts' table"):
        extract_crm(f"sqlite:///{db}")


def test_extract_from_a_folder_of_csv_exports(local_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    (folder / "contacts.csv").write_text(
        "contact_id,email,created_at,updated_at\n1,a@x.com,2024-01-01,2024-01-01\n2,b@x.com,2024-01-01,2024-01-01\n"
    )
    (folder / "orders.csv").write_text(
        "order_id,contact_id,ordered_at,total_amount,updated_at\n5,1,2024-01-03,10.5,2024-01-03\n"
    )
    extract_crm(folder)
    assert _query("select count(*) from raw.crm_contacts") == [(2,)]
    assert _query("select total_amount from raw.crm_orders") == [(10.5,)]
    assert extract_crm(folder).rows_changed == 0


def test_a_raw_layer_with_integer_ids_takes_text_ids(sources: Path) -> None:
    """A warehouse loaded when ids were BIGINT: its ids become their text and text ids
    (a CRM migrated to Salesforce-style keys) load and join beside them."""
    extract_crm()
    with duckdb.connect(str(get_settings().warehouse_path)) as con:
        for table, column in (("crm_contacts", "contact_id"), ("crm_orders", "contact_id")):
            con.execute(f"alter table raw.{table} alter column {column} type bigint")
    with sqlite3.connect(sources / "crm.sqlite") as crm:  # the CRM now keys by text
        for table, columns in (
            ("contacts", "contact_id text primary key, email text, marketing_consent integer, "
             "created_at text, updated_at text, is_deleted integer"),
            ("orders", "order_id text primary key, contact_id text, ordered_at text, "
             "status text, total_amount real, updated_at text"),
        ):  # fmt: skip
            crm.execute(f"alter table {table} rename to old_{table}")
            crm.execute(f"create table {table} ({columns})")
            crm.execute(f"insert into {table} select * from old_{table}")
    _crm(
        sources / "crm.sqlite",
        [("0035g00000AbCdEAAZ", "c@x.com", 1, "2024-03-01 00:00:00", "2024-03-01 00:00:00", 0)],
        [(11, "0035g00000AbCdEAAZ", "2024-03-02 10:00:00", "placed", 5.0, "2024-03-02 10:00:00")],
    )
    summary = extract_crm()
    assert sum(t.rows_quarantined for t in summary.tables) == 0
    assert _query(
        "select data_type from information_schema.columns "
        "where table_schema = 'raw' and table_name = 'crm_orders' and column_name = 'contact_id'"
    ) == [("VARCHAR",)]
    assert sorted(_query("select order_id, contact_id from raw.crm_orders")) == [
        ("10", "1"),
        ("11", "0035g00000AbCdEAAZ"),
    ]


def test_extract_from_postgres_crm(local_dir: Path, postgres_url: str) -> None:
    import sqlalchemy as sa

    from customer720.warehouse import sqlalchemy_url

    engine = sa.create_engine(sqlalchemy_url(postgres_url))
    with engine.begin() as con:
        con.execute(
            sa.text(
                "create table contacts (contact_id bigint primary key, email text, "
                "created_at timestamp, updated_at timestamp, is_deleted boolean)"
            )
        )
        con.execute(
            sa.text(
                "create table orders (order_id bigint primary key, contact_id bigint, "
                "ordered_at timestamp, total_amount numeric, updated_at timestamp)"
            )
        )
        con.execute(
            sa.text("insert into contacts values (1, 'a@x.com', now(), '2024-01-01', false)")
        )
        con.execute(sa.text("insert into orders values (7, 1, '2024-01-02', 12.34, '2024-01-02')"))
    engine.dispose()
    summary = extract_crm(postgres_url)
    assert summary.rows_changed == 2
    assert _query("select is_deleted, email from raw.crm_contacts") == [(False, "a@x.com")]
    assert extract_crm(postgres_url).rows_changed == 0


def test_parquet_event_files_load_through_the_same_validation(sources: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = sources / "events" / "date=2024-03-06"
    folder.mkdir(parents=True)
    table = pa.table(
        {
            "event_id": ["p1", "p2", None, "p4"],
            "event_type": ["page_view", "purchase", "page_view", "page_view"],
            "anonymous_id": ["a1", "a2", "a3", "a4"],
            "collector_timestamp": pa.array(
                ["2024-03-06 10:00:00", "2024-03-06 10:01:00", "2024-03-06 10:02:00", "soon"]
            ),
            "price": [None, 9.5, None, None],
            "app_version": ["1.0", None, None, None],  # outside the contract
        }
    )
    pq.write_table(table, folder / "export.parquet")
    summary = load_events(max_quarantine_rate=0.5)  # 2 of its 4 rows are bad on purpose
    assert (summary.files_loaded, summary.rows_in, summary.rows_loaded) == (2, 54, 52)
    assert summary.new_fields == {"app_version": 1}
    assert _query(
        "select event_id, price, _extra from raw.web_events where _source like '%.parquet' "
        "order by event_id"
    ) == [("p1", None, '{"app_version":"1.0"}'), ("p2", 9.5, None)]
    assert _query(
        "select record_no, reason from raw.quarantine where source = 'date=2024-03-06/export.parquet' "
        "order by record_no"
    ) == [
        (3, "missing required field event_id"),
        (4, "collector_timestamp is not a valid timestamp"),
    ]
    assert load_events().files_skipped == 2


def _pg_rows(url: str, sql: str) -> list[tuple]:
    import sqlalchemy as sa

    from customer720.warehouse import sqlalchemy_url

    engine = sa.create_engine(sqlalchemy_url(url))
    try:
        with engine.connect() as con:
            return [tuple(r) for r in con.execute(sa.text(sql)).fetchall()]
    finally:
        engine.dispose()


def test_postgres_warehouse_loads_twice_unchanged_then_incrementally(
    sources: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.__main__ import main

    monkeypatch.setenv("C720_WAREHOUSE", postgres_url)
    _events(
        sources / "events" / "date=2024-03-03" / "part-00000.json.gz",
        [_event(500 + i, new_field=i) for i in range(40)] + ["{not json"],
    )
    assert main(["all"]) == 0
    checksums = {
        "crm_contacts": "md5(string_agg(concat_ws('|', contact_id, email, marketing_consent, "
        "updated_at, is_deleted, _batch_id), ',' order by contact_id))",
        "crm_orders": "md5(string_agg(concat_ws('|', order_id, total_amount, ordered_at, "
        "_batch_id), ',' order by order_id))",
        "web_events": "md5(string_agg(concat_ws('|', event_id, collector_timestamp, _extra, "
        "_batch_id), ',' order by event_id))",
    }

    def state() -> dict:
        return {
            t: _pg_rows(postgres_url, f"select count(*), {c} from raw.{t}")[0]
            for t, c in checksums.items()
        }

    first = state()
    assert {t: n for t, (n, _) in first.items()} == {
        "crm_contacts": 2,
        "crm_orders": 1,
        "web_events": 90,
    }
    # Every contract table and the bookkeeping exist in Postgres, typed like in DuckDB.
    tables = {
        r[0]
        for r in _pg_rows(
            postgres_url,
            "select table_name from information_schema.tables where table_schema = 'raw'",
        )
    }
    assert {"crm_tickets", "load_manifest", "load_audit", "quarantine", "watermarks"} <= tables
    assert _pg_rows(
        postgres_url,
        "select data_type from information_schema.columns where table_schema = 'raw' "
        "and table_name = 'crm_orders' and column_name = 'total_amount'",
    ) == [("double precision",)]
    assert _pg_rows(postgres_url, "select record_no, raw_record, reason from raw.quarantine") == [
        (41, "{not json", "malformed record: not a JSON object")
    ]
    assert _pg_rows(postgres_url, "select _extra from raw.web_events where event_id = 'e507'") == [
        ('{"new_field":7}',)
    ]
    assert _pg_rows(postgres_url, "select count(*) from raw.watermarks") == [(2,)]

    # Loading again changes nothing.
    assert extract_crm().rows_changed == 0
    again = load_events()
    assert (again.files_loaded, again.files_skipped) == (0, 2)
    assert state() == first
    assert _pg_rows(postgres_url, "select count(*) from raw.quarantine") == [(1,)]

    # A change in the CRM and a new file load incrementally.
    _crm(
        sources / "crm.sqlite",
        [(2, "b@x.com", 0, "2024-01-02 00:00:00", "2024-03-02 09:00:00", 1)],
        [(11, 2, "2024-03-02 08:00:00", "placed", 9.5, "2024-03-02 08:00:00")],
    )
    _events(
        sources / "events" / "date=2024-03-04" / "part-00000.json.gz",
        [_event(600 + i, collector_timestamp="2024-03-04T10:00:00Z") for i in range(5)],
    )
    crm = extract_crm()
    assert {t.table: t.rows_changed for t in crm.tables if t.rows_changed} == {
        "contacts": 1,
        "orders": 1,
    }
    assert load_events().rows_loaded == 5
    assert _pg_rows(
        postgres_url, "select is_deleted from raw.crm_contacts where contact_id = '2'"
    ) == [(True,)]
    assert _pg_rows(postgres_url, "select count(*) from raw.web_events") == [(95,)]
    assert _pg_rows(postgres_url, "select count(*) from raw.load_manifest") == [(3,)]
    assert main(["status"]) == 0


def test_fields_outside_the_contract_are_found_in_any_json_layout(sources: Path) -> None:
    lines = {
        "compact": '{"event_id":"x1","event_type":"page_view","anonymous_id":"a",'
        '"collector_timestamp":"2024-03-07T10:00:00Z","app_version":"5.3"}',
        "space before colon": '{"event_id" : "x2", "event_type" : "page_view", "anonymous_id" '
        ': "a", "collector_timestamp" : "2024-03-07T10:00:00Z", "tab"\t: {"n": [1, 2]}}',
        "null contract field": '{"event_id":"x3","event_type":"page_view","anonymous_id":"a",'
        '"collector_timestamp":"2024-03-07T10:00:00Z","user_id":null}',
        "colon in a value": '{"event_id":"x4","event_type":"search","anonymous_id":"a",'
        '"collector_timestamp":"2024-03-07T10:00:00Z","search_query":"a\\":b\\":c"}',
        "nested extra only": '{"event_id":"x5","event_type":"page_view","anonymous_id":"a",'
        '"collector_timestamp":"2024-03-07T10:00:00Z","ctx":{"event_id":"no"}}',
    }
    _events(
        sources / "events" / "date=2024-03-07" / "part-00000.json.gz",
        list(lines.values()) + [_event(700 + i) for i in range(95)],
    )
    load_events()
    extra = dict(
        _query(
            "select event_id, _extra from raw.web_events where _source like 'date=2024-03-07%' "
            "and _extra is not null"
        )
    )
    assert extra == {
        "x1": '{"app_version":"5.3"}',
        "x2": '{"tab":{"n":[1,2]}}',
        "x5": '{"ctx":{"event_id":"no"}}',
    }
    assert _query("select search_query from raw.web_events where event_id = 'x4'") == [('a":b":c',)]


def test_an_unreadable_file_is_rejected_by_name_and_the_others_load(sources: Path) -> None:
    corrupt = sources / "events" / "date=2024-03-08" / "part-00000.json.gz"
    corrupt.parent.mkdir(parents=True)
    corrupt.write_bytes(gzip.compress(b'{"event_id": "z"}\n')[:-12])  # cut short
    _events(
        sources / "events" / "date=2024-03-09" / "part-00000.json.gz",
        [_event(800 + i, collector_timestamp="2024-03-09T10:00:00Z") for i in range(5)],
    )
    with pytest.raises(IngestError, match=r"date=2024-03-08/part-00000.json.gz:\n    unreadable"):
        load_events()
    assert _query("select count(*) from raw.web_events") == [(55,)]
    assert _query("select count(*) from raw.load_manifest") == [(2,)]
