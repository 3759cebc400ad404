"""What a benchmark run does, per scale: the steps in order and the ratios the report shows.

Three days of pipeline on one simulated company, so every comparison is on the same data:

1. **full** — the first run on the whole history, every stage of ``orchestrate.stages``:
   ingest, gates, ``dbt build``, churn, CLV and recommender training, scoring,
   recommendations, score marts, publish, CRM writeback, model gate; beside it the
   reference limits (bare read_json, one SQL pass, bare ``lightgbm.train``). Then **spark**: every one of those stages again with the warehouse
   on a local Spark session (``C720_WAREHOUSE=spark``), one process each, on the same data
   and date, in a local dir of its own with a copy of the CRM as simulated: the full run's
   DuckDB steps against Spark's, stage by stage.
2. **incremental** — one simulated day appended, then the same stages called directly
   (the DAG's task functions, one process each): the daily cost of a warehouse with history.
3. **airflow** — one more day appended, then the same pipeline through Airflow's public
   entry point (``python -m orchestrate run --date D``): the orchestration cost; then one
   plain ``dbt build`` of the same date's marts, against the transform DAG's dbt tasks.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.stages import PIPELINE
from orchestrate.stages import STAGES as REGISTRY
from orchestrate.stages import TRAIN

# Disk a run of the whole plan needs, per simulated event, measured 2026-12-07: sources
# 111 B (gzipped events and the CRM, L), warehouse 205 B (events kept raw and staged, M),
# the published snapshot 70 B twice (a publish writes its copy beside the old one), and
# room for DuckDB's spills and the Spark phase's copy. Events per customer-day: 0.31 at
# M, 0.42 at L (a younger company); the larger is assumed.
DISK_BYTES_PER_EVENT = 600
EVENTS_PER_CUSTOMER_DAY = 0.42


@dataclass(frozen=True)
class Scale:
    name: str
    customers: int
    days: int
    note: str = ""

    @property
    def disk_bytes(self) -> int:
        """About the free disk the scratch folder needs for the whole plan."""
        return int(self.customers * self.days * EVENTS_PER_CUSTOMER_DAY * DISK_BYTES_PER_EVENT)


SCALES: dict[str, Scale] = {
    "XS": Scale("XS", 300, 30, "smoke test of the harness (ingest only by default)"),
    "S": Scale("S", 10_000, 365),
    "M": Scale("M", 100_000, 730),
    "L": Scale("L", 1_000_000, 365, "not run here: see README, Benchmarks"),
}


@dataclass(frozen=True)
class Step:
    phase: str  # full | spark | incremental | airflow | setup
    stage: str  # a key of bench.stages.STAGES

    @property
    def id(self) -> str:
        return f"{self.phase}/{self.stage}"


# The daily pipeline in the order the DAG chain runs it (dags/customer720_ingest.py → transform
# → train → score), training included.
DAILY = [bench_name for bench_name, _ in PIPELINE]
# The training stages (the weekly DAG): a daily run goes without them.
TRAINING = tuple(bench for bench, name in PIPELINE if REGISTRY[name].step == TRAIN)

# Every daily stage again with the warehouse on Spark, after the full run (same data, same
# day), each its own process as a DAG task is: Spark state persists in its metastore.
SPARK = [f"spark_{stage}" for stage in DAILY]

# Reference limits run right after the stage they bound, on the same warehouse state.
REFERENCES = {
    "ingest_events": "ref_read_json",
    "quality_raw": "ref_sql_720",
    "train_churn": "ref_lightgbm",
}


def full_plan() -> list[Step]:
    # the CRM as simulated, for the Spark phase (the full run's writeback changes the source)
    steps = [Step("setup", "simulate"), Step("setup", "spark_crm")]
    for stage in DAILY:
        steps.append(Step("full", stage))
        if stage in REFERENCES:
            steps.append(Step("reference", REFERENCES[stage]))
    steps += [Step("spark", stage) for stage in SPARK]
    steps.append(Step("setup", "append_day"))
    steps += [Step("incremental", stage) for stage in DAILY]
    steps.append(Step("setup", "append_day"))
    steps.append(Step("setup", "airflow_prepare"))  # `orchestrate run` migrates again: a no-op
    steps.append(Step("airflow", "airflow"))
    steps.append(Step("airflow", "dbt_plain"))  # the same date's marts, one plain dbt build
    return steps


# Scale XS: the cheapest steps that still give two ratios (the harness's smoke test).
SMOKE = [
    Step("setup", "simulate"),
    Step("full", "ingest_events"),
    Step("reference", "ref_read_json"),
    Step("setup", "append_day"),
    Step("incremental", "ingest_events"),
]


def plan_for(scale: Scale, only: list[str] | None = None) -> list[Step]:
    """The scale's steps; ``only`` keeps the named step ids (``phase/stage``) in order."""
    steps = SMOKE if scale.name == "XS" else full_plan()
    if only:
        unknown = set(only) - {s.id for s in full_plan()}
        if unknown:
            raise ValueError(f"unknown step(s): {', '.join(sorted(unknown))}")
        steps = [s for s in full_plan() if s.id in only]
    return steps


# (name, numerator step id, denominator step id, what it means). A time ratio: ours / the
# other, so 1.0 is parity and 2.0 twice as long. Reference steps use their timed core.
RATIOS = [
    (
        "ingest_vs_limit",
        "full/ingest_events",
        "reference/ref_read_json",
        "load_events vs bare DuckDB read_json into a table",
    ),
    (
        "dbt_full_vs_sql_reference",
        "full/dbt_build",
        "reference/ref_sql_720",
        "dbt build (full) vs one hand-written SQL pass of the core 720° aggregates",
    ),
    (
        "train_churn_vs_bare_lightgbm",
        "full/train_churn",
        "reference/ref_lightgbm",
        "train_churn (labels, fit, calibration, evaluation, registry) vs bare lightgbm.train",
    ),
    (
        "spark_dbt_vs_duckdb",
        "spark/spark_dbt_build",
        "full/dbt_build",
        "dbt build of the marts on Spark local[*] vs on DuckDB (same data, 2 cores)",
    ),
    (
        "spark_ingest_vs_duckdb",
        "spark/spark_ingest_events",
        "full/ingest_events",
        "load_events into the Spark warehouse (DuckDB raw store + Parquet hand-off) vs DuckDB",
    ),
    (
        "dbt_incremental_vs_full",
        "incremental/dbt_build",
        "full/dbt_build",
        "dbt build after one appended day vs the first full build",
    ),
    (
        "ingest_incremental_vs_full",
        "incremental/ingest_events",
        "full/ingest_events",
        "load_events of one new day vs the whole history",
    ),
]
