"""Read-only access to the published snapshot, following each publish.

``activate publish`` swaps a new file in with one ``rename``. Each version the app sees is
loaded once into an in-memory DuckDB: the tables the pages read (``APP_TABLES``), sorted
by ``customer_key`` so a customer's rows sit in a few blocks (a lookup reads ~1 ms instead
of scanning the whole table, ~50 ms at 10k customers), then the file is detached. So the
app holds no lock on the file between loads, a publish never waits for it, and it never
waits for a run. The version is keyed by the file's identity (device, inode, mtime): the
first request after a publish loads the new version (a few seconds at 10k customers),
requests still running on the old one finish on it (their cursor keeps it alive), nobody
sees a mix. (``duckdb.connect(path)`` would not do: DuckDB shares one open database per
path and process, so it could hand back the old version after a swap.)

Memory: the app's tables of one version (213 MB of DuckDB memory at 10k customers × 365 days).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

SOURCE = "pub"
CATALOG = "memory"
# The tables the pages read; everything else in the snapshot is left on disk.
APP_TABLES = {
    "marts": (
        "dim_customer_720",
        "dim_products",
        "fct_orders",
        "fct_sessions",
        "fct_touchpoints",
        "fct_moments_of_impact",
        "customer_churn_score_history",
        "customer_recommendations",
    ),
    "meta": ("publish_manifest",),
}


class SnapshotMissing(RuntimeError):
    """No published snapshot yet: the message says what to run."""


@dataclass(frozen=True)
class Version:
    """One opened version of the snapshot."""

    identity: tuple[int, int, int]
    con: duckdb.DuckDBPyConnection
    publish_id: str | None
    published_at: Any
    # Pages that read no request input, computed once per version (a version never changes).
    pages: dict[str, Any] = field(default_factory=dict)


def _identity(path: Path) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except FileNotFoundError as exc:
        raise SnapshotMissing(
            f"no published snapshot at {path}: run `make run` (or `python -m activate publish`)"
        ) from exc
    return (st.st_dev, st.st_ino, st.st_mtime_ns)


def _open(path: Path, identity: tuple[int, int, int]) -> Version:
    con = duckdb.connect(":memory:", config={"threads": 2})
    con.execute(f"attach '{path}' as {SOURCE} (read_only)")
    present = set(
        con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = ?",
            [SOURCE],
        ).fetchall()
    )
    for schema, tables in APP_TABLES.items():
        con.execute(f"create schema if not exists {CATALOG}.{schema}")
        for table in tables:
            if (schema, table) not in present:
                continue
            columns = {
                c
                for (c,) in con.execute(
                    "select column_name from information_schema.columns"
                    " where table_catalog = ? and table_schema = ? and table_name = ?",
                    [SOURCE, schema, table],
                ).fetchall()
            }
            order = " order by customer_key" if "customer_key" in columns else ""
            con.execute(
                f'create table {CATALOG}.{schema}."{table}" as'
                f' select * from {SOURCE}.{schema}."{table}"{order}'
            )
    con.execute(f"detach {SOURCE}")
    con.execute(f"use {CATALOG}")
    try:
        publish_id, published_at = con.execute(
            "select max(publish_id), max(published_at) from meta.publish_manifest"
        ).fetchone()
    except duckdb.CatalogException:  # a snapshot from before manifests
        publish_id, published_at = None, None
    return Version(identity, con, publish_id, published_at)


class Snapshot:
    """The current version of ``path``; ``cursor()`` gives a request its own connection."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._version: Version | None = None

    def version(self) -> Version:
        identity = _identity(self.path)
        current = self._version
        if current is not None and current.identity == identity:
            return current
        with self._lock:
            if self._version is None or self._version.identity != identity:
                # The old version is dropped, not closed: cursors still reading it keep it.
                self._version = _open(self.path, identity)
            return self._version

    @contextmanager
    def cursor(self) -> Iterator[Reader]:
        version = self.version()
        cur = version.con.cursor()
        try:
            cur.execute(f"use {CATALOG}")
            yield Reader(cur, version)
        finally:
            cur.close()


class Reader:
    """Small helpers over one cursor: rows as dicts."""

    def __init__(self, cur: duckdb.DuckDBPyConnection, version: Version) -> None:
        self.cur = cur
        self.version = version

    def rows(self, sql: str, params: list | None = None) -> list[dict]:
        result = self.cur.execute(sql, params or [])
        names = [d[0] for d in result.description]
        return [dict(zip(names, row, strict=True)) for row in result.fetchall()]

    def row(self, sql: str, params: list | None = None) -> dict | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def value(self, sql: str, params: list | None = None) -> Any:
        row = self.cur.execute(sql, params or []).fetchone()
        return row[0] if row else None

    def has_table(self, schema: str, table: str) -> bool:
        return bool(
            self.value(
                "select count(*) from information_schema.tables "
                "where table_catalog = ? and table_schema = ? and table_name = ?",
                [CATALOG, schema, table],
            )
        )
