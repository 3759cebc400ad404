"""One way to read from and write to the warehouse, whichever engine it is.

The embedded default is a DuckDB file; production may be Postgres (``C720_WAREHOUSE``), or
Apache Spark (``spark`` / ``spark://host:port``: the query helpers run on the SparkSession of
``customer720.spark``; loads go to its DuckDB raw store, handed to Spark as Parquet).
Stages call this module instead of opening connections themselves, so the engine switch,
URL handling and connection opening live here and nowhere else. Two ways in:

- **Query helpers** (``query_df``, ``query_arrow``, ``scalar``, ``table_exists``,
  ``replace_rows``, ``duckdb_connection``): each call opens and closes its own
  connection: DuckDB allows one writing process per file, and holding a connection across
  a long task would block dbt.
- **A Destination** (``open_destination``), for loads and erasure that run many
  statements in one transaction. Validation always runs in DuckDB (``Destination.work``):
  reading files, typing, finding bad records. Only the results cross to the destination,
  through four operations that both engines implement — ``execute``/``fetchall``
  (portable SQL with ``?`` parameters), ``copy_into`` (rows of a DuckDB query into a
  destination table), ``insert_rows`` (a few Python rows) — inside ``begin``/``commit``.
  For a DuckDB warehouse ``work`` *is* the warehouse connection and nothing is copied.
  For Postgres, ``work`` is an in-memory DuckDB and rows travel by ``COPY ... FROM
  STDIN`` (CSV written by DuckDB), the fastest way into Postgres.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import sqlalchemy as sa

from customer720.settings import Settings, get_settings

log = logging.getLogger(__name__)


class WarehouseUnavailable(RuntimeError):
    """The warehouse cannot be reached; the message names it (without the password)."""


# How long a connection waits for another process to release the DuckDB file. An Airflow
# task is marked done before its process has exited and closed the file (DuckDB
# checkpoints on close: seconds after a large dbt build), so the next task can find the
# file still locked for a moment; a holder that keeps it longer is not ours to wait for.
LOCK_WAIT_SECONDS = 60.0
_LOCK_POLL_SECONDS = 0.5


def open_duckdb_file(path: Path) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect(path)``, waiting up to LOCK_WAIT_SECONDS while another process holds
    the file's lock; then WarehouseUnavailable, naming the holder as DuckDB does."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    waited = False
    while True:
        try:
            con = duckdb.connect(str(path))
        except duckdb.IOException as error:
            if "lock" not in str(error).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseUnavailable(
                    f"the warehouse {path} stayed locked by another process for "
                    f"{LOCK_WAIT_SECONDS:.0f} s (DuckDB allows one writing process per "
                    f"file; stop that process, or run this again after it ends): {error}"
                ) from error
            if not waited:
                log.info("waiting for another process to release %s: %s", path, error)
                waited = True
            time.sleep(_LOCK_POLL_SECONDS)
            continue
        if waited:
            log.info("%s released; connected", path)
        return con


def _connect_duckdb(path: Path, settings: Settings | None = None) -> duckdb.DuckDBPyConnection:
    settings = settings or get_settings()
    path.parent.mkdir(parents=True, exist_ok=True)
    con = open_duckdb_file(path)
    # Bounded memory, as dbt's profile sets it: above the limit DuckDB spills to disk, to
    # its default temp directory next to the file. SET after connecting, not
    # connect(config=...): dbt-duckdb may hold this file open in-process, and DuckDB refuses
    # a second connection with another configuration. The temp directory is never SET:
    # once a spill used it, DuckDB refuses to set it again, even to the same path.
    con.execute(f"set memory_limit = '{settings.duckdb_memory_limit}'")
    return con


@contextmanager
def duckdb_connection(
    settings: Settings | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    settings = settings or get_settings()
    # Always read-write: dbt-duckdb keeps its read-write connection open in-process after a
    # run (all tasks share one process under `airflow dags test`), and DuckDB refuses a second
    # connection to the same file with another configuration. Read-only would not let another
    # process in either: DuckDB locks the file per process.
    con = _connect_duckdb(settings.warehouse_path, settings)
    try:
        yield con
    finally:
        con.close()


def sqlalchemy_url(url: str) -> str:
    """Plain postgres URLs use psycopg2 (SQLAlchemy 2.1 would pick psycopg 3, not installed)."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg2://" + url.removeprefix(prefix)
    return url


def display_url(url: str) -> str:
    """A warehouse URL as the user gave it, fit for messages: the password hidden."""
    if "://" not in url:  # a DuckDB file
        return url
    return sa.make_url(url).render_as_string(hide_password=True)


@cache
def _engine_for(url: str) -> sa.Engine:
    return sa.create_engine(sqlalchemy_url(url))


def pg_engine(settings: Settings | None = None) -> sa.Engine:
    """The SQLAlchemy engine of a Postgres warehouse.

    One engine (and connection pool) per warehouse URL for the process, not one per call.
    """
    return _engine_for((settings or get_settings()).warehouse)


def _duckdb_has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def query_df(sql: str, settings: Settings | None = None) -> pd.DataFrame:
    """Run a SELECT and return a DataFrame."""
    settings = settings or get_settings()
    if settings.warehouse_is_spark:
        from customer720.spark import session

        frame = session(settings).sql(sql)
        df = frame.toPandas()
        # As DuckDB's DataFrames: dates as datetime64 and decimals as floats (Spark gives
        # datetime.date and Decimal objects, which compare and compute differently).
        for f in frame.schema.fields:
            if f.dataType.typeName() == "date":
                df[f.name] = pd.to_datetime(df[f.name])
            elif f.dataType.typeName() == "decimal":
                df[f.name] = df[f.name].astype("float64")
        return df
    if settings.warehouse_is_postgres:
        with pg_engine(settings).connect() as con:
            return pd.read_sql_query(sa.text(sql), con)
    with duckdb_connection(settings) as con:
        return con.execute(sql).df()


def query_arrow(sql: str, settings: Settings | None = None) -> pa.Table:
    """Run a SELECT and return an Arrow table. For large reads: text stays in Arrow's
    compact buffers instead of one Python object per value (``query_df``'s object columns
    cost ~60 bytes a value; ten million web events made the recommender's read 6 GB)."""
    settings = settings or get_settings()
    if settings.warehouse_is_spark:
        from customer720.spark import session

        return session(settings).sql(sql).toArrow()
    if settings.warehouse_is_postgres:
        return pa.Table.from_pandas(query_df(sql, settings), preserve_index=False)
    with duckdb_connection(settings) as con:
        return con.sql(sql).to_arrow_table()


def scalar(sql: str, settings: Settings | None = None) -> Any:
    settings = settings or get_settings()
    if settings.warehouse_is_spark:
        from customer720.spark import session

        rows = session(settings).sql(sql).take(1)
        return rows[0][0] if rows else None
    if settings.warehouse_is_postgres:
        with pg_engine(settings).connect() as con:
            return con.execute(sa.text(sql)).scalar()
    with duckdb_connection(settings) as con:
        row = con.execute(sql).fetchone()
        return row[0] if row else None


def table_exists(schema: str, table: str, settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    if settings.warehouse_is_spark:
        from customer720.spark import session

        return bool(session(settings).catalog.tableExists(f"{schema}.{table}"))
    if settings.warehouse_is_postgres:
        with pg_engine(settings).connect() as con:
            return sa.inspect(con).has_table(table, schema=schema)
    if not settings.warehouse_path.exists():
        return False
    with duckdb_connection(settings) as con:
        return _duckdb_has_table(con, schema, table)


def columns(schema: str, settings: Settings | None = None) -> list[tuple[str, str]]:
    """(table, column) of every table in ``schema``, in table then column order. Spark has
    no ``information_schema``; its catalog says the same."""
    settings = settings or get_settings()
    if settings.warehouse_is_spark:
        from customer720.spark import session

        catalog = session(settings).catalog
        if not catalog.databaseExists(schema):
            return []
        return [
            (t.name, c.name)
            for t in sorted(catalog.listTables(schema), key=lambda t: t.name)
            if not t.isTemporary
            for c in catalog.listColumns(f"{schema}.{t.name}")
        ]
    df = query_df(
        "select table_name, column_name from information_schema.columns "
        f"where table_schema = '{schema}' order by table_name, ordinal_position",
        settings,
    )
    return [(str(t), str(c)) for t, c in df.itertuples(index=False)]


def replace_rows(
    df: pd.DataFrame,
    schema: str,
    table: str,
    where: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> int:
    """Idempotently write ``df`` into ``schema.table``.

    With ``where`` (e.g. ``{"as_of_date": d}``) only the rows matching it are replaced, so
    re-running one logical date never duplicates rows and keeps other dates' history.
    Without it the whole table is replaced. The table is created from ``df`` if missing.
    Returns the number of rows written.
    """
    settings = settings or get_settings()
    where = where or {}
    if settings.warehouse_is_spark:
        from customer720.spark import replace_rows as spark_replace_rows

        return spark_replace_rows(df, schema, table, where, settings)
    if settings.warehouse_is_postgres:
        with pg_engine(settings).begin() as con:
            con.execute(sa.text(f'create schema if not exists "{schema}"'))
            exists = sa.inspect(con).has_table(table, schema=schema)
            if exists and where:
                clause = " and ".join(f'"{k}" = :{k}' for k in where)
                con.execute(sa.text(f'delete from "{schema}"."{table}" where {clause}'), where)
            elif exists:
                con.execute(sa.text(f'delete from "{schema}"."{table}"'))
            df.to_sql(
                table,
                con,
                schema=schema,
                if_exists="append",
                index=False,
                method="multi",
                chunksize=5000,
            )
        return len(df)
    with duckdb_connection(settings) as con:
        con.execute(f'create schema if not exists "{schema}"')
        con.register("_incoming", df)
        exists = _duckdb_has_table(con, schema, table)
        con.execute("begin")
        if not exists:
            con.execute(f'create table "{schema}"."{table}" as select * from _incoming limit 0')
        if where:
            clause = " and ".join(f'"{k}" = ?' for k in where)
            con.execute(f'delete from "{schema}"."{table}" where {clause}', list(where.values()))
        elif exists:
            con.execute(f'delete from "{schema}"."{table}"')
        con.execute(f'insert into "{schema}"."{table}" by name select * from _incoming')
        con.execute("commit")
        con.unregister("_incoming")
    log.info("wrote %d rows to %s.%s", len(df), schema, table)
    return len(df)


# --------------------------------------------------------------------------- Destination

# Contract types are DuckDB names; Postgres spells one of them differently.
_PG_TYPES = {"DOUBLE": "double precision"}


def _quiet(con: duckdb.DuckDBPyConnection) -> None:
    # DuckDB's own progress bar would print into task logs; our summaries say enough.
    # (A session setting: a connection config could clash with dbt-duckdb's connection.)
    con.execute("set enable_progress_bar = false")


class Destination:
    """The warehouse as one connection. Use as a context manager; ``work`` is DuckDB."""

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
        self.work = _connect_duckdb(path)
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
            raise WarehouseUnavailable(
                f"cannot connect to the Postgres warehouse {display_url(url)} (C720_WAREHOUSE): "
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


class SparkRawDestination(DuckDBDestination):
    """A Spark warehouse's raw layer: the DuckDB raw store (validation, quarantine and
    idempotent loads as for a DuckDB warehouse), handed to Spark as Parquet when the
    work is done without error (``customer720.spark.export_raw``)."""

    engine = "duckdb"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.warehouse_path)
        self.settings = settings

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            from customer720.spark import export_raw

            try:
                self.commit()
                export_raw(self.work, self.settings)
            except BaseException:
                self.close()
                raise
        super().__exit__(exc_type, exc, tb)


def open_destination(settings: Settings | None = None) -> Destination:
    """The warehouse named by ``C720_WAREHOUSE`` as a :class:`Destination`.

    Raises :class:`WarehouseUnavailable` when a Postgres warehouse cannot be reached.
    """
    settings = settings or get_settings()
    if settings.warehouse_is_postgres:
        return PostgresDestination(settings.warehouse)
    if settings.warehouse_is_spark:
        settings.spark_dir.mkdir(parents=True, exist_ok=True)
        return SparkRawDestination(settings)
    return DuckDBDestination(settings.warehouse_path)
