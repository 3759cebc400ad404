"""One email rule: the dbt macro owns it; Python's SQL and Python's normaliser agree with it."""

from __future__ import annotations

from types import SimpleNamespace

import duckdb

from customer720.warehouse import PostgresDestination
from ingest.emails import MACRO_PATH, email_sql, normalise_email
from ingest.suppression import hash_sql, subject_hash

TRICKY = [
    "Ana@Example.COM",
    "  ana@example.com  ",
    " ANA+News@Example.com",  # a plus-tag is part of the address: kept
    "ana+news@example.com",
    "\tana@example.com\n",  # SQL trim and Python strip(" ") take spaces only
    "ana @example.com",
    "ÄNNA@Exämple.com",
    "n/a",
    "",
    "   ",
]


def test_python_sql_is_the_dbt_macro() -> None:
    assert "normalise_email(column)" in MACRO_PATH.read_text()
    assert email_sql('"email"') == "nullif(lower(trim(\"email\")), '')"


def _engines(postgres_url: str):
    """(engine, run) for DuckDB and Postgres: run(sql with one ?, value) -> first value."""
    con = duckdb.connect()
    yield "duckdb", lambda sql, value: con.execute(sql, [value]).fetchone()[0]
    con.close()
    with PostgresDestination(postgres_url) as pg:
        yield "postgres", lambda sql, value: pg.fetchall(sql, [value])[0][0]


def test_macro_and_python_normalise_alike_on_duckdb_and_postgres(postgres_url: str) -> None:
    for engine, run in _engines(postgres_url):
        for value in TRICKY:
            in_sql = run(f"select {email_sql('?')}", value)
            assert in_sql == (normalise_email(value) or None), (engine, value)


def test_suppression_hash_in_sql_matches_python(postgres_url: str) -> None:
    for engine, run in _engines(postgres_url):
        dest = SimpleNamespace(engine=engine)
        hashed = hash_sql(dest, "email", "email")
        sql = f"select {hashed} from (select cast(? as varchar) as email) t"
        for value in [v for v in TRICKY if v.strip(" ")]:
            assert run(sql, value) == subject_hash("email", value), (
                engine,
                value,
            )
