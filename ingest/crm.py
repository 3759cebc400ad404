"""Extract CRM tables into ``raw.crm_<table>``: incremental on ``updated_at``, merged on the key.

The source is any SQLAlchemy database URL (SQLite by default, Postgres tested) or a
folder of ``<table>.csv`` / ``<table>.parquet`` exports (the bring-your-own-data path).
Per table a watermark (the largest ``updated_at`` loaded) is kept in ``raw.watermarks``;
each run reads rows with ``updated_at >=`` it and merges them on the primary key. A row
identical to the stored one is not rewritten, so re-running changes nothing. Soft deletes
arrive as ``is_deleted`` like any other change; rows hard-deleted in the source are not
detected (real CRMs soft-delete).

Why not dlt's sql_database source: measured here on a 200k-row SQLite table it took
8.7 s against 1.3 s for this path, and it adds ``raw_staging`` and ``_dlt_*`` tables to
our raw layer; we need per-record quarantine with reasons either way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from customer720.settings import Settings, get_settings
from customer720.warehouse import duckdb_connection, sqlalchemy_url
from ingest import raw_store
from ingest.contract import TableSpec, crm_tables
from ingest.errors import IngestError

log = logging.getLogger(__name__)

FETCH_ROWS = 50_000


@dataclass
class CrmTableResult:
    table: str
    rows_in: int = 0
    rows_changed: int = 0
    rows_unchanged: int = 0
    rows_quarantined: int = 0
    absent: bool = False


@dataclass
class CrmExtractSummary:
    batch_id: str
    source: str
    tables: list[CrmTableResult] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)

    @property
    def rows_changed(self) -> int:
        return sum(t.rows_changed for t in self.tables)

    def as_dict(self) -> dict:
        return {
            "batch_id": self.batch_id,
            "source": self.source,
            "rows_changed": self.rows_changed,
            "tables": {t.table: t.__dict__ for t in self.tables},
        }


def _watermark_text(con: duckdb.DuckDBPyConnection, source: str, table: str) -> str | None:
    row = con.execute(
        "select watermark from raw.watermarks where source = ? and table_name = ?", [source, table]
    ).fetchone()
    # ISO text without a 'T' compares correctly both as SQLite text and as a Postgres timestamp.
    return row[0].isoformat(sep=" ") if row and row[0] else None


def _arrow_from_database(engine: sa.Engine, spec: TableSpec, since: str | None) -> pa.Table | None:
    with engine.connect() as con:
        if not sa.inspect(con).has_table(spec.name):
            return None
        table = sa.Table(spec.name, sa.MetaData(), autoload_with=con)
        query = sa.select(table)
        if since is not None and "updated_at" in table.c:
            query = query.where(table.c.updated_at >= sa.literal(since, sa.String()))
        result = con.execution_options(stream_results=True).execute(query)
        names = list(result.keys())
        columns: list[list[str | None]] = [[] for _ in names]
        while rows := result.fetchmany(FETCH_ROWS):
            for row in rows:
                for i, value in enumerate(row):
                    # Text in, typed by SQL: a CRM column holding a stray value of the
                    # wrong type must become one quarantined row, not a failed batch.
                    columns[i].append(None if value is None else str(value))
    return pa.table({n: pa.array(c, pa.string()) for n, c in zip(names, columns, strict=True)})


def _relation_from_files(
    con: duckdb.DuckDBPyConnection, folder: Path, spec: TableSpec
) -> str | None:
    for suffix, reader in (
        (".parquet", "read_parquet({})"),
        (".csv", "read_csv({}, all_varchar = true)"),
    ):
        path = folder / f"{spec.name}{suffix}"
        if path.exists():
            con.execute(
                "create or replace temp view _incoming as select * from "
                + reader.format(raw_store._quote(str(path)))
            )
            return str(path)
    return None


def _validate(con: duckdb.DuckDBPyConnection, spec: TableSpec, since: str | None) -> CrmTableResult:
    """Type and check ``_incoming`` into temp table ``_typed`` (``_reason`` set on bad rows)."""
    result = CrmTableResult(spec.name)
    present = {r[0] for r in con.execute("select column_name from (describe _incoming)").fetchall()}
    expr = {c: f'cast(i."{c}" as varchar)' for c in spec.column_names if c in present}
    extra_cols = sorted(present - set(spec.column_names))
    extra = (
        "to_json({" + ", ".join(f'{raw_store._quote(c)}: i."{c}"' for c in extra_cols) + "})"
        if extra_cols
        else None
    )
    record = (
        "to_json({" + ", ".join(f'{raw_store._quote(c)}: i."{c}"' for c in sorted(present)) + "})"
    )
    where = ""
    if since is not None and "updated_at" in present:
        # File exports carry all rows every time; only rows at or past the watermark count.
        where = f"where try_cast(i.updated_at as timestamp) >= timestamp {raw_store._quote(since)}"
    pk = spec.primary_key
    con.execute(f"""
        create or replace temp table _typed as
        select row_number() over () as record_no, {record} as raw_record,
            {raw_store.typed_select(spec, expr, extra)}
        from _incoming i {where}""")
    # A key seen twice in one batch: keep its latest version, quarantine the others.
    con.execute(f"""
        update _typed set _reason = 'duplicate {pk} in this batch (the latest version was kept)'
        where _reason is null and record_no in (
            select record_no from (
                select record_no, row_number() over (
                    partition by "{pk}" order by updated_at desc nulls last, record_no desc) as n
                from _typed where _reason is null)
            where n > 1)""")
    result.rows_in, result.rows_quarantined = con.execute(
        "select count(*), count(*) filter (where _reason is not null) from _typed"
    ).fetchone()
    return result


def _apply(
    con: duckdb.DuckDBPyConnection,
    spec: TableSpec,
    result: CrmTableResult,
    batch_id: str,
    source: str,
    watermark_key: str,
) -> None:
    """Quarantine the bad rows of ``_typed`` and merge its new or changed rows."""
    raw_store.write_quarantine(con, "_typed", batch_id, source, spec.raw_table)
    raw_store.audit_reasons(con, "_typed", batch_id, source, spec.raw_table)
    pk, cols = spec.primary_key, spec.column_names
    differs = " or ".join(f't."{c}" is distinct from r."{c}"' for c in cols)
    con.execute(f"""
        create or replace temp table _changed as
        select t.* from _typed t left join raw.{spec.raw_table} r using ("{pk}")
        where t._reason is null and (r."{pk}" is null or {differs})""")
    result.rows_changed = con.execute("select count(*) from _changed").fetchone()[0]
    result.rows_unchanged = result.rows_in - result.rows_quarantined - result.rows_changed
    col_list = ", ".join(f'"{c}"' for c in cols)
    con.execute(f'delete from raw.{spec.raw_table} where "{pk}" in (select "{pk}" from _changed)')
    con.execute(
        f"""insert into raw.{spec.raw_table} ({col_list}, _batch_id, _loaded_at, _source, _extra)
        select {col_list}, ?, ?, ?, _extra from _changed""",
        [batch_id, raw_store.utc_now(), source],
    )
    con.execute(
        """insert or replace into raw.watermarks
        select ?, ?, greatest(max(updated_at), (select watermark from raw.watermarks
                                                where source = ? and table_name = ?)), ?
        from _typed where _reason is null having max(updated_at) is not null""",
        [watermark_key, spec.name, watermark_key, spec.name, raw_store.utc_now()],
    )
    raw_store.audit(con, batch_id, source, spec.raw_table, "loaded", result.rows_changed)


def extract_crm(
    source: str | Path | None = None,
    settings: Settings | None = None,
    max_quarantine_rate: float | None = None,
) -> CrmExtractSummary:
    """Extract every contract table from a CRM database URL or an export folder."""
    settings = settings or get_settings()
    source = str(source or settings.crm_url)
    max_rate = settings.quarantine_max_rate if max_quarantine_rate is None else max_quarantine_rate
    folder = Path(source) if "://" not in source else None
    if folder is not None and not folder.is_dir():
        raise IngestError(
            f"CRM source {source!r} is neither a database URL nor a folder of exports"
        )
    engine = None if folder is not None else sa.create_engine(sqlalchemy_url(source))
    summary = CrmExtractSummary(batch_id=raw_store.new_batch_id("crm"), source="")
    # Never store a password in the warehouse: the label keys watermarks and audit rows.
    label = (
        folder.resolve().as_posix()
        if folder is not None
        else sa.make_url(sqlalchemy_url(source)).render_as_string(hide_password=True)
    )
    summary.source = label
    try:
        with duckdb_connection(settings) as con:
            raw_store.ensure_raw_layer(con)
            for spec in crm_tables():
                since = _watermark_text(con, label, spec.name)
                con.execute("begin")
                if folder is not None:
                    table_source = _relation_from_files(con, folder, spec)
                else:
                    arrow = _arrow_from_database(engine, spec, since)
                    table_source = None if arrow is None else f"{label}#{spec.name}"
                    if arrow is not None:
                        con.register("_arrow", arrow)
                        con.execute("create or replace temp view _incoming as select * from _arrow")
                if table_source is None:
                    con.execute("commit")
                    if spec.required_table:
                        raise IngestError(
                            f"the CRM source {source!r} has no '{spec.name}' table; it is required "
                            "(see ingest/contract.json)"
                        )
                    summary.tables.append(CrmTableResult(spec.name, absent=True))
                    continue
                result = _validate(con, spec, since)
                if result.rows_in and result.rows_quarantined / result.rows_in > max_rate:
                    # Load nothing from this table; keep its bad rows for inspection.
                    raw_store.write_quarantine(
                        con, "_typed", summary.batch_id, table_source, spec.raw_table
                    )
                    raw_store.audit_reasons(
                        con, "_typed", summary.batch_id, table_source, spec.raw_table
                    )
                    raw_store.audit(
                        con,
                        summary.batch_id,
                        table_source,
                        spec.raw_table,
                        "rejected",
                        result.rows_in,
                    )
                    summary.rejected.append(table_source)
                else:
                    _apply(con, spec, result, summary.batch_id, table_source, label)
                con.execute("commit")
                summary.tables.append(result)
                log.info(
                    "crm.%s: %d in, %d changed, %d quarantined",
                    spec.name,
                    result.rows_in,
                    result.rows_changed,
                    result.rows_quarantined,
                )
    except sa.exc.OperationalError as exc:
        raise IngestError(f"cannot read the CRM database {source!r}: {exc.orig}") from exc
    finally:
        if engine is not None:
            engine.dispose()
    if summary.rejected:
        raise IngestError(
            raw_store.rejection_message(settings, summary.batch_id, summary.rejected, max_rate)
        )
    return summary
