"""Postgres serving: a read-only role for BI tools that sees the marts and nothing else.

With a DuckDB warehouse, readers use the published snapshot. With a Postgres warehouse
(``C720_WAREHOUSE=postgresql://...``) Postgres serves them itself, and
``python -m activate grant-bi-reader`` makes the role they log in with:

- ``LOGIN``, no superuser / createdb / createrole, sessions read-only by default;
- no ``TEMP`` on the database (revoked from PUBLIC, which has it by default; the
  warehouse user keeps it), so no ``CREATE TEMP TABLE``;
- ``CONNECT`` on the warehouse database, ``USAGE`` on schema ``marts`` and ``SELECT`` on
  its tables, also on tables created there later (dbt rebuilds every mart each run: the
  default privileges of the warehouse user give each new table to the role);
- nothing on ``raw``, ``staging``, ``intermediate``, ``ml`` or ``privacy`` (personal
  data), which is revoked again if someone granted it.

Idempotent: run it again after adding schemas. Roles are cluster-wide in Postgres; the
grants are per database (the one in ``C720_WAREHOUSE``).
"""

from __future__ import annotations

import logging
import re

import sqlalchemy as sa

from customer720 import warehouse
from customer720.settings import Settings, get_settings

log = logging.getLogger(__name__)

DEFAULT_ROLE = "bi_reader"
SERVED_SCHEMAS = ("marts",)
_ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def grant_bi_reader(
    role: str = DEFAULT_ROLE, password: str | None = None, settings: Settings | None = None
) -> dict:
    """Create or update the read-only BI role; return what it may read."""
    settings = settings or get_settings()
    if not settings.warehouse_is_postgres:
        raise ValueError(
            "grant-bi-reader is for a Postgres warehouse (C720_WAREHOUSE=postgresql://...); "
            f"the warehouse is the DuckDB file {settings.warehouse}: point BI tools at the "
            f"published snapshot {settings.published} instead"
        )
    if not _ROLE_NAME.fullmatch(role):
        raise ValueError(f"role name {role!r}: use lower-case letters, digits and '_' (at most 63)")
    with warehouse.pg_engine(settings).begin() as con:
        database = con.execute(sa.text("select current_database()")).scalar_one()
        owner = con.execute(sa.text("select current_user")).scalar_one()
        exists = con.execute(
            sa.text("select count(*) from pg_roles where rolname = :r"), {"r": role}
        ).scalar_one()
        verb = "alter" if exists else "create"
        con.execute(
            sa.text(
                f'{verb} role "{role}" login nosuperuser nocreatedb nocreaterole noinherit'
                + (" password :password" if password is not None else "")
            ),
            {"password": password} if password is not None else {},
        )
        con.execute(
            sa.text(
                f'alter role "{role}" in database "{database}" '
                "set default_transaction_read_only = on"
            )
        )
        con.execute(sa.text(f'grant connect on database "{database}" to "{role}"'))
        con.execute(sa.text(f'revoke create on database "{database}" from "{role}"'))
        # Postgres grants TEMP to PUBLIC: without this the role could still create temp
        # tables. The warehouse user keeps it explicitly (dbt's incremental models use them).
        con.execute(sa.text(f'revoke temporary on database "{database}" from public, "{role}"'))
        con.execute(sa.text(f'grant temporary on database "{database}" to "{owner}"'))
        schemas = [
            r[0]
            for r in con.execute(
                sa.text(
                    """select nspname from pg_namespace
                       where nspname not like 'pg\\_%' and nspname <> 'information_schema'"""
                )
            )
        ]
        for schema in schemas:
            if schema in SERVED_SCHEMAS:
                continue
            # Anything granted to the role elsewhere (by hand, earlier) is taken back.
            con.execute(sa.text(f'revoke all on schema "{schema}" from "{role}"'))
            con.execute(sa.text(f'revoke all on all tables in schema "{schema}" from "{role}"'))
            con.execute(
                sa.text(
                    f'alter default privileges in schema "{schema}" '
                    f'revoke all on tables from "{role}"'
                )
            )
        tables = 0
        for schema in SERVED_SCHEMAS:
            con.execute(sa.text(f'create schema if not exists "{schema}"'))
            con.execute(sa.text(f'revoke create on schema "{schema}" from "{role}"'))
            con.execute(sa.text(f'grant usage on schema "{schema}" to "{role}"'))
            con.execute(sa.text(f'grant select on all tables in schema "{schema}" to "{role}"'))
            con.execute(
                sa.text(
                    f'alter default privileges for role "{owner}" in schema "{schema}" '
                    f'grant select on tables to "{role}"'
                )
            )
            tables += con.execute(
                sa.text("select count(*) from pg_tables where schemaname = :s"), {"s": schema}
            ).scalar_one()
    log.info("role %s may read %d tables in %s of %s", role, tables, SERVED_SCHEMAS, database)
    return {"role": role, "database": database, "schemas": list(SERVED_SCHEMAS), "tables": tables}
