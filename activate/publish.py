"""Publish the marts for readers: a fresh DuckDB file swapped in atomically.

A DuckDB file cannot be read while another process writes it, so BI tools never read
the warehouse itself. After a gated run we copy the marts (only the marts: raw and
staging hold personal data) into ``published.duckdb.tmp`` and ``os.replace`` it over
``published.duckdb``. A reader that already opened the old file keeps reading the old
version; the next open sees the new one; nobody sees a mix.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from customer720.settings import Settings, get_settings
from customer720.warehouse import duckdb_connection

log = logging.getLogger(__name__)

PUBLISHED_SCHEMAS = ("marts",)


def publish(settings: Settings | None = None) -> dict:
    """Write the published snapshot; return its path and table row counts."""
    settings = settings or get_settings()
    if settings.warehouse_is_postgres:
        # Postgres serves readers itself (MVCC): nothing to copy.
        return {"published": settings.warehouse, "tables": {}}
    target = settings.published
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    counts: dict[str, int] = {}
    with duckdb_connection(settings) as con:
        con.execute(f"attach '{tmp}' as pub")
        for schema in PUBLISHED_SCHEMAS:
            con.execute(f"create schema if not exists pub.{schema}")
            tables = con.execute(
                """select table_name from information_schema.tables
                   where table_catalog = current_database() and table_schema = ?
                   order by table_name""",
                [schema],
            ).fetchall()
            for (table,) in tables:
                con.execute(
                    f'create table pub.{schema}."{table}" as select * from {schema}."{table}"'
                )
                counts[f"{schema}.{table}"] = con.execute(
                    f'select count(*) from pub.{schema}."{table}"'
                ).fetchone()[0]
        con.execute("detach pub")
    _fsync(tmp)
    os.replace(tmp, target)
    log.info("published %d tables to %s", len(counts), target)
    return {"published": str(target), "tables": counts}


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
