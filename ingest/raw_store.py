"""The raw layer: contract tables, bookkeeping tables and validation.

Every contract table exists in ``raw`` even when a source lacks it (empty, typed), so
later stages build from whatever data exists. Validation is SQL over the incoming rows in
DuckDB: each contract column is ``try_cast`` to its type, and a row whose required column
is missing or whose value does not cast gets a reason and goes to ``raw.quarantine``.
The writes go through a :class:`~customer720.warehouse.Destination` (DuckDB or Postgres).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from customer720.settings import Settings
from customer720.warehouse import Destination, WarehouseUnavailable, open_destination
from ingest.contract import (
    METADATA_COLUMNS,
    Column,
    TableSpec,
    all_raw_tables,
    crm_tables,
    rules,
)
from ingest.errors import IngestError

SCHEMA = "raw"

BOOKKEEPING_TABLES: dict[str, dict[str, str]] = {
    "load_manifest": {
        "path": "VARCHAR primary key",
        "size_bytes": "BIGINT",
        "mtime": "DOUBLE",
        "checksum": "VARCHAR",
        "batch_id": "VARCHAR",
        "loaded_at": "TIMESTAMP",
        "rows_in": "BIGINT",
        "rows_loaded": "BIGINT",
        "rows_quarantined": "BIGINT",
    },
    "load_audit": {
        "batch_id": "VARCHAR",
        "source": "VARCHAR",
        "table_name": "VARCHAR",
        "outcome": "VARCHAR",
        "reason": "VARCHAR",
        "rows": "BIGINT",
        "recorded_at": "TIMESTAMP",
    },
    "quarantine": {
        "batch_id": "VARCHAR",
        "source": "VARCHAR",
        "table_name": "VARCHAR",
        "record_no": "BIGINT",
        "raw_record": "VARCHAR",
        "reason": "VARCHAR",
        "quarantined_at": "TIMESTAMP",
    },
    # One row per load (extract_crm or load_events call): how long it took, what it loaded.
    "load_runs": {
        "batch_id": "VARCHAR",
        "kind": "VARCHAR",
        "source": "VARCHAR",
        "started_at": "TIMESTAMP",
        "seconds": "DOUBLE",
        "sources_loaded": "BIGINT",
        "rows_loaded": "BIGINT",
        "rows_quarantined": "BIGINT",
    },
    "watermarks": {
        "source": "VARCHAR",
        "table_name": "VARCHAR",
        "watermark": "TIMESTAMP",
        "updated_at": "TIMESTAMP",
    },
    # Which loads a run for a date read: those up to loaded_through (ingest.crm_history).
    "as_of_loads": {
        "as_of_date": "DATE",
        "loaded_through": "TIMESTAMP",
        "recorded_at": "TIMESTAMP",
    },
}
_TABLE_CONSTRAINTS = {
    "watermarks": ", primary key (source, table_name)",
    "as_of_loads": ", primary key (as_of_date)",
}

# A CRM table's earlier versions: raw.<table>_history holds each row a load replaced, with
# the load time that replaced it (_valid_to; it was valid from its _loaded_at) and that
# load's batch id. The raw table itself keeps the current version of each key.
HISTORY_SUFFIX = "_history"
HISTORY_COLUMNS = {"_valid_to": "TIMESTAMP", "_replaced_by": "VARCHAR"}


def open_raw(settings: Settings) -> Destination:
    """The warehouse for one load; an unreachable warehouse stops the load (IngestError)."""
    try:
        return open_destination(settings)
    except WarehouseUnavailable as exc:
        raise IngestError(str(exc)) from exc


def new_batch_id(kind: str) -> str:
    return f"{kind}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _column_ddl(dest: Destination, name: str, type_: str) -> str:
    base, _, rest = type_.partition(" ")
    return f'"{name}" {dest.sql_type(base)}{" " + rest if rest else ""}'


def raw_columns(spec: TableSpec) -> dict[str, str]:
    """Every column of ``raw.<spec.raw_table>`` with its (DuckDB) type."""
    return {**{c.name: c.type for c in spec.columns}, **METADATA_COLUMNS}


def history_table(spec: TableSpec) -> str:
    """The table of a CRM table's replaced versions (``HISTORY_SUFFIX``)."""
    return spec.raw_table + HISTORY_SUFFIX


def ensure_raw_layer(dest: Destination) -> None:
    """Create the raw schema, every contract table, the CRM tables' history tables and the
    bookkeeping tables if missing."""
    dest.execute(f"create schema if not exists {SCHEMA}")
    tables = {spec.raw_table: raw_columns(spec) for spec in all_raw_tables()}
    tables.update(
        {history_table(spec): raw_columns(spec) | HISTORY_COLUMNS for spec in crm_tables()}
    )
    tables.update(BOOKKEEPING_TABLES)
    for table, columns in tables.items():
        cols = ", ".join(_column_ddl(dest, n, t) for n, t in columns.items())
        dest.execute(
            f'create table if not exists {SCHEMA}."{table}" '
            f"({cols}{_TABLE_CONSTRAINTS.get(table, '')})"
        )
    _widen_integer_ids(dest)
    dest.commit()


def ensure_bookkeeping_table(dest: Destination, table: str) -> None:
    """Create one bookkeeping table (and the raw schema) if missing, nothing else."""
    dest.execute(f"create schema if not exists {SCHEMA}")
    cols = ", ".join(_column_ddl(dest, n, t) for n, t in BOOKKEEPING_TABLES[table].items())
    dest.execute(
        f'create table if not exists {SCHEMA}."{table}" ({cols}{_TABLE_CONSTRAINTS.get(table, "")})'
    )


def _widen_integer_ids(dest: Destination) -> None:
    """Turn id columns a warehouse made before ids were text (BIGINT) into text.

    Ids are text end to end (contract.json), so a source may start sending
    'cus_9s6XKzkNRiz8i3' where it sent 123; the stored 123 becomes '123', which is how an
    integer id arrives as text, so old and new rows keep joining."""
    wanted = {
        (spec.raw_table, c.name)
        for spec in all_raw_tables()
        for c in spec.columns
        if c.name.endswith("_id") and c.type.upper() == "VARCHAR"
    }
    found = dest.fetchall(
        "select table_name, column_name from information_schema.columns "
        "where table_schema = ? and lower(data_type) in ('bigint', 'integer', 'smallint')",
        [SCHEMA],
    )
    for table, column in sorted(set(found) & wanted):
        text = dest.sql_type("VARCHAR")
        using = f' using "{column}"::{text}' if dest.engine == "postgres" else ""
        dest.execute(f'alter table {SCHEMA}."{table}" alter column "{column}" type {text}{using}')


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _literal(value: object) -> str:
    """A SQL literal for a batch id, source label or load time (DuckDB syntax)."""
    if value is None:
        return "null"
    if isinstance(value, datetime):
        return f"timestamp '{value.isoformat(sep=' ')}'"
    return _quote(str(value))


# Whitespace as Python's str.isspace() sees it: ASCII and Unicode spaces (no-break, em,
# ideographic space, ...), in RE2 syntax. An id of only these is as blank as ''.
_BLANK_RE = r"[\s\x{0b}\x{1c}-\x{1f}\x{85}\p{Z}]*"


def _blank_is_null(text: str) -> str:
    """Text id: empty or whitespace-only is missing (the value itself is kept as sent).

    The regex runs only for a value starting with a control or non-ASCII character (never
    a normal id), so loads of ordinary ids pay one ``ascii()`` per value."""
    return (
        f"case when {text} = '' or ((ascii({text}) <= 32 or ascii({text}) >= 127) "
        f"and regexp_full_match({text}, '{_BLANK_RE}')) then null else {text} end"
    )


def _boolean(text: str) -> str:
    """A BOOLEAN from the contract's spellings only (any case, trimmed); else NULL."""
    r = rules()
    true, false = (
        ", ".join(map(_quote, r["boolean_true"])),
        ", ".join(map(_quote, r["boolean_false"])),
    )
    word = f"lower(trim({text}))"
    return f"case when {word} in ({true}) then true when {word} in ({false}) then false end"


def _value_rules(
    col: Column, value: str, load_time: datetime, value_of: dict[str, str]
) -> list[tuple[str, str]]:
    """(condition, message) for each contract rule ``value`` (typed, not null) breaks."""
    r = rules()
    out: list[tuple[str, str]] = []
    if col.values:
        allowed = ", ".join(map(_quote, col.values))
        out.append(
            (f"{value} not in ({allowed})", f"{col.name} is not one of the contract's values")
        )
    if col.min is not None and col.min_unless:
        # a sign rule with an exception (orders: a negative total is a credit note, allowed
        # only with status 'returned')
        other = value_of[col.min_unless["column"]]
        waived = ", ".join(map(_quote, col.min_unless["values"]))
        out.append(
            (
                f"{value} < {col.min} and not coalesce({other} in ({waived}), false)",
                f"{col.name} is below its minimum {col.min:g} (allowed only when "
                f"{col.min_unless['column']} is {' or '.join(col.min_unless['values'])})",
            )
        )
    elif col.min is not None:
        out.append((f"{value} < {col.min}", f"{col.name} is below its minimum {col.min:g}"))
    if col.format == "iso_country":
        codes = ", ".join(map(_quote, r["formats"]["iso_country"]))
        out.append(
            (
                f"upper(trim({value})) not in ({codes})",
                f"{col.name} is not an ISO 3166-1 alpha-2 code",
            )
        )
    elif col.format is not None:
        pattern = _quote(r["formats"][col.format])
        out.append(
            (
                f"not regexp_full_match(trim({value}), {pattern})",
                f"{col.name} is not a valid {col.format}",
            )
        )
    if col.range_by:
        other = value_of[col.range_by["column"]]
        whens = " ".join(
            f"when {_quote(k)} then {value} not between {lo} and {hi}"
            for k, (lo, hi) in col.range_by["ranges"].items()
        )
        out.append(
            (
                f"coalesce(case {other} {whens} end, false)",
                f"{col.name} is outside its range for that {col.range_by['column']}",
            )
        )
    if col.type.upper() == "TIMESTAMP":
        days = col.max_days_after_load
        days = r["max_days_after_load"] if days is None else days
        latest = load_time + timedelta(days=days)
        out.append(
            (
                f"({value} < timestamp {_quote(r['min_timestamp'])} or {value} > {_literal(latest)})",
                f"{col.name} is implausible (before {r['min_timestamp']} or more than "
                f"{days:g} day(s) after the load)",
            )
        )
    return out


def typed_query(
    spec: TableSpec,
    expr: dict[str, str],
    extra_keys_expr: str | None,
    from_sql: str,
    passthrough: dict[str, str],
    unreadable_when: str | None = None,
    extra_checks: Sequence[tuple[str, str]] = (),
    load_time: datetime | None = None,
) -> str:
    """SQL query turning source expressions into typed contract columns + a reason.

    ``expr`` maps each contract column to a SQL expression over ``from_sql`` giving its
    value as text (absent when the source lacks the column); ``passthrough`` maps names
    to expressions over ``from_sql`` to keep (e.g. the file and the raw record). The result has
    those, every contract column typed, ``_reason`` (null for a good row; else every
    problem: a required field missing, a value that does not cast to its type, a value
    that breaks a contract rule: allowed values, minimum, format, range, plausible time),
    ``_warning`` (rules whose column loads anyway, ``on_invalid`` = warn / false) and
    ``_extra`` (``extra_keys_expr``: the JSON of fields the contract does not name).
    ``unreadable_when`` is a condition under which the record could not be read at all
    (e.g. malformed JSON); it then gets that one reason instead of a list of problems.
    ``extra_checks`` are more (condition over ``from_sql``, message) problems.
    """
    load_time = load_time or utc_now()
    inner: list[str] = [f"{e} as {name}" for name, e in passthrough.items()]
    outer: list[str] = list(passthrough)
    checks: list[tuple[str, str]] = []  # (condition of a problem, its message)
    warns: list[tuple[str, str]] = []  # (condition, message) of a value loaded anyway
    value_of: dict[str, str] = {}  # column -> its typed value in the outer select
    for i, col in enumerate(spec.columns):
        source = expr.get(col.name) or "null"
        text = f"_s{i}"
        kind = col.type.upper()
        if kind == "VARCHAR" and col.name.endswith("_id"):
            source = _blank_is_null(source)
        inner.append(f"{source} as {text}")
        if col.required:
            checks.append((f"{text} is null", f"missing required field {col.name}"))
        value = f'"{col.name}"'
        if kind == "VARCHAR":  # text always "casts" to text
            outer.append(f"{text} as {value}")
            value = text
        elif kind == "BOOLEAN":
            inner.append(f"{_boolean(source)} as {value}")
            bad = f"{text} is not null and {value} is null"
            if col.on_invalid == "false":
                outer.append(f"coalesce({value}, {text} is not null and false) as {value}")
                warns.append((bad, f"{col.name} is not an explicit yes or no: loaded as false"))
            else:
                outer.append(value)
                checks.append((bad, f"{col.name} is not a valid boolean"))
        else:
            inner.append(f"try_cast({source} as {col.type}) as {value}")
            outer.append(value)
            checks.append(
                (
                    f"{text} is not null and {value} is null",
                    f"{col.name} is not a valid {col.type.lower()}",
                )
            )
        value_of[col.name] = value
    for col in spec.columns:
        value = value_of[col.name]
        for cond, message in _value_rules(col, value, load_time, value_of):
            target = warns if col.on_invalid != "quarantine" else checks
            target.append((f"{value} is not null and {cond}", message))
    for k, (cond, message) in enumerate(extra_checks):
        inner.append(f"coalesce({cond}, false) as _x{k}")
        checks.append((f"_x{k}", message))

    def flagged(found: list[tuple[str, str]]) -> str:
        # The message is built only for a row with a problem: most rows pay one cheap test.
        if not found:
            return "null::varchar"
        any_problem = " or ".join(f"({c})" for c, _ in found)
        messages = ", ".join(f"case when {c} then {_quote(m)} end" for c, m in found)
        return f"case when {any_problem} then concat_ws('; ', {messages}) end"

    reason = flagged(checks)
    if unreadable_when:
        inner.append(f"{unreadable_when} as _unreadable")
        reason = (
            f"case when _unreadable then 'malformed record: not a JSON object' else {reason} end"
        )
    return f"""select {", ".join(outer)}, {reason} as _reason, {flagged(warns)} as _warning, _extra
    from (
        select {", ".join(inner)}, {extra_keys_expr or "null"} as _extra
        from {from_sql}
    )"""


def write_quarantine(
    dest: Destination, relation: str, batch_id: str, source_expr: str, table: str
) -> int:
    """Quarantine the rows of ``relation`` (in ``dest.work``) that have a ``_reason``.

    ``relation`` has ``record_no``, ``raw_record`` and ``_reason``; ``source_expr`` is a SQL
    expression over it naming each row's source (a file path, a table URL). A record
    already quarantined from the same source (a re-read CRM row, a re-tried rejected file)
    is not added twice, and earlier quarantine rows are never removed. Returns the number
    of bad rows in ``relation``.
    """
    bad = dest.work.execute(
        f"select count(*) from {relation} where _reason is not null"
    ).fetchone()[0]
    if not bad:
        return 0
    dest.stage(
        "_bad",
        {"source": "VARCHAR", "record_no": "BIGINT", "raw_record": "VARCHAR", "reason": "VARCHAR"},
        f"""select {source_expr} as source, record_no, raw_record, _reason as reason
        from {relation} where _reason is not null""",
    )
    dest.execute(
        f"""insert into {SCHEMA}.quarantine
        select ?, n.source, ?, n.record_no, n.raw_record, n.reason, ? from _bad n
        where not exists (
            select 1 from {SCHEMA}.quarantine q
            where q.source = n.source and q.table_name = ? and q.raw_record = n.raw_record)""",
        [batch_id, table, utc_now(), table],
    )
    return int(bad)


def audit_reasons(
    dest: Destination,
    relation: str,
    batch_id: str,
    source_expr: str,
    table: str,
    column: str = "_reason",
    outcome: str = "quarantined",
) -> None:
    """Count the rows of ``relation`` per source and ``column`` (the reason they were
    quarantined, or a warning they loaded with) into raw.load_audit as ``outcome``."""
    rows = dest.work.execute(
        f"""select {source_expr}, {column}, count(*) from {relation}
        where {column} is not null group by all order by all"""
    ).fetchall()
    now = utc_now()
    audit_many(dest, [(batch_id, s, table, outcome, r, n, now) for s, r, n in rows])


def audit(
    dest: Destination,
    batch_id: str,
    source: str,
    table: str,
    outcome: str,
    rows: int,
    reason: str | None = None,
) -> None:
    audit_many(dest, [(batch_id, source, table, outcome, reason, rows, utc_now())])


def audit_many(dest: Destination, rows: list[Sequence]) -> None:
    """Append (batch_id, source, table, outcome, reason, rows, recorded_at) rows."""
    dest.insert_rows(f"{SCHEMA}.load_audit", list(BOOKKEEPING_TABLES["load_audit"]), rows)


def drift_report(dest: Destination, relation: str, source_expr: str) -> list[tuple[str, str, int]]:
    """(source, field, rows) for each field outside the contract seen in ``relation._extra``."""
    rows = dest.work.execute(
        f"""select source, key, count(*) from (
              select {source_expr} as source, unnest(json_keys(_extra)) as key
              from {relation} where _extra is not null
            ) group by all order by all"""
    ).fetchall()
    return [(s, k, int(n)) for s, k, n in rows]


def record_run(
    dest: Destination,
    batch_id: str,
    kind: str,
    source: str,
    started_at: datetime,
    seconds: float,
    sources_loaded: int,
    rows_loaded: int,
    rows_quarantined: int,
) -> None:
    """Append one row to raw.load_runs (shown by ``python -m ingest status``)."""
    dest.insert_rows(
        f"{SCHEMA}.load_runs",
        list(BOOKKEEPING_TABLES["load_runs"]),
        [
            (
                batch_id,
                kind,
                source,
                started_at,
                round(seconds, 3),
                sources_loaded,
                rows_loaded,
                rows_quarantined,
            )
        ],
    )
    dest.commit()


def finish_run(
    dest: Destination,
    batch_id: str,
    kind: str,
    source: str,
    started: float,
    started_at: datetime,
    sources_loaded: int,
    rows_loaded: int,
    rows_quarantined: int,
) -> float:
    """Close a load: record the run; return its seconds.

    ``started`` is the load's ``time.perf_counter()`` at its start. The load applies the
    erasure suppression list (:func:`ingest.suppression.apply_suppression`) just before.
    """
    seconds = round(time.perf_counter() - started, 2)
    record_run(
        dest,
        batch_id,
        kind,
        source,
        started_at,
        seconds,
        sources_loaded,
        rows_loaded,
        rows_quarantined,
    )
    return seconds


def rejection_message(dest: Destination, batch_id: str, sources: list[str], max_rate: float) -> str:
    reasons = dest.fetchall(
        """select source, reason, rows from raw.load_audit
           where batch_id = ? and outcome = 'quarantined' order by source, rows desc""",
        [batch_id],
    )
    lines = [
        f"{len(sources)} source(s) could not be read or had more than {max_rate:.0%} bad "
        "records, and were not loaded:"
    ]
    unreadable = dict(
        dest.fetchall(
            """select source, reason from raw.load_audit
               where batch_id = ? and outcome = 'rejected' and reason like 'unreadable%'""",
            [batch_id],
        )
    )
    for source in sources:
        lines.append(f"  {source}:")
        if source in unreadable:
            lines.append(f"    {unreadable[source]}")
        lines += [f"    {n} x {reason}" for src, reason, n in reasons if src == source][:5]
    lines.append(
        "Inspect them with: select * from raw.quarantine where batch_id = "
        f"'{batch_id}'; fix the source and re-run, or raise C720_QUARANTINE_MAX_RATE."
    )
    return "\n".join(lines)


__all__ = [
    "HISTORY_COLUMNS",
    "HISTORY_SUFFIX",
    "SCHEMA",
    "audit",
    "audit_many",
    "audit_reasons",
    "drift_report",
    "ensure_bookkeeping_table",
    "ensure_raw_layer",
    "history_table",
    "new_batch_id",
    "open_raw",
    "raw_columns",
    "record_run",
    "rejection_message",
    "typed_query",
    "utc_now",
    "write_quarantine",
    "_literal",
    "_quote",
]
