"""python -m activate: publish the marts for readers and sync scores to the CRM."""

from __future__ import annotations

import argparse
import sys
from datetime import date

from rich.console import Console

from customer720 import cli

EPILOG = """examples:
  python -m activate publish                         # snapshot the marts to .local/published.duckdb
  python -m activate sync --as-of 2024-12-30 --dry-run   # show what would change in the CRM
  python -m activate sync --as-of 2024-12-30         # write changed scores onto CRM contacts

The CRM receives scores in its table c720_customer_scores (one row per contact) and an
audit row per sync in c720_sync_audit. Contacts without marketing consent or deleted
receive nothing, and earlier values for them are cleared."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m activate",
        description="Publish the marts for BI readers and write scores back to the CRM.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "publish", help="atomically replace the published snapshot with the current marts"
    )
    sync = sub.add_parser("sync", help="diff-based reverse ETL of scores onto CRM contacts")
    sync.add_argument(
        "--as-of",
        type=date.fromisoformat,
        required=True,
        help="the scoring date to sync (YYYY-MM-DD)",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="print what would change, write nothing"
    )
    args = parser.parse_args(argv)
    cli.setup(args.verbose)
    console = Console()
    if args.command == "publish":
        from activate.publish import publish

        result = publish()
        console.print(f"published {len(result['tables'])} tables to {result['published']}")
    elif args.command == "sync":
        from activate.writeback import sync_scores

        result = sync_scores(args.as_of, dry_run=args.dry_run)
        verb = "would write" if args.dry_run else "wrote"
        console.print(
            f"{verb} {result.inserted} new and {result.updated} changed contacts; "
            f"{result.unchanged} unchanged, {result.skipped_no_consent} without consent, "
            f"{result.skipped_deleted} deleted, {result.cleared} cleared, {result.failed} failed"
        )
        return 1 if result.failed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
