"""python -m privacy: erase a person from every layer and keep them out of later loads."""

from __future__ import annotations

import argparse
import sys

from rich.console import Console
from rich.table import Table

from customer720 import cli

EPILOG = """examples:
  python -m privacy erase --email ana@example.com --dry-run   # what erasing this person removes
  python -m privacy erase --contact-id 1234         # erase a person everywhere, keep them out

Erasure removes the person (every id the identity graph joined to them) from every
warehouse table, the published snapshot, report files and the CRM writeback table, adds
hashes of their ids to privacy.suppression_list so ingest keeps them out, and logs rows
removed per table in privacy.erasure_audit (a hash of the request, no personal data)."""


def main(argv: list[str] | None = None) -> int:
    parser, sub = cli.stage_parser(
        "python -m privacy",
        "Erase a person from every layer and keep them out of later loads.",
        EPILOG,
    )
    erase = sub.add_parser(
        "erase", help="remove one person from every layer and keep them out of later loads"
    )
    who = erase.add_mutually_exclusive_group(required=True)
    who.add_argument("--email", help="the person's email (any CRM record with it)")
    who.add_argument("--contact-id", help="a CRM contact id of the person (as the CRM shows it)")
    erase.add_argument(
        "--dry-run", action="store_true", help="show what would be removed, change nothing"
    )
    erase.add_argument(
        "--no-compact",
        action="store_true",
        help="DuckDB: skip rewriting the warehouse file (deleted bytes may stay in free blocks)",
    )
    args = parser.parse_args(argv)
    cli.setup(args.verbose)
    console = Console()
    if args.command == "erase":
        return _erase(console, args)
    return 0


def _erase(console: Console, args: argparse.Namespace) -> int:
    from privacy.erasure import ErasureError, erase

    try:
        result = erase(
            email=args.email,
            contact_id=args.contact_id,
            dry_run=args.dry_run,
            compact=not args.no_compact,
        )
    except ErasureError as exc:
        console.print(f"[red]erase failed:[/red] {exc}")
        return 1
    ids = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in result.identity.items())
    console.print(f"{'dry run: ' if result.dry_run else ''}the person has {ids}")
    table = Table(title="rows that would be removed" if result.dry_run else "rows removed")
    table.add_column("where")
    table.add_column("rows", justify="right")
    for where, n in sorted(result.removed.items()):
        table.add_row(where, f"{n:,}")
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")
    if result.dry_run:
        return 0
    if result.remaining:
        console.print("[red]traces remain:[/red]")
        for trace in result.remaining:
            console.print(f"  {trace}", markup=False)
        return 1
    console.print(
        f"erasure {result.erasure_id} done (request hash {result.subject_hash[:16]}…); "
        "no trace left in the warehouse, the published snapshot or the CRM writeback"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
