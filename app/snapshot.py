"""Read-only access to the published snapshot, following each publish.

``activate publish`` swaps a new file in with one ``rename``. DuckDB shares one open
database per file *path* and process, so ``duckdb.connect(path)`` after a swap could hand
back the old version while any connection to it is open. We therefore open each version
as its own in-memory instance with the file ``ATTACH``ed read-only, keyed by the file's
identity (device, inode, mtime): the first request after a swap opens the new version,
requests still running on the old one finish on it (their cursor keeps it alive), and
nobody ever sees a mix. A read-only attach takes a shared lock only: a publish never waits
for the app, and the app never waits for a run.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

CATALOG = "pub"


class SnapshotMissing(RuntimeError):
    """No published snapshot yet: the message says what to run."""


@dataclass(frozen=True)
class Version:
    """One opened version of the snapshot."""

    identity: tuple[int, int, int]
    con: duckdb.DuckDBPyConnection
    publish_id: str | None
    published_at: Any


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
    con.execute(f"attach '{path}' as {CATALOG} (read_only)")
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
