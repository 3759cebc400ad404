"""Shared fixtures: every test gets its own .local/ and, when asked, its own Postgres DB."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from customer720.settings import postgres_test_url

PG_ADMIN_URL = postgres_test_url()

# Settings a test may change: ours, dbt's, Airflow's (AIRFLOW_HOME, AIRFLOW__*).
# customer720.settings.apply_tool_env exports every C720_/DBT_ setting into the process (dbt
# and Airflow read them there), so a run inside one test would otherwise hand its company's
# folders to the next test in the worker. The developer's shell is not the tests' business either: only the Postgres server
# the tests may use (C720_TEST_PG_URL) comes in.
_OWNED = ("C720_", "DBT_", "AIRFLOW")


def _owned_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(_OWNED)}


def _restore_owned(saved: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith(_OWNED) and k not in saved]:
        del os.environ[key]
    os.environ.update(saved)


def pytest_configure(config: pytest.Config) -> None:
    _restore_owned({k: v for k, v in _owned_environ().items() if k == "C720_TEST_PG_URL"})


@pytest.fixture(autouse=True, scope="module")
def _module_settings() -> Iterator[None]:
    """What a test file's fixtures and tests export ends with the file."""
    saved = _owned_environ()
    yield
    _restore_owned(saved)


@pytest.fixture(autouse=True)
def _test_settings() -> Iterator[None]:
    """What a test exports ends with the test (its file's fixtures keep theirs)."""
    saved = _owned_environ()
    yield
    _restore_owned(saved)


@pytest.fixture
def local_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point every setting at a fresh folder (warehouse, sources, models, reports)."""
    local = tmp_path / "local"
    monkeypatch.setenv("C720_LOCAL_DIR", str(local))
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


# The slowest files, slowest first (seconds of a fresh-clone CI run on this 2-core machine).
# `make test` runs a file per worker (--dist loadfile) in collection order
# (--no-loadscope-reorder): started first, the long files overlap the many short ones
# instead of leaving one worker to finish alone.
SLOWEST_FILES = (
    "tests/dbt/test_facts_incremental.py",  # ~480: five scenarios, DuckDB and Postgres
    "tests/dbt/test_dbt_spark.py",  # ~300: the whole chain on DuckDB and on Spark
    "tests/e2e/test_pipeline.py",  # ~280: the DAG chain under a real scheduler
    "tests/dbt/test_dbt_build.py",  # ~200
    "tests/dbt/test_dbt_spark_cluster.py",  # ~190: a standalone Spark cluster
    "tests/app/test_app_browser.py",  # ~150
    "tests/ml/test_model_monitoring.py",  # ~130
    "tests/faults/test_kill_and_rerun.py",
    "tests/faults/test_backfill_order.py",
    "tests/e2e/test_airflow_ui.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOWEST_FILES)}
    root = config.rootpath

    def key(item: pytest.Item) -> int:
        return rank.get(item.path.relative_to(root).as_posix(), len(rank))

    items.sort(key=key)  # stable: the rest keep their order
