"""python -m activate: publish the marts for readers, sync scores to the CRM, serve BI."""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

from rich.console import Console

from customer720 import cli

EPILOG = """examples:
  python -m activate publish                         # snapshot the marts to .local/published.duckdb
  python -m activate publish --parquet .local/published_parquet   # and as Parquet files
  python -m activate check-published                 # does the snapshot match its manifest?
  python -m activate sync --as-of 2024-12-30 --dry-run   # show what would change in the CRM
  python -m activate sync --as-of 2024-12-30         # write changed scores onto CRM contacts
  python -m activate grant-bi-reader                 # Postgres warehouse: read-only role bi_reader

The CRM receives scores in its table c720_customer_scores (one row per contact) and an
audit row per sync in c720_sync_audit. Contacts without marketing consent or deleted
receive nothing, and earlier values for them are cleared.

To erase a person (GDPR): python -m privacy erase --help."""


def main(argv: list[str] | None = None) -> int:
    parser, sub = cli.stage_parser(
        "python -m activate",
        "Publish the marts for BI readers, write scores back to the CRM, serve BI from Postgres.",
        EPILOG,
    )
    pub = sub.add_parser(
        "publish", help="atomically replace the published snapshot with the current marts"
    )
    pub.add_argument(
        "--parquet",
        type=Path,
        metavar="DIR",
        help="also export the marts as Parquet to DIR/<publish id>/, DIR/current -> newest",
    )
    check = sub.add_parser(
        "check-published", help="check the published snapshot against its manifest"
    )
    check.add_argument("path", nargs="?", type=Path, help="default: C720_PUBLISHED")
    sync = sub.add_parser("sync", help="diff-based reverse ETL of scores onto CRM contacts")
    sync.add_argument(
        "--as-of", type=date.fromisoformat, required=True, help="the scoring date (YYYY-MM-DD)"
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="print what would change, write nothing"
    )
    sync.add_argument(
        "--show", type=int, default=20, metavar="N", help="dry run: list N changes (default 20)"
    )
    grant = sub.add_parser(
        "grant-bi-reader",
        help="Postgres warehouse: create/update a login role that can SELECT the marts only",
    )
    grant.add_argument("--role", default="bi_reader", help="role name (default: bi_reader)")
    grant.add_argument(
        "--password-stdin", action="store_true", help="read the role's password from stdin"
    )
    args = parser.parse_args(argv)
    cli.setup(args.verbose)
    console = Console()
    if args.command == "publish":
        from activate.publish import publish

        result = publish(parquet_dir=args.parquet)
        console.print(f"published {len(result['tables'])} tables to {result['published']}")
        if result.get("parquet"):
            console.print(f"Parquet: {result['parquet']}")
    elif args.command == "check-published":
        return _check_published(console, args.path)
    elif args.command == "sync":
        return _sync(console, args.as_of, args.dry_run, args.show)
    elif args.command == "grant-bi-reader":
        from activate.bi_reader import grant_bi_reader

        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        try:
            result = grant_bi_reader(args.role, password)
        except ValueError as exc:
            console.print(f"[red]{exc}[/red]")
            return 2
        console.print(
            f"role {result['role']} may SELECT {result['tables']} tables in schema "
            f"{', '.join(result['schemas'])} of database {result['database']}, nothing else"
        )
    return 0


def _check_published(console: Console, path: Path | None) -> int:
    from activate.publish import check_snapshot
    from customer720.settings import get_settings

    path = path or get_settings().published
    if not path.exists():
        console.print(
            f"[red]no published snapshot at {path}[/red]; run: python -m activate publish"
        )
        return 1
    check = check_snapshot(path)
    if check.ok:
        console.print(
            f"{path}: publish {check.publish_id}, {len(check.tables)} tables, all match the manifest"
        )
        return 0
    console.print(f"[red]{path} does not match its manifest:[/red]")
    for problem in check.problems:
        console.print(f"  {problem}", markup=False)
    return 1


def _sync(console: Console, as_of: date, dry_run: bool, show: int) -> int:
    from activate.writeback import PAYLOAD, sync_scores

    result = sync_scores(as_of, dry_run=dry_run)
    if result.skipped_reason:
        console.print(f"nothing synced: {result.skipped_reason}")
        return 0
    verb = "would write" if dry_run else "wrote"
    console.print(
        f"{verb} {result.inserted} new and {result.updated} changed contacts; "
        f"{result.unchanged} unchanged, {result.skipped_no_consent} without consent, "
        f"{result.skipped_deleted} deleted, {result.skipped_unknown_contact} unknown to the CRM, "
        f"{'would clear' if dry_run else 'cleared'} {result.cleared}, {result.failed} failed"
    )
    if dry_run and result.changes:
        # one line a contact: a table of all the fields is unreadable in 80 columns
        console.print(f"first {min(show, len(result.changes))} of {len(result.changes)} changes:")
        for change in result.changes[:show]:
            fields = ", ".join(f"{c}={change[c]}" for c in PAYLOAD if change.get(c) is not None)
            console.print(
                f"  {change['action']} contact {change['contact_id']}: {fields}",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
    for failure in result.failures[:20]:
        console.print(f"  failed: {failure}", markup=False)
    return 1 if result.failed else 0


if __name__ == "__main__":
    sys.exit(main())
