"""Apache Spark as the warehouse (``C720_WAREHOUSE=spark`` or ``spark://host:port``).

What runs where (README "Scale out on Spark"):

- **Raw layer**: ingest validates every record against the contract in DuckDB and lands
  it in a DuckDB *raw store* (``<C720_SPARK_DIR>/raw_store.duckdb``), exactly as it does for a
  DuckDB warehouse: one implementation of the contract, quarantine, watermarks and
  idempotent re-loads (they need deletes in a transaction, which Spark's Parquet tables
  lack without Delta/Iceberg). At the end of each load the raw tables are handed to Spark
  as Parquet (``export_raw``): ``<C720_SPARK_DIR>/raw/<table>/``, web events partitioned
  by load date. dbt registers them as external tables of database ``raw``.
- **Transform**: the dbt project on Spark (``dbt-spark``, ``method: session``: dbt runs
  in this process and drives the session this module configures), tables in
  ``spark.sql.warehouse.dir`` with a Derby metastore under ``C720_SPARK_DIR``.
- **Readers** (quality gates, ML, publish) query Spark through ``customer720.warehouse``.

``spark_conf`` is the one owner of the session's settings: the dbt profile reads it from
``DBT_SPARK_CONF`` (``Settings.tool_env``), and ``session`` builds the same session, so
dbt and our own readers in one process share one SparkSession.
"""

from __future__ import annotations

import json
import logging
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from customer720.settings import Settings, get_settings

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

RAW_SCHEMA = "raw"
# Raw tables partitioned by the date of their load time: a day's load is new folders.
PARTITIONED = {"web_events": "_loaded_at"}
PARTITION_COLUMN = "_load_date"


class SparkUnavailable(RuntimeError):
    """pyspark is not installed, or the session cannot start; the message says how to fix."""


def spark_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings of the warehouse session (dbt's profile uses the same)."""
    root = settings.spark_dir
    conf = {
        "spark.master": settings.spark_master,
        "spark.app.name": "customer720",
        "spark.sql.warehouse.dir": (root / "warehouse").as_uri(),
        # The catalog persists across processes (ingest, dbt, ML run as separate tasks):
        # Hive's embedded Derby metastore, one process at a time, like a DuckDB file.
        "spark.sql.catalogImplementation": "hive",
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={root / 'metastore_db'};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={root}",
        # Timestamps are naive UTC end to end, as in DuckDB and Postgres: DuckDB's Parquet
        # TIMESTAMP reads as TIMESTAMP_NTZ, and so does `timestamp` in our SQL.
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.timestampType": "TIMESTAMP_NTZ",
        # Partition folders (web events by load date) are found on disk at each query, not
        # kept in the metastore: a load adds folders without a `msck repair`.
        "spark.sql.hive.manageFilesourcePartitions": "false",
        # A few partitions per shuffle: the default 200 is for clusters; on 2 cores each
        # tiny task costs more than its work. A cluster sets its own (C720_SPARK_CONF).
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "true",
        # pandas <-> Spark through Arrow (toPandas / createDataFrame), no row pickling
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # Parquet tables replace partitions, not whole tables, on insert overwrite
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
    }
    conf.update(dict(settings.spark_conf))
    return conf


def conf_json(settings: Settings) -> str:
    """``spark_conf`` for dbt's profile (``DBT_SPARK_CONF``, read with ``as_native``)."""
    return json.dumps(spark_conf(settings), sort_keys=True)


_session: SparkSession | None = None


def session(settings: Settings | None = None) -> SparkSession:
    """The process's SparkSession for the warehouse (started once, ~10-40 s)."""
    global _session
    settings = settings or get_settings()
    if _session is not None and _session.sparkContext._jsc is not None:
        return _session
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise SparkUnavailable(
            "C720_WAREHOUSE names a Spark warehouse but pyspark is not installed: "
            "`make spark` (make test installs it)"
        ) from exc
    settings.spark_dir.mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in spark_conf(settings).items():
        builder = builder.config(key, value)
    log.info("starting Spark (%s)", settings.spark_master)
    _session = builder.enableHiveSupport().getOrCreate()
    _session.sparkContext.setLogLevel("ERROR")
    register_raw(_session, settings)
    return _session


def register_raw(spark: SparkSession, settings: Settings) -> None:
    """The raw hand-off's tables in database ``raw`` (as dbt's on-run-start hook
    register_raw_tables does for a dbt run), for readers that check raw rows."""
    root = raw_dir(settings)
    if not root.exists():
        return
    spark.sql(f"create database if not exists {RAW_SCHEMA}")
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        spark.sql(f"drop table if exists {RAW_SCHEMA}.{folder.name}")
        spark.sql(f"create table {RAW_SCHEMA}.{folder.name} using parquet location '{folder}'")


def replace_rows(
    df: pd.DataFrame, schema: str, table: str, where: dict[str, Any], settings: Settings
) -> int:
    """``customer720.warehouse.replace_rows`` on Spark: the table's rows that do not match
    ``where`` plus ``df``, written as a new table that then takes the old one's name
    (Parquet tables have no DELETE; a table cannot be overwritten while it is read)."""
    spark = session(settings)
    spark.sql(f"create database if not exists {schema}")
    name = f"{schema}.{table}"
    incoming = spark.createDataFrame(df) if len(df) else None
    if spark.catalog.tableExists(name):
        existing = spark.table(name)
        if where:
            keep = " and ".join(f"{k} = {_literal(v)}" for k, v in where.items())
            existing = existing.where(f"not coalesce({keep}, false)")
        else:
            existing = existing.limit(0)
        if incoming is not None:
            incoming = incoming.selectExpr(
                *(
                    f"cast({f.name} as {f.dataType.simpleString()}) as {f.name}"
                    for f in existing.schema
                )
            )
            existing = existing.unionByName(incoming)
        staged = f"{schema}.{table}__replacing"
        spark.sql(f"drop table if exists {staged}")
        existing.write.format("parquet").saveAsTable(staged)
        spark.sql(f"drop table {name}")
        spark.sql(f"alter table {staged} rename to {name}")
    elif incoming is not None:
        incoming.write.format("parquet").saveAsTable(name)
    log.info("wrote %d rows to %s", len(df), name)
    return len(df)


def _literal(value: Any) -> str:
    import datetime as dt

    if isinstance(value, dt.datetime):
        return f"timestamp '{value:%Y-%m-%d %H:%M:%S}'"
    if isinstance(value, dt.date):
        return f"date '{value.isoformat()}'"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def stop_session() -> None:
    """Stop the process's SparkSession (the JVM exits with the process anyway)."""
    global _session
    if _session is not None:
        _session.stop()
        _session = None


def raw_dir(settings: Settings) -> Path:
    return settings.spark_dir / "raw"


def export_raw(con: duckdb.DuckDBPyConnection, settings: Settings) -> list[str]:
    """Write every table of the raw store's ``raw`` schema as Parquet for Spark.

    A whole table is rewritten each load (DuckDB writes Parquet at ~1 GB/s; erasure and
    re-loads may change old rows too) into a new folder that then replaces the old one,
    so a reader never sees half a table. Returns the tables written."""
    tables = [
        row[0]
        for row in con.execute(
            "select table_name from information_schema.tables where table_schema = ? "
            "order by table_name",
            [RAW_SCHEMA],
        ).fetchall()
    ]
    root = raw_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    for table in tables:
        final = root / table
        fresh = root / f".{table}.{uuid.uuid4().hex[:8]}"
        if table in PARTITIONED:
            source = (
                f'select *, cast("{PARTITIONED[table]}" as date) as {PARTITION_COLUMN} '
                f'from {RAW_SCHEMA}."{table}"'
            )
            options = f"format parquet, partition_by ({PARTITION_COLUMN})"
        else:
            source = f'select * from {RAW_SCHEMA}."{table}"'
            options = "format parquet"
        fresh.mkdir()
        # An empty table as one file: Spark infers a table's schema from its files.
        empty = con.execute(f'select count(*) = 0 from {RAW_SCHEMA}."{table}"').fetchone()[0]
        if empty:
            source, options = f'select * from {RAW_SCHEMA}."{table}"', "format parquet"
        target = fresh if table in PARTITIONED and not empty else fresh / "part-0.parquet"
        con.execute(f"copy ({source}) to '{target}' ({options})")
        if final.exists():
            old = root / f".{table}.old-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            fresh.rename(final)
            shutil.rmtree(old)
        else:
            fresh.rename(final)
    log.info("raw layer handed to Spark as Parquet: %d tables in %s", len(tables), root)
    return tables


def copy_schema_to_duckdb(
    con: duckdb.DuckDBPyConnection, schema: str, settings: Settings
) -> list[str]:
    """Copy every table of Spark's ``schema`` into the same schema of DuckDB ``con``, for
    the published snapshot (BI tools read one DuckDB file, whichever engine built it).

    A table whose files are on this machine's filesystem (a local session, or a cluster's
    shared folder) is read by DuckDB from its Parquet files directly; elsewhere (HDFS,
    object stores) or partitioned, it comes through the driver as Arrow. Returns the
    tables copied."""
    spark = session(settings)
    con.execute(f'create schema if not exists "{schema}"')
    if not spark.catalog.databaseExists(schema):
        return []
    copied = []
    for table in sorted(spark.catalog.listTables(schema), key=lambda t: t.name):
        if table.isTemporary or table.tableType == "VIEW":
            continue
        target = f'"{schema}"."{table.name}"'
        location = _location(spark, f"{schema}.{table.name}")
        local = location.startswith(("file:", "/"))
        files = Path(location.removeprefix("file:")) if local else None
        # Partition columns live in folder names, not in the files: such tables go by Arrow.
        partitioned = any(
            c.isPartition for c in spark.catalog.listColumns(f"{schema}.{table.name}")
        )
        if files is not None and not partitioned and any(files.rglob("*.parquet")):
            con.execute(
                f"create or replace table {target} as select * from "
                f"read_parquet('{files}/**/*.parquet', hive_partitioning = false)"
            )
        else:
            rows = spark.table(f"{schema}.{table.name}").toArrow()
            con.register("_spark_rows", rows)
            con.execute(f"create or replace table {target} as select * from _spark_rows")
            con.unregister("_spark_rows")
        copied.append(table.name)
    log.info("copied %d Spark tables of %s to DuckDB", len(copied), schema)
    return copied


def _location(spark: SparkSession, name: str) -> str:
    rows = spark.sql(f"describe table extended {name}").collect()
    return next((str(r.data_type) for r in rows if r.col_name == "Location"), "")
