"""python -m ingest: load CRM tables and web/app event files into the warehouse raw layer."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from customer720 import cli
from customer720.settings import get_settings

EPILOG = """examples:
  python -m ingest all                       # CRM + events from the settings (C720_CRM_URL, C720_EVENTS_DIR)
  python -m ingest crm --source exports/     # a folder of <table>.csv / <table>.parquet files
  python -m ingest events --dir /data/events # NDJSON(.gz) files, one folder per day
  python -m ingest status                    # what is loaded, quarantined and why

Re-running is safe: known files are skipped and unchanged CRM rows are not rewritten.
Bad records go to raw.quarantine with a reason; a source with more than
C720_QUARANTINE_MAX_RATE (default 5%) bad records is not loaded and the command fails."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ingest",
        description="Extract CRM data and web/app events into the raw layer of the warehouse.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    crm = sub.add_parser("crm", help="extract the CRM tables (incremental on updated_at)")
    crm.add_argument("--source", help="SQLAlchemy URL or export folder (default: C720_CRM_URL)")
    events = sub.add_parser("events", help="load new event files (tracked in raw.load_manifest)")
    events.add_argument("--dir", type=Path, help="event folder (default: C720_EVENTS_DIR)")
    both = sub.add_parser("all", help="crm, then events")
    both.add_argument("--source", help="SQLAlchemy URL or export folder (default: C720_CRM_URL)")
    both.add_argument("--dir", type=Path, help="event folder (default: C720_EVENTS_DIR)")
    sub.add_parser("status", help="show the load manifest, audit and quarantine counts")
    args = parser.parse_args(argv)
    cli.setup(args.verbose)

    from ingest import IngestError, extract_crm, load_events

    console = Console()
    try:
        if args.command in ("crm", "all"):
            summary = extract_crm(args.source)
            console.print(
                f"CRM: {summary.rows_changed} new or changed rows (batch {summary.batch_id})"
            )
        if args.command in ("events", "all"):
            ev = load_events(args.dir)
            console.print(
                f"events: {ev.files_loaded} files, {ev.rows_loaded} rows loaded, "
                f"{ev.rows_quarantined} quarantined, {ev.files_skipped} files already loaded"
            )
            if ev.new_fields:
                console.print(
                    f"[yellow]fields outside the contract (kept in _extra): {ev.new_fields}"
                )
            if ev.files_changed:
                console.print(f"[yellow]changed after loading (not reloaded): {ev.files_changed}")
        if args.command == "status":
            _status(console)
    except IngestError as exc:
        console.print(f"[red]ingest failed:[/red] {exc}")
        return 1
    return 0


def _status(console: Console) -> None:
    from customer720 import warehouse

    settings = get_settings()
    if not warehouse.table_exists("raw", "load_audit", settings):
        console.print(f"nothing loaded yet into {settings.warehouse}")
        return
    df = warehouse.query_df(
        """select table_name, outcome, coalesce(reason, '') as reason, cast(sum(rows) as bigint) as rows
           from raw.load_audit group by all order by table_name, outcome, rows desc""",
        settings,
    )
    table = Table(title=f"raw layer of {settings.warehouse}")
    for col in df.columns:
        table.add_column(col)
    for row in df.itertuples(index=False):
        table.add_row(*(str(v) for v in row))
    console.print(table)


if __name__ == "__main__":
    sys.exit(main())
