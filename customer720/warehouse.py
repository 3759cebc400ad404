"""One way to read from and write to the warehouse, whichever engine it is.

The embedded default is a DuckDB file; production may be Postgres. Stages call these
functions instead of opening connections themselves, so the engine switch lives here.
Each call opens and closes its own connection: DuckDB allows one writing process per
file, and holding a connection across a long task would block dbt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import duckdb
import pandas as pd
import sqlalchemy as sa

from customer720.settings import Settings, get_settings

log = logging.getLogger(__name__)


@contextmanager
def duckdb_connection(
    settings: Settings | None = None,
) -> Iterator[duckdb.DuckDBPyConnection]:
    settings = settings or get_settings()
    path = settings.warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Always read-write: dbt-duckdb keeps its read-write connection open in-process after a
    # run (all tasks share one process under `airflow dags test`), and DuckDB refuses a second
    # connection to the same file with another configuration. Read-only would not let another
    # process in either: DuckDB locks the file per process.
    con = duckdb.connect(str(path))
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


@cache
def _engine_for(url: str) -> sa.Engine:
    return sa.create_engine(sqlalchemy_url(url))


def _engine(settings: Settings) -> sa.Engine:
    # One engine (and connection pool) per warehouse URL for the process, not one per call.
    return _engine_for(settings.warehouse)


def _duckdb_has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    row = con.execute(
        "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
        [schema, table],
    ).fetchone()
    return bool(row and row[0])


def query_df(sql: str, settings: Settings | None = None) -> pd.DataFrame:
    """Run a SELECT and return a DataFrame."""
    settings = settings or get_settings()
    if settings.warehouse_is_postgres:
        with _engine(settings).connect() as con:
            return pd.read_sql_query(sa.text(sql), con)
    with duckdb_connection(settings) as con:
        return con.execute(sql).df()


def scalar(sql: str, settings: Settings | None = None) -> Any:
    settings = settings or get_settings()
    if settings.warehouse_is_postgres:
        with _engine(settings).connect() as con:
            return con.execute(sa.text(sql)).scalar()
    with duckdb_connection(settings) as con:
        row = con.execute(sql).fetchone()
        return row[0] if row else None


def table_exists(schema: str, table: str, settings: Settings | None = None) -> bool:
    settings = settings or get_settings()
    if settings.warehouse_is_postgres:
        with _engine(settings).connect() as con:
            return sa.inspect(con).has_table(table, schema=schema)
    if not settings.warehouse_path.exists():
        return False
    with duckdb_connection(settings) as con:
        return _duckdb_has_table(con, schema, table)


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
    if settings.warehouse_is_postgres:
        engine = _engine(settings)
        with engine.begin() as con:
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
