"""C720_WAREHOUSE=spark | spark://...: the settings dbt and our session share (no JVM)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from customer720.settings import SettingsError, get_settings
from customer720.spark import spark_conf


def test_local_session_and_cluster_master(local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C720_WAREHOUSE", "spark")
    settings = get_settings()
    assert settings.warehouse_is_spark and not settings.warehouse_is_postgres
    assert settings.spark_master == "local[*]" and settings.dbt_target == "spark"
    # ingest lands in the raw store, a DuckDB file under C720_SPARK_DIR
    assert settings.warehouse_path == local_dir / "spark" / "raw_store.duckdb"
    monkeypatch.setenv("C720_WAREHOUSE", "spark://10.0.0.5:7077")
    assert get_settings().spark_master == "spark://10.0.0.5:7077"


def test_dbt_profile_gets_the_same_conf(local_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("C720_WAREHOUSE", "spark://127.0.0.1:7077")
    monkeypatch.setenv(
        "C720_SPARK_CONF", "spark.executor.memory=4g; spark.sql.shuffle.partitions=64"
    )
    settings = get_settings()
    env = settings.tool_env()
    conf = json.loads(env["DBT_SPARK_CONF"])
    assert conf == spark_conf(settings)
    assert conf["spark.master"] == "spark://127.0.0.1:7077"
    assert conf["spark.executor.memory"] == "4g"
    assert conf["spark.sql.shuffle.partitions"] == "64"  # the user's value wins
    assert env["DBT_TARGET"] == "spark" and env["DBT_SPARK_DIR"] == str(local_dir / "spark")


def test_bad_spark_conf_names_the_variable(
    local_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("C720_SPARK_CONF", "spark.executor.memory")
    with pytest.raises(SettingsError, match="C720_SPARK_CONF"):
        get_settings()
