"""python -m ingest: load CRM tables and web/app event files into the warehouse raw layer."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from customer720 import cli
from customer720.settings import get_settings

EPILOG = """examples:
  python -m ingest all                       # CRM + events from the settings (C720_CRM_URL, C720_EVENTS_DIR)
  python -m ingest crm --source exports/     # a folder of <table>.csv / <table>.parquet files
  python -m ingest events --dir /data/events # NDJSON(.gz) or Parquet files, one folder per day
  python -m ingest status                    # what is loaded, quarantined and why

The warehouse is C720_WAREHOUSE: a DuckDB file (default .local/warehouse.duckdb) or a
postgresql:// URL; either way the data lands in schema raw (raw.crm_<table>,
raw.web_events) with the bookkeeping tables load_manifest, load_audit, quarantine and
watermarks beside it.

Re-running is safe: known files are skipped and unchanged CRM rows are not rewritten.
Bad records go to raw.quarantine with a reason; a source with more than
C720_QUARANTINE_MAX_RATE (default 5%) bad records is not loaded and the command fails."""


def main(argv: list[str] | None = None) -> int:
    parser, sub = cli.stage_parser(
        "python -m ingest",
        "Extract CRM data and web/app events into the raw layer of the warehouse.",
        EPILOG,
    )
    crm = sub.add_parser("crm", help="extract the CRM tables (incremental on updated_at)")
    crm.add_argument("--source", help="SQLAlchemy URL or export folder (default: C720_CRM_URL)")
    events = sub.add_parser(
        "events", help="load new event files, NDJSON(.gz) or Parquet (tracked in raw.load_manifest)"
    )
    events.add_argument("--dir", type=Path, help="event folder (default: C720_EVENTS_DIR)")
    both = sub.add_parser("all", help="crm, then events")
    both.add_argument("--source", help="SQLAlchemy URL or export folder (default: C720_CRM_URL)")
    both.add_argument("--dir", type=Path, help="event folder (default: C720_EVENTS_DIR)")
    sub.add_parser(
        "status",
        help="per source table: rows in raw, files/tables loaded, quarantined records and why",
    )
    args = parser.parse_args(argv)
    cli.setup(args.verbose)

    from ingest import IngestError, extract_crm, load_events

    console = Console()
    try:
        if args.command in ("crm", "all"):
            summary = extract_crm(args.source)
            console.print(
                f"CRM: {summary.rows_changed:,} new or changed rows in {summary.seconds:.1f} s "
                f"(batch {summary.batch_id})"
            )
            for warning in summary.warnings:
                console.print(f"[yellow]CRM: {warning}")
        if args.command in ("events", "all"):
            ev = load_events(args.dir)
            console.print(
                f"events: {ev.files_loaded:,} new files, {ev.rows_loaded:,} rows loaded, "
                f"{ev.rows_quarantined:,} quarantined in {ev.seconds:.1f} s "
                f"({ev.files_skipped:,} files already loaded)"
            )
            if ev.new_fields:
                console.print(
                    f"[yellow]fields outside the contract (kept in _extra): {ev.new_fields}"
                )
            if ev.files_empty:
                console.print(f"[yellow]empty deliveries (no records): {ev.files_empty}")
            if ev.files_changed:
                console.print(f"[yellow]changed after loading (not reloaded): {ev.files_changed}")
        if args.command == "status":
            _status(console)
    except IngestError as exc:
        console.print(f"[red]ingest failed:[/red] {exc}")
        return 1
    return 0


def _status(console: Console) -> None:
    """Per source: rows in raw, what was loaded last, what was quarantined and why."""
    from customer720 import warehouse
    from ingest.contract import all_raw_tables

    settings = get_settings()
    shown = warehouse.display_url(settings.warehouse)
    if not warehouse.table_exists("raw", "load_audit", settings):
        console.print(f"nothing loaded yet into {shown}; run: python -m ingest all")
        return
    counts = " union all ".join(
        f"select '{spec.raw_table}' as table_name, count(*) as rows_in_raw, "
        f"max(_loaded_at) as last_loaded_at from raw.{spec.raw_table}"
        for spec in all_raw_tables()
    )
    df = warehouse.query_df(
        f"""with counts as ({counts}),
        quarantined as (
            select table_name, count(*) as quarantined from raw.quarantine group by 1),
        outcomes as (
            select table_name,
                   count(distinct case when outcome = 'loaded' then source end) as sources_loaded,
                   count(distinct case when outcome = 'rejected' then source end) as rejected,
                   count(distinct case when outcome = 'changed_after_load' then source end)
                       as changed_after_load
            from raw.load_audit group by 1)
        select c.table_name, c.rows_in_raw, coalesce(q.quarantined, 0) as quarantined,
               coalesce(o.sources_loaded, 0) as sources_loaded,
               coalesce(o.rejected, 0) as rejected,
               coalesce(o.changed_after_load, 0) as changed_after_load, c.last_loaded_at
        from counts c left join quarantined q using (table_name)
        left join outcomes o using (table_name)
        order by c.table_name""",
        settings,
    )
    table = Table(
        title=f"raw layer of {shown}",
        caption="sources: event files or CRM tables loaded; rejected: too many bad records, "
        "not loaded; changed: files changed after loading, not reloaded; last load: UTC",
    )
    any_rejected = bool(df["rejected"].sum())
    any_changed = bool(df["changed_after_load"].sum())
    columns = [("table", "left"), ("rows", "right"), ("quarantined", "right")]
    columns += [("sources", "right")]
    columns += [("rejected", "right")] if any_rejected else []
    columns += [("changed", "right")] if any_changed else []
    columns += [("last load", "left")]
    for col, justify in columns:
        table.add_column(
            col, justify=justify, no_wrap=True, min_width=11 if col == "last load" else None
        )
    for row in df.itertuples(index=False):
        last = (
            str(row.last_loaded_at)[5:16] if str(row.last_loaded_at) not in ("None", "NaT") else "-"
        )
        cells = [row.table_name, f"{row.rows_in_raw:,}", f"{row.quarantined:,}"]
        cells += [f"{row.sources_loaded:,}"]
        cells += [f"{row.rejected:,}"] if any_rejected else []
        cells += [f"{row.changed_after_load:,}"] if any_changed else []
        table.add_row(*cells, last)
    console.print(table)
    _quarantine(console, settings)
    _recent_loads(console, settings)
    drift = warehouse.query_df(
        """select reason as field, sum(rows) as n from raw.load_audit
           where outcome = 'new_field' group by 1 order by 2 desc""",
        settings,
    )
    if len(drift):
        fields = ", ".join(f"{r.field} ({int(r.n):,} rows)" for r in drift.itertuples(index=False))
        console.print(f"[yellow]fields outside the contract, kept in _extra:[/yellow] {fields}")


def _quarantine(console: Console, settings) -> None:
    """Quarantined records per table (CRM tables and events) with the top reasons."""
    from customer720 import warehouse
    from ingest.quarantine import quarantine_counts

    def fetch(sql: str, params) -> list:
        return list(warehouse.query_df(sql, settings).itertuples(index=False, name=None))

    counts = quarantine_counts(fetch, top=3)
    if not counts["total"]:
        return
    why = Table(title=f"quarantined records: {counts['total']:,} (top reasons per table)")
    for col, justify in (("table", "left"), ("records", "right"), ("top reasons", "left")):
        why.add_column(col, justify=justify)
    for table, entry in counts["tables"].items():
        reasons = "\n".join(f"{n:,} x {reason}" for reason, n in entry["reasons"])
        why.add_row(table, f"{entry['rows']:,}", reasons)
    console.print(why)
    console.print(f"Inspect them with: {counts['query']} (add where batch_id = '…' for one load)")


def _recent_loads(console: Console, settings) -> None:
    """The last loads with their duration: an incremental load costs its new data only."""
    from customer720 import warehouse

    if not warehouse.table_exists("raw", "load_runs", settings):
        return
    runs = warehouse.query_df(
        """select kind, started_at, seconds, sources_loaded, rows_loaded, rows_quarantined
           from raw.load_runs order by started_at desc limit 6""",
        settings,
    )
    if not len(runs):
        return
    table = Table(
        title="recent loads",
        caption="sources: event files loaded or CRM tables read; rows: new or changed rows",
    )
    for col, justify in (
        ("load", "left"),
        ("started (UTC)", "left"),
        ("seconds", "right"),
        ("sources", "right"),
        ("rows", "right"),
        ("quarantined", "right"),
    ):
        table.add_column(col, justify=justify, no_wrap=True)
    for row in runs.itertuples(index=False):
        table.add_row(
            row.kind,
            str(row.started_at)[:19],
            f"{row.seconds:.1f}",
            f"{row.sources_loaded:,}",
            f"{row.rows_loaded:,}",
            f"{row.rows_quarantined:,}",
        )
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
