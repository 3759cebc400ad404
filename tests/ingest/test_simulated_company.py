"""Ingest against the simulator's ground truth: every dirty record accounted for, exactly.

A small company is generated once per module with every dirty mode on (rates well under
the 5 % rejection threshold), loaded, and compared record by record with
``truth/dirty_events.parquet`` and ``truth/dirty_crm.parquet``: each injected bad record
is in ``raw.quarantine`` with its line number, raw text and reason; every other line is in
``raw.web_events``; the modes that are not quarantine-worthy by design keep their rows
and behave as designed. A second, clean company checks that an appended day loads
exactly the new files and the changed CRM rows.
"""

from __future__ import annotations

import gzip
import sqlite3
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from customer720.settings import get_settings
from ingest import extract_crm, load_events
from ingest.contract import crm_tables
from simulator import SimulationConfig, append, generate

DIRTY = {
    "malformed_json": 0.01,
    "missing_ids": 0.01,
    "duplicate_event_ids": 0.01,
    "late_files": 0.02,
    "clock_skew": 0.02,
    "schema_drift": 0.02,
    "duplicate_crm_rows": 0.02,
    "invalid_emails": 0.02,
    "negative_quantities": 0.02,
}
QUARANTINED_EVENT_REASONS = {
    ("malformed_json", None): "malformed record: not a JSON object",
    ("missing_ids", "event_id"): "missing required field event_id",
    ("missing_ids", "anonymous_id"): "missing required field anonymous_id",
    ("schema_drift", "price_as_string"): "price is not a valid double",
}


def _query(sql: str) -> list[tuple]:
    with duckdb.connect(str(get_settings().warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _file_lines(events_dir: Path) -> dict[str, list[str]]:
    """Every event file's lines (path relative to the event folder -> lines)."""
    out = {}
    for path in sorted(events_dir.rglob("*.json.gz")):
        with gzip.open(path, "rt") as handle:
            lines = handle.read().split("\n")
        out[path.relative_to(events_dir).as_posix()] = [line for line in lines if line.strip()]
    return out


@pytest.fixture(scope="module")
def dirty_company(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dirty") / "sources"
    generate(SimulationConfig(customers=250, days=12, seed=11, out=out, dirty=DIRTY))
    return out


@pytest.fixture
def loaded(dirty_company: Path, local_dir: Path) -> dict:
    crm = extract_crm(f"sqlite:///{dirty_company / 'crm.sqlite'}")
    events = load_events(dirty_company / "events")
    return {"crm": crm, "events": events}


def test_every_dirty_event_is_quarantined_or_loaded_as_designed(
    dirty_company: Path, loaded: dict
) -> None:
    events_dir = dirty_company / "events"
    lines = _file_lines(events_dir)
    truth = pd.read_parquet(dirty_company / "truth" / "dirty_events.parquet")
    truth["path"] = "date=" + truth["date"].astype(str) + "/" + truth["file"]
    # Late files whose arrival day is after the last simulated day are not on disk yet.
    truth = truth[truth["path"].isin(lines)]
    assert set(truth["mode"]) == set(DIRTY) - {
        "duplicate_crm_rows",
        "invalid_emails",
        "negative_quantities",
    }

    # Quarantine-worthy modes: each injected line is in quarantine with its line number,
    # exact raw text and reason, and nothing else is.
    quarantine = {
        (src, int(no)): (raw, reason)
        for src, no, raw, reason in _query(
            "select source, record_no, raw_record, reason from raw.quarantine "
            "where table_name = 'web_events'"
        )
    }
    expected = {}
    for row in truth.itertuples():
        detail = row.detail if row.mode != "malformed_json" else None
        reason = QUARANTINED_EVENT_REASONS.get((row.mode, detail))
        if reason is not None:
            expected[(row.path, int(row.line))] = (lines[row.path][row.line - 1], reason)
    assert len(expected) > 20
    assert quarantine == expected

    # Good rows in = good rows out, exactly, file by file.
    summary = loaded["events"]
    total_lines = sum(len(v) for v in lines.values())
    assert summary.rows_in == total_lines
    assert summary.rows_quarantined == len(expected)
    assert summary.rows_loaded == total_lines - len(expected)
    assert _query("select count(*) from raw.web_events") == [(total_lines - len(expected),)]
    per_file = dict(_query("select _source, count(*) from raw.web_events group by all"))
    bad_per_file = pd.Series([p for p, _ in expected]).value_counts().to_dict()
    assert per_file == {p: len(v) - bad_per_file.get(p, 0) for p, v in lines.items()}

    def loaded_ids(mode: str, detail: str | None = None) -> tuple[list[str], dict[str, int]]:
        rows = truth[(truth["mode"] == mode) & ((truth["detail"] == detail) if detail else True)]
        ids = sorted(set(rows["event_id"]))
        found = dict(
            _query(
                "select event_id, count(*) from raw.web_events where event_id in "
                f"(select unnest({_list(ids)})) group by all"
            )
        )
        return ids, found

    # Duplicate event ids are good rows: both copies stay in raw (dedupe is staging's job).
    ids, found = loaded_ids("duplicate_event_ids", "copy")
    assert ids and found == {i: 2 for i in ids}
    # Clock skew: device_timestamp is wrong but a valid timestamp; the event loads as is.
    ids, found = loaded_ids("clock_skew")
    assert ids and found == {i: 1 for i in ids}
    # Late files load like any new file (in their own date folder).
    ids, found = loaded_ids("late_files")
    assert ids and found == {i: 1 for i in ids}
    # Schema drift: a new field and a renamed field are kept in _extra and reported.
    for detail, field in (("new_field", "app_version"), ("renamed_field", "url")):
        ids, found = loaded_ids("schema_drift", detail)
        assert ids and found == {i: 1 for i in ids}
        with_field = _query(
            f"select count(*) from raw.web_events where json_exists(_extra, '$.{field}') "
            f"and event_id in (select unnest({_list(ids)}))"
        )
        assert with_field == [(len(ids),)]
        assert summary.new_fields[field] == len(ids)
    assert set(summary.new_fields) == {"app_version", "url"}
    audited = dict(
        _query(
            "select reason, sum(rows) from raw.load_audit where outcome = 'new_field' group by all"
        )
    )
    assert audited == summary.new_fields


def _list(values: list) -> str:
    return "[" + ", ".join("'" + str(v).replace("'", "''") + "'" for v in values) + "]::varchar[]"


def test_every_dirty_crm_record_is_quarantined_or_loaded_as_designed(
    dirty_company: Path, loaded: dict
) -> None:
    truth = pd.read_parquet(dirty_company / "truth" / "dirty_crm.parquet")
    assert set(truth["mode"]) == {"duplicate_crm_rows", "invalid_emails", "negative_quantities"}
    source = sqlite3.connect(dirty_company / "crm.sqlite")
    summary = {t.table: t for t in loaded["crm"].tables}
    pks = {spec.name: spec.primary_key for spec in crm_tables()}

    # Duplicated rows: one copy per key is loaded, each other copy quarantined.
    dups = truth[truth["mode"] == "duplicate_crm_rows"]
    assert len(dups) > 2
    for table, group in dups.groupby("table"):
        pk = pks[table]
        quarantined = _query(
            f"select json_extract(raw_record, '$.{pk}')::bigint, reason from raw.quarantine "
            f"where table_name = 'crm_{table}'"
        )
        assert sorted(q[0] for q in quarantined) == sorted(group["id"])
        assert {q[1] for q in quarantined} == {
            f"duplicate {pk} in this batch (the latest version was kept)"
        }
        assert summary[table].rows_quarantined == len(group)

    # Good rows in = good rows out, table by table: every key once, nothing else lost.
    for spec in crm_tables():
        rows_in, keys = source.execute(
            f"select count(*), count(distinct {spec.primary_key}) from {spec.name}"
        ).fetchone()
        assert summary[spec.name].rows_in == rows_in
        assert summary[spec.name].rows_changed == keys
        assert _query(
            f"select count(*), count(distinct {spec.primary_key}) from raw.{spec.raw_table}"
        ) == [(keys, keys)]
    quarantined_tables = {r[0] for r in _query("select distinct table_name from raw.quarantine")}
    assert quarantined_tables == {"web_events"} | {f"crm_{t}" for t in dups["table"]}

    # Invalid emails are valid text: loaded as typed (validating addresses is staging's job).
    bad_emails = truth[truth["mode"] == "invalid_emails"]["id"].tolist()
    expected = dict(
        source.execute(
            f"select contact_id, email from contacts where contact_id in ({','.join(map(str, bad_emails))})"
        ).fetchall()
    )
    assert (
        bad_emails
        and dict(
            _query(
                f"select contact_id, email from raw.crm_contacts where contact_id in (select unnest({_list(bad_emails)})::varchar)"
            )
        )
        == expected
    )
    # Negative quantities are valid integers: loaded unchanged, for staging and the gates.
    negative = truth[truth["mode"] == "negative_quantities"]["id"].tolist()
    assert negative
    assert _query(
        "select count(*) from raw.crm_order_items where quantity < 0 and order_item_id in "
        f"(select unnest({_list(negative)})::varchar)"
    ) == [(len(negative),)]


def test_an_appended_day_loads_only_new_files_and_changed_rows(
    tmp_path: Path, local_dir: Path
) -> None:
    out = tmp_path / "company"
    # (A company without any ticket makes the simulator fail: KeyError created_sec.)
    generate(SimulationConfig(customers=300, days=14, seed=7, out=out))
    crm_url = f"sqlite:///{out / 'crm.sqlite'}"
    extract_crm(crm_url)
    first = load_events(out / "events")
    watermarks = dict(_query("select table_name, watermark from raw.watermarks"))
    before_files = set(_file_lines(out / "events"))
    assert first.files_loaded == len(before_files)
    before = _crm_snapshot(out / "crm.sqlite")

    append(out, days=1)
    after = _crm_snapshot(out / "crm.sqlite")
    lines = _file_lines(out / "events")
    new_files = set(lines) - before_files
    assert new_files

    crm = extract_crm(crm_url)
    events = load_events(out / "events")
    assert events.files_loaded == len(new_files)
    assert events.files_skipped == len(before_files)
    assert events.rows_loaded == sum(len(lines[f]) for f in new_files)
    changed = {
        t: len(after[t].merge(before[t], how="left", indicator=True).query("_merge == 'left_only'"))
        for t in after
    }
    assert sum(changed.values()) > 0
    assert {t.table: t.rows_changed for t in crm.tables if not t.absent} == changed
    # The CRM extract read only rows at or past each table's watermark, not the history.
    with sqlite3.connect(out / "crm.sqlite") as con:
        since = {
            t: con.execute(
                f"select count(*) from {t} where updated_at >= ?", [w.isoformat(sep=" ")]
            ).fetchone()[0]
            for t, w in watermarks.items()
        }
    assert {t.table: t.rows_in for t in crm.tables if t.table in since} == since
    assert sum(since.values()) < sum(len(df) for df in after.values()) / 5
    # Each load's time and rows are recorded for `python -m ingest status`.
    runs = _query("select kind, rows_loaded, seconds from raw.load_runs order by started_at, kind")
    assert [(k, n) for k, n, _ in runs] == [
        ("crm", sum(len(df) for df in before.values())),
        ("events", first.rows_loaded),
        ("crm", crm.rows_changed),
        ("events", events.rows_loaded),
    ]
    assert all(seconds > 0 for _, _, seconds in runs)
    assert events.seconds > 0 and crm.seconds > 0
    # A third run finds nothing new.
    assert extract_crm(crm_url).rows_changed == 0
    assert load_events(out / "events").files_loaded == 0


def _crm_snapshot(path: Path) -> dict[str, pd.DataFrame]:
    with sqlite3.connect(path) as con:
        return {
            spec.name: pd.read_sql_query(f"select * from {spec.name}", con).astype(str)
            for spec in crm_tables()
        }
