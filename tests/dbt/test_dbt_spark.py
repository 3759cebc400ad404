"""The whole pipeline on Apache Spark (a local session) gives what it gives on DuckDB.

One simulated company runs the daily chain with training on a DuckDB warehouse and on a
Spark warehouse (C720_WAREHOUSE=spark: the DuckDB raw store, handed to Spark as Parquet):
every stage of the registry (orchestrate.stages), as the DAG tasks call them: ingest, the
raw gate, the `marts` build with its tests, the marts gate, churn and recommender training,
scoring, the `score_marts` build, the scores gate, publish and the CRM writeback, each run
into its own copy of the CRM. Spark's tables are Parquet files under
spark.sql.warehouse.dir; DuckDB reads them, so the comparison needs no second JVM.
Compared: per mart, row count, key set and key aggregates; ml.customer_features row for
row; churn scores within a tolerance; recommendations; the published snapshot; the CRM.

Cost: one Spark JVM (the Spark run is one process); skipped when pyspark is not installed
(`make test` installs the `spark` extra).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
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
    """Run a tool with this test's settings; its output (stdout then stderr)."""
    full = {**os.environ, "DO_NOT_TRACK": "1", "DBT_SEND_ANONYMOUS_USAGE_STATS": "False", **env}
    proc = subprocess.run(args, env=full, capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-5000:]}\n{proc.stderr[-5000:]}"
    return proc.stdout + proc.stderr


# The whole daily chain with training, in one process (one Spark session): every stage of
# the registry in run order, gates included, as the DAG tasks call them (orchestrate.stages).
PIPELINE = (
    "import json, logging; logging.basicConfig(level=logging.INFO)\n"
    "from customer720.settings import get_settings\n"
    "from orchestrate.preflight import check_sources\n"
    "from orchestrate.stages import run_stage, stages\n"
    "as_of = check_sources(get_settings()).newest\n"
    "seconds = {}\n"
    "for stage in stages():\n"
    "    result = run_stage(stage.name, as_of)\n"
    "    result.save()\n"
    "    seconds[stage.name] = result.seconds\n"
    "print('STAGE_SECONDS', json.dumps(seconds))\n"
)


def _env(local: Path, sources: Path, warehouse: str | None) -> dict[str, str]:
    env = {"C720_LOCAL_DIR": str(local), "C720_SOURCES_DIR": str(sources)}
    if warehouse:
        env["C720_WAREHOUSE"] = warehouse
    return env


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same company run through the whole pipeline on DuckDB and on Spark: the DuckDB
    file, Spark's dir, each run's local dir and CRM."""
    root = tmp_path_factory.mktemp("spark_vs_duckdb")
    sources = root / "sources"
    _run(
        [PY, "-m", "simulator", "--customers", "150", "--days", "200", "--seed", "11"]
        + ["--out", str(sources)],
        _env(root / "duck", sources, None),
    )
    runs = {"duckdb": _env(root / "duck", sources, None)}
    runs["spark"] = _env(root / "spark", sources, "spark")
    for name, env in runs.items():
        # Each run writes its scores back to its own copy of the CRM it read.
        crm = root / f"crm-{name}.sqlite"
        shutil.copyfile(sources / "crm.sqlite", crm)
        env["C720_CRM_URL"] = f"sqlite:///{crm}"
        out = _run([PY, "-c", PIPELINE], env)
        # Each stage's seconds, for the cost of the test (read them with -s or in the file).
        timing = next(line for line in out.splitlines() if line.startswith("STAGE_SECONDS"))
        (root / f"stage-seconds-{name}.json").write_text(timing.split(" ", 1)[1])
    return {
        "duckdb": root / "duck" / "warehouse.duckdb",
        "spark": root / "spark" / "spark",
        "duck_local": root / "duck",
        "spark_local": root / "spark",
        "duck_crm": root / "crm-duckdb.sqlite",
        "spark_crm": root / "crm-spark.sqlite",
    }


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


# Same matrix, seed and threads: LightGBM's scores agree to float noise; the tolerance allows
# for the last digits of sums computed in another order (Spark's shuffles vs DuckDB).
SCORE_TOLERANCE = 1e-3


def _scores(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, float]:
    rows = con.execute(f"select customer_key, churn_probability from {relation}").fetchall()
    return {str(k): float(p) for k, p in rows}


def test_churn_scores_equal_duckdb_within_tolerance(built: dict[str, Path]) -> None:
    """Trained and scored on each engine from its own warehouse: the same customers get a
    score, and the scores agree (the score mart read from Spark's tables)."""
    con = duckdb.connect(str(built["duckdb"]), read_only=True)
    try:
        duck = _scores(con, "marts.customer_churn_scores")
        spark = _scores(con, _spark_table(built["spark"], "marts", "customer_churn_scores"))
    finally:
        con.close()
    assert len(duck) > 50
    assert spark.keys() == duck.keys()
    worst = max(abs(spark[k] - duck[k]) for k in duck)
    assert worst <= SCORE_TOLERANCE, f"largest churn probability difference {worst}"


def test_recommendations_equal_duckdb(built: dict[str, Path]) -> None:
    """The same lists, product for product and rank for rank, on both engines (each ranked
    by the model its own run trained): candidates, features and the ranker see the same
    rows in the same order."""
    con = duckdb.connect(str(built["duckdb"]), read_only=True)
    try:
        query = "select customer_key, rank, product_id from {} order by 1, 2"
        duck = con.execute(query.format("marts.customer_recommendations")).fetchall()
        spark_rel = _spark_table(built["spark"], "marts", "customer_recommendations")
        spark = con.execute(query.format(spark_rel)).fetchall()
    finally:
        con.close()
    assert len(duck) > 0
    assert {(k, r) for k, r, _ in spark} == {(k, r) for k, r, _ in duck}
    assert spark == duck


def _published(path: Path) -> dict[str, int]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return dict(
            con.execute(
                "select table_schema || '.' || table_name, row_count from meta.publish_manifest"
            ).fetchall()
        )
    finally:
        con.close()


def test_published_snapshot_matches_duckdb(built: dict[str, Path]) -> None:
    """The Parquet-built snapshot BI tools read: whole (its manifest holds), the same marts
    with the same row counts as the DuckDB run's."""
    from activate.publish import check_snapshot

    spark_snapshot = built["spark_local"] / "published.duckdb"
    check = check_snapshot(spark_snapshot)
    assert check.ok, check
    duck = _published(built["duck_local"] / "published.duckdb")
    assert "marts.customer_churn_scores" in duck
    assert _published(spark_snapshot) == duck


def test_crm_writeback_matches_duckdb(built: dict[str, Path]) -> None:
    """The CRM received the same contacts' scores from the Spark run as from DuckDB's."""
    rows = {}
    for name in ("duck_crm", "spark_crm"):
        with sqlite3.connect(built[name]) as crm:
            rows[name] = {
                str(contact): (probability, products)
                for contact, probability, products in crm.execute(
                    "select contact_id, churn_probability, next_best_products "
                    "from c720_customer_scores where churn_probability is not null"
                )
            }
    duck, spark = rows["duck_crm"], rows["spark_crm"]
    assert len(duck) > 20  # the contacts with marketing consent among the scored
    assert spark.keys() == duck.keys()
    assert max(abs(spark[c][0] - duck[c][0]) for c in duck) <= SCORE_TOLERANCE
    assert {c: v[1] for c, v in spark.items()} == {c: v[1] for c, v in duck.items()}
