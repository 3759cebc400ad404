"""python bench/backfill_twice.py: a backfill replayed twice must give the same data.

Runs ``python -m orchestrate backfill --start S --end E`` (what
``make backfill`` runs) twice on the warehouse of the current settings (``C720_LOCAL_DIR``;
build one with ``make run`` first) and compares, after each pass, a fingerprint of every
table a user reads or we load: the published snapshot's marts, the raw data tables, and
the CRM writeback table. Prints per table: rows and whether the content is the same.

Run-time stamps are left out of the fingerprint (``RUN_TIME_COLUMNS``: ``scored_at``,
``synced_at``, ``loaded_at``, ``load_batch_id``, …): a re-run scores and syncs again at a new time, and that
is all it may change. Bookkeeping tables that log every run (``raw.load_runs``,
``raw.load_audit``, the CRM sync audit) grow by design and are not compared.

    python bench/backfill_twice.py --start 2024-12-24 --end 2024-12-30
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import sqlalchemy as sa
from rich.console import Console
from rich.table import Table

from activate.publish import fingerprint_sql
from activate.writeback import SCORES_TABLE
from customer720 import cli
from customer720.settings import Settings, get_settings

# Stamps of when and in which load a row was written (raw's ``_batch_id``, a session's
# ``last_loaded_at``), never its content.
RUN_TIME_COLUMNS = {
    "scored_at",
    "synced_at",
    "loaded_at",
    "load_batch_id",
    "_loaded_at",
    "_batch_id",
    "last_loaded_at",
    "computed_at",  # ml.model_monitoring / marts.fct_model_monitoring: when a run wrote the row
}
RAW_BOOKKEEPING = {"load_runs", "load_audit", "load_manifest", "watermarks"}


def _duckdb_fingerprints(con: duckdb.DuckDBPyConnection, schemas: dict[str, set[str]]) -> dict:
    out = {}
    for schema, skip in schemas.items():
        tables = con.execute(
            "select table_name from information_schema.tables where table_schema = ? order by 1",
            [schema],
        ).fetchall()
        for (table,) in tables:
            if table in skip:
                continue
            columns = [
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns "
                    "where table_schema = ? and table_name = ? order by ordinal_position",
                    [schema, table],
                ).fetchall()
                if c not in RUN_TIME_COLUMNS
            ]
            rows, digest = con.execute(fingerprint_sql(f'{schema}."{table}"', columns)).fetchone()
            out[f"{schema}.{table}"] = (rows, digest or "0")
    return out


def fingerprints(settings: Settings) -> dict[str, tuple[int, str]]:
    """Rows and a content hash per table (see the module doc for what is compared)."""
    with duckdb.connect(str(settings.published), read_only=True) as con:
        out = {f"published {k}": v for k, v in _duckdb_fingerprints(con, {"marts": set()}).items()}
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        out.update(_duckdb_fingerprints(con, {"raw": RAW_BOOKKEEPING}))
    engine = sa.create_engine(settings.crm_url)
    try:
        with engine.connect() as con:
            if sa.inspect(con).has_table(SCORES_TABLE):
                columns = [
                    c["name"]
                    for c in sa.inspect(con).get_columns(SCORES_TABLE)
                    if c["name"] not in RUN_TIME_COLUMNS
                ]
                rows = con.execute(
                    sa.text(f"select {', '.join(columns)} from {SCORES_TABLE}")
                ).fetchall()
                digest = hashlib.sha256("\n".join(sorted(map(repr, rows))).encode())
                out[f"crm {SCORES_TABLE}"] = (len(rows), digest.hexdigest()[:16])
    finally:
        engine.dispose()
    return out


def backfill(start: date, end: date, log_file: Path) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "orchestrate", "backfill"]
    cmd += ["--start", start.isoformat(), "--end", end.isoformat()]
    started = time.monotonic()
    with log_file.open("w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    return code, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python bench/backfill_twice.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--start", type=date.fromisoformat, required=True)
    parser.add_argument("--end", type=date.fromisoformat, required=True)
    parser.add_argument("--out", type=Path, help="write the result as JSON here")
    args = parser.parse_args(argv)
    cli.setup()
    settings = get_settings()
    console = Console()
    logs = settings.local_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    passes = []
    for n in (1, 2):
        log_file = logs / f"backfill_twice_{n}.log"
        console.print(f"pass {n}: backfill {args.start} .. {args.end} (log {log_file})")
        code, seconds = backfill(args.start, args.end, log_file)
        summary = [ln for ln in log_file.read_text().splitlines() if "dates succeeded" in ln]
        console.print(f"  exit {code} in {seconds:.0f} s: {summary[-1] if summary else '?'}")
        if code != 0:
            console.print(f"[red]pass {n} failed[/red]; see {log_file}")
            return 1
        passes.append(
            {
                "seconds": round(seconds, 1),
                "summary": summary[-1:],
                "tables": fingerprints(settings),
            }
        )
    first, second = passes[0]["tables"], passes[1]["tables"]
    table = Table("table", "rows after pass 1", "rows after pass 2", "same content")
    changed = []
    for name in sorted(set(first) | set(second)):
        a, b = first.get(name), second.get(name)
        same = a == b
        if not same:
            changed.append(name)
        table.add_row(
            name,
            str(a[0] if a else "-"),
            str(b[0] if b else "-"),
            "yes" if same else "[red]NO[/red]",
        )
    console.print(table)
    verdict = "nothing changed" if not changed else f"{len(changed)} table(s) changed: {changed}"
    console.print(f"second backfill: {verdict}")
    if args.out:
        args.out.write_text(
            json.dumps(
                {
                    "start": str(args.start),
                    "end": str(args.end),
                    "passes": passes,
                    "changed": changed,
                },
                indent=2,
            )
            + "\n"
        )
    return 0 if not changed else 1


if __name__ == "__main__":
    sys.exit(main())
