"""Postgres serving: the bi_reader role reads the marts and can do nothing else."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from activate.__main__ import main
from activate.bi_reader import grant_bi_reader
from customer720.warehouse import sqlalchemy_url

LAYERS = {
    "raw": "create table raw.crm_contacts (contact_id bigint, email text)",
    "staging": "create table staging.snap_crm__contacts (contact_id bigint, email text)",
    "intermediate": "create table intermediate.int_identity_nodes_resolved (node_id text)",
    "ml": "create table ml.customer_features (customer_key text, recency_days int)",
    "privacy": "create table privacy.suppression_list (subject_hash text)",
    "marts": "create table marts.dim_customer_720 (customer_key text, churn_probability float)",
}


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(sqlalchemy_url(url))
    with engine.begin() as con:
        for statement in statements:
            con.exec_driver_sql(statement)
    engine.dispose()


@pytest.fixture
def warehouse_pg(
    postgres_url: str, local_dir: object, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[str, str]]:
    """A Postgres warehouse with every layer (PII in raw/staging), and a unique role name."""
    monkeypatch.setenv("C720_WAREHOUSE", postgres_url)
    _execute(
        postgres_url,
        *(f"create schema {schema}" for schema in LAYERS),
        *LAYERS.values(),
        "insert into raw.crm_contacts values (1, 'ana@example.com')",
        "insert into marts.dim_customer_720 values ('k1', 0.7)",
    )
    role = f"c720_bi_{uuid.uuid4().hex[:10]}"  # roles are cluster-wide: never reuse a name
    try:
        yield postgres_url, role
    finally:
        # Privileges and default privileges go with DROP OWNED; then the role itself.
        _execute(postgres_url, f'drop owned by "{role}"')
        admin = sa.make_url(sqlalchemy_url(postgres_url)).set(database="postgres")
        _execute(admin.render_as_string(hide_password=False), f'drop role if exists "{role}"')


def _as(url: str, role: str) -> sa.Engine:
    return sa.create_engine(sa.make_url(sqlalchemy_url(url)).set(username=role, password=None))


def _denied(engine: sa.Engine, statement: str) -> bool:
    try:
        with engine.begin() as con:
            con.exec_driver_sql(statement)
    except sa.exc.DBAPIError as exc:
        return "permission denied" in str(exc.orig) or "read-only transaction" in str(exc.orig)
    return False


def test_bi_reader_reads_the_marts_and_nothing_else(
    warehouse_pg: tuple[str, str], cli_env: object
) -> None:
    url, role = warehouse_pg
    assert main(["grant-bi-reader", "--role", role]) == 0
    again = grant_bi_reader(role)  # idempotent: a second run changes nothing and does not fail
    assert again["tables"] == 1 and again["schemas"] == ["marts"]
    reader = _as(url, role)
    try:
        with reader.connect() as con:
            rows = con.exec_driver_sql("select * from marts.dim_customer_720").all()
        assert rows == [("k1", 0.7)]
        for schema, ddl in LAYERS.items():
            table = ddl.split()[2]
            if schema != "marts":
                assert _denied(reader, f"select * from {table}"), f"bi_reader can read {table}"
        for statement in (
            "insert into marts.dim_customer_720 values ('k2', 0.1)",
            "update marts.dim_customer_720 set churn_probability = 0",
            "delete from marts.dim_customer_720",
            "create table marts.mine (x int)",
            "create table public.mine (x int)",
            "create schema mine",
            "create temp table mine (x int)",
            "drop table marts.dim_customer_720",
        ):
            assert _denied(reader, statement), f"bi_reader may: {statement}"
        # Sessions are read-only by default; switched off, the privileges still refuse.
        with reader.connect().execution_options(isolation_level="AUTOCOMMIT") as con:
            con.exec_driver_sql("set default_transaction_read_only = off")
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                con.exec_driver_sql("insert into marts.dim_customer_720 values ('k2', 0.1)")
            # TEMP is PUBLIC's by default in Postgres: revoked, not just read-only.
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                con.exec_driver_sql("create temp table mine (x int)")

        # dbt rebuilds marts as new tables each run: they are readable without a new grant.
        _execute(
            url,
            "drop table marts.dim_customer_720",
            "create table marts.dim_customer_720 (customer_key text, churn_probability float)",
            "insert into marts.dim_customer_720 values ('k9', 0.2)",
            "create table marts.fct_orders (order_id bigint)",
        )
        with reader.connect() as con:
            assert con.exec_driver_sql("select customer_key from marts.dim_customer_720").all() == [
                ("k9",)
            ]
            assert con.exec_driver_sql("select count(*) from marts.fct_orders").scalar() == 0
    finally:
        reader.dispose()


def test_grant_bi_reader_explains_a_duckdb_warehouse(cli_env: object) -> None:
    with pytest.raises(ValueError, match="published snapshot"):
        grant_bi_reader("bi_reader")
    assert main(["grant-bi-reader"]) == 2
