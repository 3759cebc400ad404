"""Where the raw layer lives: the DuckDB warehouse file or a Postgres database.

Validation always runs in DuckDB (``Destination.work``): reading files, typing, finding
bad records. Only the results cross to the destination, through four operations that
both engines implement — ``execute``/``fetchall`` (portable SQL with ``?`` parameters),
``copy_into`` (rows of a DuckDB query into a destination table), ``insert_rows`` (a few
Python rows) — inside ``begin``/``commit``. So there is one validation path, and the
engine switch is this module.

For a DuckDB warehouse ``work`` *is* the warehouse connection and nothing is copied.
For Postgres, ``work`` is an in-memory DuckDB and rows travel by ``COPY ... FROM STDIN``
(CSV written by DuckDB), the fastest way into Postgres.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa

from customer720.settings import Settings
from customer720.warehouse import sqlalchemy_url

log = logging.getLogger(__name__)

# Contract types are DuckDB names; Postgres spells one of them differently.
_PG_TYPES = {"DOUBLE": "double precision"}


def _quiet(con: duckdb.DuckDBPyConnection) -> None:
    # DuckDB's own progress bar would print into task logs; our summaries say enough.
    # (A session setting: a connection config could clash with dbt-duckdb's connection.)
    con.execute("set enable_progress_bar = false")


class Destination:
    """The raw layer's database. Use as a context manager; ``work`` is DuckDB."""

    engine: str
    work: duckdb.DuckDBPyConnection

    def sql_type(self, duckdb_type: str) -> str:
        return duckdb_type

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        raise NotImplementedError

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        raise NotImplementedError

    def copy_into(self, table: str, columns: Sequence[str], select_sql: str) -> None:
        """Insert the rows of ``select_sql`` (run in ``work``) into ``table`` (``columns``)."""
        raise NotImplementedError

    def stage(self, name: str, columns: dict[str, str], select_sql: str) -> None:
        """Make the rows of ``select_sql`` (run in ``work``) a temp table ``name`` here."""
        raise NotImplementedError

    def insert_rows(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        if not rows:
            return
        self._insert_rows(table, columns, rows)

    def _insert_rows(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        raise NotImplementedError

    def begin(self) -> None:
        raise NotImplementedError

    def commit(self) -> None:
        raise NotImplementedError

    def rollback(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Destination:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            try:
                self.rollback()
            except Exception:  # noqa: BLE001 - no transaction open; keep the first error
                pass
        self.close()


class DuckDBDestination(Destination):
    """The DuckDB warehouse file: validation and raw tables share one connection."""

    engine = "duckdb"

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.work = duckdb.connect(str(path))
        _quiet(self.work)
        self._in_transaction = False

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        self.work.execute(sql, list(params))

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        return self.work.execute(sql, list(params)).fetchall()

    def copy_into(self, table: str, columns: Sequence[str], select_sql: str) -> None:
        cols = ", ".join(f'"{c}"' for c in columns)
        self.work.execute(f"insert into {table} ({cols}) {select_sql}")

    def stage(self, name: str, columns: dict[str, str], select_sql: str) -> None:
        self.work.execute(f"create or replace temp table {name} as {select_sql}")

    def _insert_rows(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        data = pa.table({c: [row[i] for row in rows] for i, c in enumerate(columns)})
        self.work.register("_rows", data)
        cols = ", ".join(f'"{c}"' for c in columns)
        self.work.execute(f"insert into {table} ({cols}) select {cols} from _rows")
        self.work.unregister("_rows")

    def begin(self) -> None:
        self.work.execute("begin")
        self._in_transaction = True

    def commit(self) -> None:
        if self._in_transaction:  # outside a transaction each statement commits itself
            self._in_transaction = False
            self.work.execute("commit")

    def rollback(self) -> None:
        if self._in_transaction:
            self._in_transaction = False
            self.work.execute("rollback")

    def close(self) -> None:
        self.work.close()


class PostgresDestination(Destination):
    """A Postgres database: validation in an in-memory DuckDB, rows sent by COPY."""

    engine = "postgres"

    def __init__(self, url: str) -> None:
        import psycopg2
        import sqlalchemy as sa

        parsed = sa.make_url(sqlalchemy_url(url))
        try:
            self.pg = psycopg2.connect(
                host=parsed.host or "127.0.0.1",
                port=parsed.port or 5432,
                user=parsed.username,
                password=parsed.password,
                dbname=parsed.database,
            )
        except psycopg2.OperationalError as exc:
            from ingest.errors import IngestError

            shown = parsed.render_as_string(hide_password=True)
            raise IngestError(
                f"cannot connect to the Postgres warehouse {shown} (C720_WAREHOUSE): "
                f"{str(exc).strip()}"
            ) from exc
        self.work = duckdb.connect()
        _quiet(self.work)
        self._scratch = tempfile.TemporaryDirectory(prefix="c720-ingest-")

    def sql_type(self, duckdb_type: str) -> str:
        return _PG_TYPES.get(duckdb_type.upper(), duckdb_type)

    @staticmethod
    def _pg_sql(sql: str) -> str:
        # DuckDB-style '?' placeholders to psycopg2's '%s' (our SQL has no literal '?').
        return sql.replace("%", "%%").replace("?", "%s")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        with self.pg.cursor() as cur:
            cur.execute(self._pg_sql(sql), tuple(params))

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.pg.cursor() as cur:
            cur.execute(self._pg_sql(sql), tuple(params))
            return cur.fetchall()

    def copy_into(self, table: str, columns: Sequence[str], select_sql: str) -> None:
        # DuckDB's CSV: NULL as an empty field, an empty string as "" — what COPY expects.
        path = Path(self._scratch.name) / "rows.csv"
        self.work.execute(f"copy ({select_sql}) to '{path}' (format csv, header false)")
        cols = ", ".join(f'"{c}"' for c in columns)
        with self.pg.cursor() as cur, path.open("rb") as handle:
            cur.copy_expert(f"copy {table} ({cols}) from stdin with (format csv)", handle)
        path.unlink()

    def stage(self, name: str, columns: dict[str, str], select_sql: str) -> None:
        cols = ", ".join(f'"{c}" {self.sql_type(t)}' for c, t in columns.items())
        self.execute(f"drop table if exists {name}")
        self.execute(f"create temp table {name} ({cols})")
        self.copy_into(name, list(columns), select_sql)

    def _insert_rows(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        from psycopg2.extras import execute_values

        cols = ", ".join(f'"{c}"' for c in columns)
        with self.pg.cursor() as cur:
            execute_values(cur, f"insert into {table} ({cols}) values %s", rows)

    def begin(self) -> None:
        # psycopg2 opens a transaction with the first statement; commit ends it.
        pass

    def commit(self) -> None:
        self.pg.commit()

    def rollback(self) -> None:
        self.pg.rollback()

    def close(self) -> None:
        self.pg.close()
        self.work.close()
        self._scratch.cleanup()


def open_destination(settings: Settings) -> Destination:
    """The raw layer's database named by ``C720_WAREHOUSE``."""
    if settings.warehouse_is_postgres:
        return PostgresDestination(settings.warehouse)
    return DuckDBDestination(settings.warehouse_path)
