"""Bounded memory (#18): a step that spilled to disk must not stop the next one.

DuckDB refuses to set ``temp_directory`` again once a spill has used it, even to the same
path; dbt-duckdb SETs its profile's settings on every model's cursor, and the stages open
the warehouse again and again in one process (``airflow dags test``, the stage runner).
At 50k customers a build spilled and the next model failed ("Cannot switch temporary
directory"): neither the profile nor ``customer720.warehouse`` may set it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from customer720 import warehouse
from customer720.settings import get_settings


def test_a_connection_after_a_spill_opens_and_queries(
    local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("C720_DUCKDB_MEMORY_LIMIT", "100MB")
    with warehouse.duckdb_connection() as con:
        con.execute("set preserve_insertion_order = false")
        con.execute(
            "create table t as select range as i, random() as r, repeat('x', 50) as s "
            "from range(5000000)"
        )
        con.execute("create table spilled as select * from t order by r")
        # it did spill: DuckDB's temp directory next to the file holds its blocks
        spill_dir = Path(con.execute("select current_setting('temp_directory')").fetchall()[0][0])
        assert spill_dir.parent == get_settings().warehouse_path.parent
        # a second connection of the same process (as the next stage or dbt model opens)
        with warehouse.duckdb_connection() as again:
            assert again.execute("select count(*) from spilled").fetchall() == [(5_000_000,)]


def test_dbt_profile_never_sets_the_temp_directory() -> None:
    """dbt-duckdb runs ``SET <key>`` for every profile setting on every model's cursor."""
    profile = yaml.safe_load(
        (Path(__file__).resolve().parents[1] / "dbt_project" / "profiles.yml").read_text()
    )
    settings = profile["customer720"]["outputs"]["duckdb"].get("settings", {})
    assert "memory_limit" in settings
    assert "temp_directory" not in settings
