"""The suppression list: erased people stay erased when the source still holds them.

``python -m privacy erase`` removes a person from the warehouse, but the CRM and the
event files may still hold them, and the next ingest would bring them back. So erasure
also records *hashes* of every id the person had (normalised emails, CRM contact ids,
order ids, anonymous web ids) in ``privacy.suppression_list``, and ingest calls
:func:`apply_suppression` at the end of each load (``extract_crm``, ``load_events``) to
delete the rows of that load that belong to a suppressed person. The list holds no
personal data in clear: ``sha256("<kind>:<value>")``.

A person keeps being recognised when they come back under a new id: a new CRM record
with a suppressed email, an order of a suppressed contact, a new cookie that logs in as a
suppressed contact. Those ids join the list too, and their earlier rows are removed, from
the CRM history tables (``ingest.crm_history``) as well.
What was removed is counted per table in ``privacy.suppression_log`` (no ids).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable

from customer720.warehouse import Destination
from ingest.contract import all_raw_tables, crm_tables
from ingest.emails import email_sql, normalise_email
from ingest.raw_store import history_table, utc_now

log = logging.getLogger(__name__)

SCHEMA = "privacy"
LIST_TABLE = f"{SCHEMA}.suppression_list"
LOG_TABLE = f"{SCHEMA}.suppression_log"
QUARANTINE = "raw.quarantine"

# Which identity a column of a raw table holds (by the contract's column names).
COLUMN_KINDS = {
    "contact_id": "contact",
    "user_id": "contact",  # a web user_id is a CRM contact id (contract)
    "email_contact_id": "contact",
    "order_id": "order",
    "anonymous_id": "anon",
    "email": "email",
}
# Ids that identify a person directly; their discovery in a load adds the person's other rows.
_KEY_COLUMNS = {
    "crm_contacts": "contact_id",
    "crm_orders": "order_id",
    "web_events": "anonymous_id",
}

_TABLES = {
    LIST_TABLE: "subject_kind varchar, subject_hash varchar, erasure_id varchar, "
    "suppressed_at timestamp",
    LOG_TABLE: "batch_id varchar, table_name varchar, rows_removed bigint, applied_at timestamp",
}


def subject_hash(kind: str, value: object) -> str:
    """The stored form of one id: ``sha256("<kind>:<value>")``, emails normalised first."""
    text = normalise_email(str(value)) if kind == "email" else str(value)
    return hashlib.sha256(f"{kind}:{text}".encode()).hexdigest()


def _sha256_sql(dest: Destination, expr: str) -> str:
    if dest.engine == "postgres":
        return f"encode(sha256(convert_to({expr}, 'UTF8')), 'hex')"
    return f"sha256({expr})"


def hash_sql(dest: Destination, kind: str, column: str) -> str:
    """SQL for :func:`subject_hash` of a column (same bytes on DuckDB and Postgres)."""
    # An empty email hashes to null here ('email:' in Python): never listed, so alike.
    value = email_sql(f'"{column}"') if kind == "email" else f'cast("{column}" as varchar)'
    return _sha256_sql(dest, f"'{kind}:' || {value}")


def ensure_tables(dest: Destination) -> None:
    dest.execute(f"create schema if not exists {SCHEMA}")
    for table, columns in _TABLES.items():
        dest.execute(f"create table if not exists {table} ({columns})")


def _has_list(dest: Destination) -> bool:
    rows = dest.fetchall(
        """select count(*) from information_schema.tables
           where table_schema = ? and table_name = 'suppression_list'""",
        [SCHEMA],
    )
    return bool(rows[0][0])


def add(dest: Destination, subjects: Iterable[tuple[str, str]], erasure_id: str) -> int:
    """Add (kind, hash) pairs not yet listed; returns how many were new."""
    known = {
        (k, h) for k, h in dest.fetchall(f"select subject_kind, subject_hash from {LIST_TABLE}")
    }
    new = sorted(set(subjects) - known)
    dest.insert_rows(
        LIST_TABLE,
        ["subject_kind", "subject_hash", "erasure_id", "suppressed_at"],
        [(k, h, erasure_id, utc_now()) for k, h in new],
    )
    return len(new)


def apply_suppression(dest: Destination, batch_id: str) -> dict[str, int]:
    """Delete the rows of load ``batch_id`` that belong to suppressed people.

    Called by ingest at the end of ``extract_crm`` and ``load_events``; does nothing (one
    catalog query) while nobody was erased. Returns rows removed per table.
    """
    if not _has_list(dest):
        return {}
    listed = f"(select subject_hash from {LIST_TABLE})"
    tables = [
        (spec.raw_table, [c for c in spec.column_names if c in COLUMN_KINDS])
        for spec in all_raw_tables()
    ]
    dest.begin()
    # 1. New ids of suppressed people found in this load join the list.
    new_ids: dict[str, set[str]] = {"contact": set(), "order": set(), "anon": set()}
    for table, columns in tables:
        key = _KEY_COLUMNS.get(table)
        if key is None:
            continue
        kind = COLUMN_KINDS[key]
        found = dest.fetchall(
            f"""select distinct cast("{key}" as varchar) from raw.{table}
                where _batch_id = ? and "{key}" is not null
                  and ({_matches(dest, columns, listed)})
                  and {hash_sql(dest, kind, key)} not in {listed}""",
            [batch_id],
        )
        new_ids[kind] |= {r[0] for r in found}
        add(dest, [(kind, subject_hash(kind, r[0])) for r in found], f"ingest:{batch_id}")
    # 2. Delete this load's rows of suppressed people, and every row of ids new to the list;
    # in the CRM history tables, the versions this load replaced and the new ids' versions.
    removed: dict[str, int] = {}
    in_load = [(table, columns, "_batch_id") for table, columns in tables]
    in_load += [
        (history_table(spec), [c for c in spec.column_names if c in COLUMN_KINDS], "_replaced_by")
        for spec in crm_tables()
    ]
    for table, columns, batch_column in in_load:
        if not columns:
            continue
        scope, params = [f"{batch_column} = ?"], [batch_id]
        for column in columns:
            values = sorted(new_ids.get(COLUMN_KINDS[column], ()))
            if values:
                scope.append(f'cast("{column}" as varchar) in ({", ".join("?" for _ in values)})')
                params += values
        where = f"({' or '.join(scope)}) and ({_matches(dest, columns, listed)})"
        n = dest.fetchall(f"select count(*) from raw.{table} where {where}", params)[0][0]
        if n:
            dest.execute(f"delete from raw.{table} where {where}", params)
            removed[f"raw.{table}"] = int(n)
    n = _forget_quarantined(dest, batch_id)
    if n:
        removed[QUARANTINE] = n
    now = utc_now()
    dest.insert_rows(
        LOG_TABLE,
        ["batch_id", "table_name", "rows_removed", "applied_at"],
        [(batch_id, t, n, now) for t, n in removed.items()],
    )
    dest.commit()
    if removed:
        log.info("suppression: removed rows of erased people from load %s: %s", batch_id, removed)
    return removed


def _matches(dest: Destination, columns: list[str], listed: str) -> str:
    return " or ".join(f"{hash_sql(dest, COLUMN_KINDS[c], c)} in {listed}" for c in columns)


_FIELD = re.compile(r'"(\w+)"\s*:\s*"?([^",}\s]*)')


def record_subjects(raw_record: str) -> set[tuple[str, str]]:
    """(kind, hash) of every id a quarantined record names, even when it is not valid JSON."""
    try:
        parsed = json.loads(raw_record)
        fields = parsed.items() if isinstance(parsed, dict) else []
    except ValueError:
        fields = _FIELD.findall(raw_record)
    return {
        (COLUMN_KINDS[k], subject_hash(COLUMN_KINDS[k], v))
        for k, v in fields
        if k in COLUMN_KINDS and v not in (None, "")
    }


def forget_quarantined(
    dest: Destination, subjects: set[tuple[str, str]], batch_id: str | None = None
) -> int:
    """Delete quarantined records (of ``batch_id``, or all) naming any of ``subjects``."""
    scope, params = ("where batch_id = ?", [batch_id]) if batch_id else ("", [])
    rows = dest.fetchall(
        f"select batch_id, source, table_name, record_no, raw_record from {QUARANTINE} {scope}",
        params,
    )
    doomed = [r[:4] for r in rows if r[4] and record_subjects(r[4]) & subjects]
    for key in doomed:
        dest.execute(
            f"""delete from {QUARANTINE}
                where batch_id = ? and source = ? and table_name = ? and record_no = ?""",
            list(key),
        )
    return len(doomed)


def _forget_quarantined(dest: Destination, batch_id: str) -> int:
    listed = {
        (k, h) for k, h in dest.fetchall(f"select subject_kind, subject_hash from {LIST_TABLE}")
    }
    return forget_quarantined(dest, listed, batch_id)
