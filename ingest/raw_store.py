"""The raw layer in the warehouse: contract tables, bookkeeping tables and validation.

Every contract table exists in ``raw`` even when a source lacks it (empty, typed), so
later stages build from whatever data exists. Validation is SQL over the incoming rows:
each contract column is ``try_cast`` to its type, and a row whose required column is
missing or whose value does not cast gets a reason and goes to ``raw.quarantine``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import duckdb

from customer720.settings import Settings
from customer720.warehouse import duckdb_connection
from ingest.contract import TableSpec, all_raw_tables

SCHEMA = "raw"

BOOKKEEPING_DDL = [
    f"""create table if not exists {SCHEMA}.load_manifest (
        path varchar primary key, size_bytes bigint, mtime double, checksum varchar,
        batch_id varchar, loaded_at timestamp,
        rows_in bigint, rows_loaded bigint, rows_quarantined bigint)""",
    f"""create table if not exists {SCHEMA}.load_audit (
        batch_id varchar, source varchar, table_name varchar, outcome varchar,
        reason varchar, rows bigint, recorded_at timestamp)""",
    f"""create table if not exists {SCHEMA}.quarantine (
        batch_id varchar, source varchar, table_name varchar, record_no bigint,
        raw_record varchar, reason varchar, quarantined_at timestamp)""",
    f"""create table if not exists {SCHEMA}.watermarks (
        source varchar, table_name varchar, watermark timestamp, updated_at timestamp,
        primary key (source, table_name))""",
]


def new_batch_id(kind: str) -> str:
    return f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def ensure_raw_layer(con: duckdb.DuckDBPyConnection) -> None:
    """Create the raw schema, every contract table and the bookkeeping tables if missing."""
    con.execute(f"create schema if not exists {SCHEMA}")
    for spec in all_raw_tables():
        con.execute(spec.raw_ddl(SCHEMA))
    for ddl in BOOKKEEPING_DDL:
        con.execute(ddl)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def typed_select(
    spec: TableSpec,
    expr: dict[str, str],
    extra_keys_expr: str | None,
    unreadable_when: str | None = None,
) -> str:
    """SQL select-list turning source expressions into typed contract columns + a reason.

    ``expr`` maps each contract column to a SQL expression over the incoming relation
    (``None``-valued when the source lacks the column). ``extra_keys_expr`` is a SQL
    expression giving the JSON of fields the contract does not name (or None).
    ``unreadable_when`` is a condition under which the record could not be read at all
    (e.g. malformed JSON); it then gets that one reason instead of a list of missing fields.
    """
    items: list[str] = []
    checks: list[str] = []
    for col in spec.columns:
        source = expr.get(col.name) or "null"
        cast = f"try_cast({source} as {col.type})"
        items.append(f'{cast} as "{col.name}"')
        if col.required:
            checks.append(
                f"case when {source} is null then 'missing required field {col.name}' end"
            )
        checks.append(
            f"case when {source} is not null and {cast} is null "
            f"then '{col.name} is not a valid {col.type.lower()}' end"
        )
    reason = f"nullif(concat_ws('; ', {', '.join(checks)}), '')"
    if unreadable_when:
        reason = f"case when {unreadable_when} then 'malformed record: not a JSON object' else {reason} end"
    items.append(f"{reason} as _reason")
    items.append(f"{extra_keys_expr or 'null'} as _extra")
    return ",\n    ".join(items)


def write_quarantine(
    con: duckdb.DuckDBPyConnection, relation: str, batch_id: str, source: str, table: str
) -> int:
    """Copy rows of ``relation`` (record_no, raw_record, _reason) that have a reason.

    A record already quarantined from the same source (a re-read CRM row, a re-tried
    rejected file) is not added twice, and earlier quarantine rows are never removed.
    Returns the number of bad rows in ``relation``.
    """
    con.execute(
        f"""insert into {SCHEMA}.quarantine
        select ?, ?, ?, n.record_no, n.raw_record, n._reason, ? from {relation} n
        where n._reason is not null and not exists (
            select 1 from {SCHEMA}.quarantine q
            where q.source = ? and q.table_name = ? and q.raw_record = n.raw_record)""",
        [batch_id, source, table, utc_now(), source, table],
    )
    row = con.execute(f"select count(*) from {relation} where _reason is not null").fetchone()
    return int(row[0])


def audit_reasons(
    con: duckdb.DuckDBPyConnection, relation: str, batch_id: str, source: str, table: str
) -> None:
    """Count quarantined rows per reason into raw.load_audit."""
    con.execute(
        f"""insert into {SCHEMA}.load_audit
        select ?, ?, ?, 'quarantined', _reason, count(*), ? from {relation}
        where _reason is not null group by _reason""",
        [batch_id, source, table, utc_now()],
    )


def audit(
    con: duckdb.DuckDBPyConnection,
    batch_id: str,
    source: str,
    table: str,
    outcome: str,
    rows: int,
    reason: str | None = None,
) -> None:
    con.execute(
        f"insert into {SCHEMA}.load_audit values (?, ?, ?, ?, ?, ?, ?)",
        [batch_id, source, table, outcome, reason, rows, utc_now()],
    )


def drift_report(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, int]:
    """Fields outside the contract seen in ``relation._extra`` and how many rows had each."""
    rows = con.execute(
        f"""select key, count(*) from (
              select unnest(json_keys(_extra)) as key from {relation} where _extra is not null
            ) group by key order by key"""
    ).fetchall()
    return {key: int(n) for key, n in rows}


def rejection_message(
    settings: Settings, batch_id: str, sources: list[str], max_rate: float
) -> str:
    with duckdb_connection(settings) as con:
        reasons = con.execute(
            """select source, reason, rows from raw.load_audit
               where batch_id = ? and outcome = 'quarantined' order by source, rows desc""",
            [batch_id],
        ).fetchall()
    lines = [
        f"{len(sources)} source(s) had more than {max_rate:.0%} bad records and were not loaded:"
    ]
    for source in sources:
        lines.append(f"  {source}:")
        lines += [f"    {n} x {reason}" for src, reason, n in reasons if src == source][:5]
    lines.append(
        "Inspect them with: select * from raw.quarantine where batch_id = "
        f"'{batch_id}'; fix the source and re-run, or raise C720_QUARANTINE_MAX_RATE."
    )
    return "\n".join(lines)


__all__ = [
    "SCHEMA",
    "audit",
    "audit_reasons",
    "drift_report",
    "ensure_raw_layer",
    "new_batch_id",
    "rejection_message",
    "typed_select",
    "utc_now",
    "write_quarantine",
    "_quote",
]
