"""Shared fixtures: every test gets its own .local/ and, when asked, its own Postgres DB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from customer720.settings import postgres_test_url

PG_ADMIN_URL = postgres_test_url()


@pytest.fixture
def local_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every setting at a fresh folder (warehouse, sources, models, reports)."""
    local = tmp_path / "local"
    monkeypatch.setenv("C720_LOCAL_DIR", str(local))
    for name in (
        "C720_SOURCES_DIR",
        "C720_CRM_URL",
        "C720_EVENTS_DIR",
        "C720_WAREHOUSE",
        "C720_PUBLISHED",
        "C720_MODEL_DIR",
        "C720_REPORTS_DIR",
        "C720_TRUTH_DIR",
        "AIRFLOW_HOME",
    ):
        monkeypatch.delenv(name, raising=False)
    return local


def _admin_engine() -> sa.Engine:
    return sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty Postgres database on the local server, dropped afterwards."""
    name = f"c720_test_{uuid.uuid4().hex[:10]}"
    engine = _admin_engine()
    try:
        with engine.connect() as con:
            con.execute(sa.text(f'create database "{name}"'))
    except sa.exc.OperationalError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"no Postgres server at {PG_ADMIN_URL}: {exc.orig}")
    url = sa.make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with engine.connect() as con:
            con.execute(sa.text(f'drop database if exists "{name}" with (force)'))
        engine.dispose()
