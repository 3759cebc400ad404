"""The dbt project on Apache Spark (a local session) builds the same marts as on DuckDB.

One simulated company is loaded twice, by the same ingest: into a DuckDB warehouse and into
a Spark warehouse (C720_WAREHOUSE=spark: the DuckDB raw store, handed to Spark as Parquet).
Both run the pipeline's two dbt builds (selectors `marts`, `score_marts`) with their tests.
Spark's tables are Parquet files under spark.sql.warehouse.dir; DuckDB reads them, so the
comparison needs no second JVM. Per mart: row count, key set, and key aggregates.

Cost: one Spark JVM (both builds in one process): 206 s for the module on 2 shared cores
(simulation, both ingests and the DuckDB builds included); skipped when pyspark
is not installed (`make test` installs the `spark` extra).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytest.importorskip("pyspark")
pytest.importorskip("dbt.adapters.spark")

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable

# mart -> (key columns, numeric columns whose sums must agree)
MARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dim_customer_720": (
        ("customer_key",),
        ("order_count", "total_revenue", "device_count", "tenure_days", "recency_days"),
    ),
    "fct_orders": (("order_id",), ("total_amount", "net_amount", "item_count")),
    "fct_order_items": (("order_item_id",), ("quantity", "net_line_amount")),
    "fct_sessions": (
        ("session_id",),
        ("duration_seconds", "event_count", "page_views", "cart_value"),
    ),
    "fct_touchpoints": (("touchpoint_id",), ("value", "sentiment")),
    "fct_product_interactions": (("interaction_type", "source_id"), ()),
    "fct_moments_of_impact": (("moment_id",), ("value_amount", "sessions_recent")),
    "dim_products": (("product_id",), ("price",)),
}


def _run(args: list[str], env: dict[str, str]) -> str:
    # Only this test's settings: an earlier test in this worker may have exported its own
    # (customer720.settings.apply_tool_env), e.g. a C720_CRM_URL the simulator would write to.
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("C720_", "DBT_"))}
    full = {**inherited, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", **env}
    proc = subprocess.run(args, env=full, capture_output=True, text=True, timeout=1200, cwd=ROOT)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


BUILD = (
    "import logging; logging.basicConfig(level=logging.INFO)\n"
    "from customer720.dbt import run_dbt\n"
    "run_dbt('build', selector='marts')\n"
    "run_dbt('build', selector='score_marts')\n"
)


def _env(local: Path, sources: Path, warehouse: str | None) -> dict[str, str]:
    env = {"C720_LOCAL_DIR": str(local), "C720_SOURCES_DIR": str(sources)}
    if warehouse:
        env["C720_WAREHOUSE"] = warehouse
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same company built on DuckDB and on Spark: the DuckDB file, Spark's dir."""
    root = tmp_path_factory.mktemp("spark_vs_duckdb")
    sources = root / "sources"
    _run(
        [PY, "-m", "simulator", "--customers", "150", "--days", "200", "--seed", "11"]
        + ["--out", str(sources)],
        _env(root / "duck", sources, None),
    )
    duck_env = _env(root / "duck", sources, None)
    spark_env = _env(root / "spark", sources, "spark")
    for env in (duck_env, spark_env):
        env["C720_CRM_URL"] = f"sqlite:///{sources / 'crm.sqlite'}"
        _run([PY, "-m", "ingest", "all"], env)
        _run([PY, "-c", BUILD], env)
    return {"duckdb": root / "duck" / "warehouse.duckdb", "spark": root / "spark" / "spark"}


def _spark_table(spark_dir: Path, schema: str, table: str) -> str:
    return f"read_parquet('{spark_dir / 'warehouse' / f'{schema}.db' / table}/*.parquet')"


def _facts(con: duckdb.DuckDBPyConnection, relation: str, keys, sums) -> dict:
    key = ", ".join(keys)
    aggregates = "".join(f", round(sum({c}), 4)" for c in sums)
    row = con.execute(
        f"select count(*), count(distinct ({key})){aggregates} from {relation}"
    ).fetchone()
    keyset = {tuple(r) for r in con.execute(f"select {key} from {relation}").fetchall()}
    return {"counts": row, "keys": keyset}


def test_marts_equal_duckdb(built: dict[str, Path]) -> None:
    con = duckdb.connect(str(built["duckdb"]), read_only=True)
    try:
        for mart, (keys, sums) in MARTS.items():
            duck = _facts(con, f"marts.{mart}", keys, sums)
            spark = _facts(con, _spark_table(built["spark"], "marts", mart), keys, sums)
            assert duck["counts"][0] > 0 or mart == "fct_moments_of_impact", mart
            assert spark["counts"] == duck["counts"], mart
            assert spark["keys"] == duck["keys"], mart
    finally:
        con.close()


def test_features_equal_duckdb(built: dict[str, Path]) -> None:
    """ml.customer_features, the churn model's matrix: same rows and the same values."""
    con = duckdb.connect(str(built["duckdb"]), read_only=True)
    try:
        columns = [
            r[0]
            for r in con.execute(
                "select column_name from information_schema.columns "
                "where table_schema = 'ml' and table_name = 'customer_features' order by ordinal_position"
            ).fetchall()
        ]
        spark = _spark_table(built["spark"], "ml", "customer_features")
        cols = ", ".join(columns)
        differ = con.execute(
            f"select count(*) from ((select {cols} from ml.customer_features except all "
            f"select {cols} from {spark}) union all (select {cols} from {spark} except all "
            f"select {cols} from ml.customer_features))"
        ).fetchone()[0]
        rows = con.execute("select count(*) from ml.customer_features").fetchone()[0]
        assert rows > 0
        assert differ == 0
    finally:
        con.close()
