"""Publish the marts for readers: a fresh DuckDB file swapped in atomically.

A DuckDB file cannot be read while another process writes it, so BI tools never read
the warehouse itself. After a gated run we copy the marts (only the marts: raw and
staging hold personal data) into ``published.duckdb.tmp`` and ``os.replace`` it over
``published.duckdb``. A reader that already opened the old file keeps reading the old
version; the next open sees the new one; nobody sees a mix.

Each snapshot carries its own manifest, ``meta.publish_manifest``: the publish id and,
per table, the row count and a fingerprint of every row. ``check_snapshot`` compares a
snapshot with its manifest, so a reader (or a test) can prove it saw one whole version.

The snapshot never goes back in time: each publish records the date it was made for
(``as_of_date`` in the manifest), and a run for an older date than the one published —
a re-run of a past date after a later one — does not publish (nor write back to the
CRM): readers keep the newest day, whose scores and 720° view share one as-of date. The
re-run still rebuilds the warehouse's history tables for its date.

On a Spark warehouse the marts are first copied from Spark's tables (their Parquet files)
into a scratch DuckDB file; the snapshot is then made exactly as for DuckDB.

Optionally the same tables are exported as Parquet into ``<dir>/<publish id>/`` and the
symlink ``<dir>/current`` is swapped to it atomically (the previous version is kept for
readers still on it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb

from customer720.settings import Settings, get_settings
from customer720.warehouse import duckdb_connection

log = logging.getLogger(__name__)

PUBLISHED_SCHEMAS = ("marts",)
MANIFEST_SCHEMA = "meta"
MANIFEST_TABLE = "publish_manifest"
PARQUET_VERSIONS_KEPT = 2


def fingerprint_sql(
    relation: str, columns: list[str] | None = None, hashes: str | None = None
) -> str:
    """Rows and a content hash of ``relation`` (of ``columns`` only, when given; from its
    column ``hashes`` when that already holds each row's hash)."""
    # Order-independent and duplicate-sensitive: the sum of a hash of every (whole) row.
    if hashes is None:
        row = "t" if columns is None else ", ".join(f'"{c}"' for c in columns)
        hashes = f"hash({row})"
    return f"select count(*), cast(sum(cast({hashes} as hugeint)) as varchar) from {relation} t"


def published_as_of(settings: Settings | None = None) -> date | None:
    """The date the current snapshot was published for (None: none yet, or no date kept)."""
    settings = settings or get_settings()
    if settings.warehouse_is_postgres or not settings.published.exists():
        return None
    with duckdb.connect(str(settings.published), read_only=True) as con:
        try:
            row = con.execute(
                f"select max(as_of_date) from {MANIFEST_SCHEMA}.{MANIFEST_TABLE}"
            ).fetchone()
        except (duckdb.BinderException, duckdb.CatalogException):
            return None  # published by a version that kept no date
    return row[0] if row else None


def older_than_published(as_of: date, settings: Settings | None = None) -> str | None:
    """Why a run for ``as_of`` must not publish (a newer date is published), else None."""
    newest = published_as_of(settings)
    if newest is not None and as_of < newest:
        return (
            f"{as_of} is older than the published {newest}: a re-run of a past date updates "
            "the warehouse's history, readers keep the newest day"
        )
    return None


def publish(
    settings: Settings | None = None,
    parquet_dir: Path | None = None,
    as_of: date | None = None,
    full: bool = False,
) -> dict:
    """Write the published snapshot; return its path, publish id and table row counts.

    With ``as_of`` (the run's date) nothing is published when a newer date already is.

    A day changes a small part of the marts, so by default the new snapshot starts as a
    copy of the current one and each table is brought up to the warehouse's content:
    kept when equal, patched (rows gone deleted, new rows inserted) when a small share
    changed, copied whole otherwise; every patched table is checked against the
    warehouse's fingerprint and copied whole if they differ. ``full`` writes a fresh
    file: the erasure does, so that no deleted row lingers in a reused file's blocks."""
    settings = settings or get_settings()
    if settings.warehouse_is_postgres:
        # Postgres serves readers itself (MVCC, the read-only bi_reader role): nothing to copy.
        return {"published": settings.warehouse, "tables": {}}
    target = settings.published
    if as_of is not None and (reason := older_than_published(as_of, settings)):
        log.warning("not published: %s", reason)
        return {"published": str(target), "skipped_reason": reason, "tables": {}}
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.unlink(missing_ok=True)
    reused = not full and _copy_reusable(target, tmp)
    # Microseconds first, so ids sort in publish order even within one second.
    publish_id = f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}"
    published_at = datetime.now(UTC).replace(tzinfo=None)
    counts: dict[str, int] = {}
    how: dict[str, int] = {"kept": 0, "patched": 0, "copied": 0}
    manifest: list[tuple] = []
    with _warehouse_marts(settings) as con:
        con.execute(f"attach '{tmp}' as pub")
        try:
            for schema in PUBLISHED_SCHEMAS:
                con.execute(f"create schema if not exists pub.{schema}")
                tables = _tables(con, schema)
                for table in sorted(set(_tables(con, schema, "pub")) - set(tables)):
                    con.execute(f'drop table pub.{schema}."{table}"')
                for table in tables:
                    rows, fingerprint, mode = _sync_table(con, schema, table)
                    how[mode] += 1
                    counts[f"{schema}.{table}"] = rows
                    manifest.append(
                        (publish_id, published_at, as_of, schema, table, rows, fingerprint)
                    )
            con.execute(f"drop schema if exists pub.{MANIFEST_SCHEMA} cascade")
            con.execute(f"create schema pub.{MANIFEST_SCHEMA}")
            con.execute(
                f"""create table pub.{MANIFEST_SCHEMA}.{MANIFEST_TABLE} (
                    publish_id varchar, published_at timestamp, as_of_date date,
                    table_schema varchar, table_name varchar, row_count bigint,
                    fingerprint varchar)"""
            )
            con.executemany(
                f"insert into pub.{MANIFEST_SCHEMA}.{MANIFEST_TABLE} values (?, ?, ?, ?, ?, ?, ?)",
                manifest,
            )
        finally:
            con.execute("detach pub")
    _fsync(tmp)
    os.replace(tmp, target)
    _fsync(target.parent)
    log.info(
        "published %d tables to %s (publish %s; %s)",
        len(counts),
        target,
        publish_id,
        "from the last snapshot: " + ", ".join(f"{n} {k}" for k, n in how.items())
        if reused
        else "a fresh file",
    )
    result = {"published": str(target), "publish_id": publish_id, "tables": counts}
    if reused:
        result["from_last_snapshot"] = how
    if parquet_dir is not None:
        result["parquet"] = str(export_parquet(target, Path(parquet_dir), publish_id))
    return result


@contextmanager
def _warehouse_marts(settings: Settings) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection whose ``marts`` are the warehouse's. On Spark: a scratch DuckDB
    file with Spark's marts copied in (``customer720.spark.copy_schema_to_duckdb``), so the
    snapshot is made, patched and fingerprinted by the same code on every engine."""
    if not settings.warehouse_is_spark:
        with duckdb_connection(settings) as con:
            yield con
        return
    from customer720.spark import copy_schema_to_duckdb

    with tempfile.TemporaryDirectory(prefix="publish-", dir=settings.spark_dir) as scratch:
        # Not named for a schema: DuckDB would find `marts` both as a catalog and a schema.
        con = duckdb.connect(str(Path(scratch) / "spark_warehouse.duckdb"))
        try:
            con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
            for schema in PUBLISHED_SCHEMAS:
                copy_schema_to_duckdb(con, schema, settings)
            yield con
        finally:
            con.close()


# A table where more than this share of rows changed is copied whole: patching it would
# cost as much and leave the file with more dead rows.
PATCH_MAX_SHARE = 0.2


def _copy_reusable(target: Path, tmp: Path) -> bool:
    """Start ``tmp`` as a copy of the current snapshot when it is one we can build on."""
    if not target.exists():
        return False
    try:
        with duckdb.connect(str(target), read_only=True) as con:
            con.execute(f"select count(*) from {MANIFEST_SCHEMA}.{MANIFEST_TABLE}").fetchall()
    except duckdb.Error:
        return False  # an older version's snapshot, or not a DuckDB file: start afresh
    shutil.copyfile(target, tmp)
    return True


def _sync_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> tuple[int, str, str]:
    """Make ``pub.<schema>.<table>`` equal the warehouse's table; rows, fingerprint, how."""
    source, copy = f'{schema}."{table}"', f'pub.{schema}."{table}"'
    # Every row's hash once per side (what the fingerprint sums); the diff then joins
    # integers, and the warehouse is read again only for the new rows (a semi-join on
    # their hashes): at 100k customers a patched fact of 9.7M rows 6.3 -> 3.7 s.
    try:
        con.execute(
            f"create or replace temp table publish_source as select hash(w) h from {source} w"
        )
        rows, fingerprint = _fingerprint(con, "publish_source", "h")
        if _columns(con, schema, table) == _columns(con, schema, table, "pub"):
            con.execute(
                f"create or replace temp table publish_copy as select rowid r, hash(p) h from {copy} p"
            )
            if _fingerprint(con, "publish_copy", "h") == (rows, fingerprint):
                return rows, fingerprint, "kept"
            # Rows are compared whole, by their hash: a changed row is one gone, one new.
            con.execute(
                "create or replace temp table publish_new as "
                "select h from publish_source anti join publish_copy using (h)"
            )
            new = con.execute("select count(*) from publish_new").fetchone()[0]
            if new <= PATCH_MAX_SHARE * max(rows, 1):
                con.execute(
                    f"delete from {copy} where rowid in "
                    "(select r from publish_copy anti join publish_source using (h))"
                )
                con.execute(
                    f"insert into {copy} select w.* from {source} w "
                    "semi join publish_new n on hash(w) = n.h"
                )
                # Read back whole: a repeated row, or anything else the diff missed, shows here.
                if _fingerprint(con, copy) == (rows, fingerprint):
                    return rows, fingerprint, "patched"
                log.info("%s: patched copy differs (repeated rows?); copying it whole", copy)
        con.execute(f"create or replace table {copy} as select * from {source}")
        return rows, fingerprint, "copied"
    finally:
        _drop_temp(con)


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    for name in ("publish_source", "publish_copy", "publish_new"):
        con.execute(f"drop table if exists {name}")


def _fingerprint(
    con: duckdb.DuckDBPyConnection, relation: str, hashes: str | None = None
) -> tuple[int, str]:
    """Rows and fingerprint of ``relation`` (see :func:`fingerprint_sql`)."""
    rows, fingerprint = con.execute(fingerprint_sql(relation, hashes=hashes)).fetchone()
    return rows, fingerprint or "0"


def _columns(
    con: duckdb.DuckDBPyConnection, schema: str, table: str, catalog: str | None = None
) -> list[tuple]:
    """Column names and types in order (of ``catalog``; the connection's own by default)."""
    return con.execute(
        """select column_name, data_type from information_schema.columns
            where table_catalog = coalesce(?, current_database())
              and table_schema = ? and table_name = ?
            order by ordinal_position""",
        [catalog, schema, table],
    ).fetchall()


def _tables(con: duckdb.DuckDBPyConnection, schema: str, catalog: str | None = None) -> list[str]:
    """Base tables of ``schema`` in ``catalog`` (the connection's own database by default)."""
    rows = con.execute(
        """select table_name from information_schema.tables
            where table_catalog = coalesce(?, current_database()) and table_schema = ?
              and table_type = 'BASE TABLE'
            order by table_name""",
        [catalog, schema],
    ).fetchall()
    return [r[0] for r in rows]


def export_parquet(snapshot: Path, parquet_dir: Path, publish_id: str) -> Path:
    """Export a published snapshot to ``<parquet_dir>/<publish_id>/`` and point ``current`` at it.

    Files are written first, then the ``current`` symlink is replaced in one rename, so a
    reader resolving ``current/`` gets one whole version. Older versions beyond the last
    ``PARQUET_VERSIONS_KEPT`` are removed.
    """
    parquet_dir.mkdir(parents=True, exist_ok=True)
    version_dir = parquet_dir / publish_id
    version_dir.mkdir()
    with duckdb.connect(str(snapshot), read_only=True) as con:
        for schema in (*PUBLISHED_SCHEMAS, MANIFEST_SCHEMA):
            for table in _tables(con, schema):
                out = version_dir / f"{schema}.{table}.parquet"
                con.execute(f"copy {schema}.\"{table}\" to '{out}' (format parquet)")
    (version_dir / "_manifest.json").write_text(
        json.dumps({"publish_id": publish_id, "snapshot": str(snapshot)}, indent=2)
    )
    link_tmp = parquet_dir / f".current-{publish_id}"
    link_tmp.symlink_to(publish_id, target_is_directory=True)
    os.replace(link_tmp, parquet_dir / "current")
    versions = sorted(
        p
        for p in parquet_dir.iterdir()
        if p.is_dir() and not p.is_symlink() and p.name != publish_id
    )
    # The version just published is never a candidate, whatever its name sorts as.
    for old in versions[: max(len(versions) - (PARQUET_VERSIONS_KEPT - 1), 0)]:
        shutil.rmtree(old, ignore_errors=True)
    log.info("exported the marts as Parquet to %s", version_dir)
    return version_dir


@dataclass
class SnapshotCheck:
    """What ``check_snapshot`` saw in one opened snapshot."""

    publish_id: str | None
    tables: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_snapshot(path: Path | str) -> SnapshotCheck:
    """Open a published snapshot once and check every table against its manifest.

    A snapshot assembled from two publishes (a table of one, the manifest of another), a
    missing or extra table, or a table with other rows than were published is reported
    in ``problems``.
    """
    with duckdb.connect(str(path), read_only=True) as con:
        return check_connection(con)


def check_connection(con: duckdb.DuckDBPyConnection) -> SnapshotCheck:
    """``check_snapshot`` on an open connection (everything read in one transaction)."""
    con.execute("begin transaction")
    try:
        try:
            rows = con.execute(
                f"""select publish_id, table_schema, table_name, row_count, fingerprint
                    from {MANIFEST_SCHEMA}.{MANIFEST_TABLE}"""
            ).fetchall()
        except duckdb.CatalogException:
            return SnapshotCheck(
                None, problems=["no publish manifest: published by an older version"]
            )
        ids = sorted({r[0] for r in rows})
        check = SnapshotCheck(publish_id=ids[0] if len(ids) == 1 else None)
        if len(ids) != 1:
            check.problems.append(f"manifest names {len(ids)} publish ids: {ids}")
        expected = {f"{s}.{t}": (n, fp) for _, s, t, n, fp in rows}
        actual = {f"{schema}.{t}" for schema in PUBLISHED_SCHEMAS for t in _tables(con, schema)}
        for name in sorted(actual ^ set(expected)):
            where = "snapshot" if name in actual else "manifest"
            check.problems.append(f"{name} is only in the {where}")
        for name in sorted(actual & set(expected)):
            schema, table = name.split(".", 1)
            n, fingerprint = con.execute(fingerprint_sql(f'{schema}."{table}"')).fetchone()
            check.tables[name] = n
            if (n, fingerprint or "0") != expected[name]:
                check.problems.append(
                    f"{name}: {n} rows (fingerprint {fingerprint}) but the manifest of "
                    f"publish {check.publish_id} says {expected[name][0]} ({expected[name][1]})"
                )
    finally:
        con.execute("rollback")
    return check


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
