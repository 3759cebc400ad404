"""The benchmarked stages: the pipeline's own from its registry (orchestrate.stages, what the
Airflow tasks call), the same on a Spark warehouse (``spark_*``), plus the bench-only ones:
simulate, append_day, spark_crm, airflow, references.

Every stage takes one ``params`` dict (JSON: ``as_of`` as ISO text, scale facts) and
returns a small JSON-serialisable summary. They run in a child process each
(``bench.measure``), with ``C720_LOCAL_DIR`` pointing at the benchmark's scratch folder,
so every path comes from ``customer720.settings`` as in a real run.

The reference limits (``ref_*``) live in ``bench.reference``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from orchestrate.stages import stages

Params = dict[str, Any]
Stage = Callable[[Params], dict]


def _as_of(params: Params) -> date:
    return date.fromisoformat(params["as_of"])


def simulate(params: Params) -> dict:
    from customer720.settings import get_settings
    from simulator.__main__ import main

    out = get_settings().sources_dir
    args = ["--customers", str(params["customers"]), "--days", str(params["days"])]
    code = main([*args, "--seed", str(params.get("seed", 7)), "--out", str(out), "-q"])
    if code:
        raise RuntimeError(f"simulator exited with {code}")
    return {"out": str(out)}


def append_day(params: Params) -> dict:
    from customer720.settings import get_settings
    from simulator.__main__ import main

    code = main(["--append-days", "1", "--out", str(get_settings().sources_dir), "-q"])
    if code:
        raise RuntimeError(f"simulator --append-days exited with {code}")
    return {}


def _registry(name: str) -> Stage:
    """A stage of the pipeline's registry (orchestrate.stages): its summary, nothing else."""

    def run(params: Params) -> dict:
        from orchestrate.stages import run_stage

        return run_stage(name, _as_of(params)).summary

    run.__name__ = name
    return run


SPARK_RUN = "spark-run"  # the Spark phase's C720_LOCAL_DIR, a folder of the scratch


def _spark_run_dir() -> Path:
    """Where the Spark phase keeps its state, inside this step's scratch (C720_LOCAL_DIR)."""
    from customer720.settings import get_settings

    return get_settings().local_dir / SPARK_RUN


def spark_crm(params: Params) -> dict:
    """A copy of the CRM as simulated, for the Spark phase: its ingest reads the same CRM
    the full run's did (before that run's writeback), and its writeback writes there."""
    import shutil

    from customer720.settings import get_settings

    run_dir = _spark_run_dir()
    run_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(get_settings().sources_dir / "crm.sqlite", run_dir / "crm.sqlite")
    return {"crm": str(run_dir / "crm.sqlite")}


def _on_spark(name: str) -> Stage:
    """A registry stage with the warehouse on a local Spark session (C720_WAREHOUSE=spark),
    on the same company and date as the DuckDB steps. Its own process (bench.measure), so
    the settings stay there. The Spark phase has a local dir of its own (``spark-run/``:
    Spark's tables and metastore, models, dbt's target, the snapshot, the CRM copy of
    ``spark_crm``), so it neither reads the DuckDB run's models and partial-parse state
    nor leaves its own for the incremental phase; the sources are the scratch's."""

    def run(params: Params) -> dict:
        import os

        from customer720.settings import get_settings

        sources, run_dir = get_settings().sources_dir, _spark_run_dir()
        crm = run_dir / "crm.sqlite"
        if not crm.exists():
            raise RuntimeError(f"{crm} is missing: run the step setup/spark_crm first")
        os.environ.update(
            C720_WAREHOUSE="spark",
            C720_LOCAL_DIR=str(run_dir),
            C720_SOURCES_DIR=str(sources),
            C720_CRM_URL=f"sqlite:///{crm}",
        )
        summary = _registry(name)(params)
        _stop_jvm()
        return summary

    run.__name__ = f"spark_{name}"
    return run


def _stop_jvm() -> None:
    """End the step's Spark JVM (a child process of this one) and wait for it, so that the
    step's CPU time and peak RSS include Spark's, not only Python's (bench.measure counts
    waited-for children)."""
    import sys

    if "pyspark" not in sys.modules:
        return  # the step started no Spark (ingest lands in the raw store)
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    if SparkContext._active_spark_context is not None:
        SparkContext._active_spark_context.stop()
    if gateway is None:
        return
    proc = getattr(gateway, "proc", None)
    gateway.shutdown()
    if proc is not None:
        proc.stdin.close()  # the gateway JVM exits when its stdin closes
        proc.wait(timeout=120)


def airflow_prepare(params: Params) -> dict:
    """Airflow's metadata DB and pool, made once before the timed run (as a deployment has)."""
    from customer720.settings import get_settings
    from orchestrate.launcher import prepare_airflow

    prepare_airflow(get_settings())
    return {}


def airflow(params: Params) -> dict:
    """The whole daily pipeline through Airflow, by its public entry point."""
    cmd = [sys.executable, "-m", "orchestrate", "run", "--date", params["as_of"]]
    log = Path(params["log_dir"]) / f"airflow-run-{params['as_of']}.log"
    with log.open("w") as out:
        code = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, check=False).returncode
    if code:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(cmd[1:])} exited with {code} (log {log}):\n{tail}")
    from bench.dbt_overhead import dbt_task_times

    # the transform DAG's dbt tasks (for dbt_in_airflow_vs_plain), from Airflow's own DB
    return {"log": str(log), "transform": dbt_task_times()}


def dbt_plain(params: Params) -> dict:
    """One plain ``dbt build`` of the ``marts`` selector (the dbt CLI, its own process)
    for the date the airflow step just built, after a parse for the day before (where a
    daily run finds dbt's partial-parse state, as the airflow step did): the
    denominator of dbt_in_airflow_vs_plain. ``core_seconds`` times the build alone."""
    import resource
    import time

    from bench.dbt_overhead import as_after_the_day_before, time_plain

    day = _as_of(params)
    as_after_the_day_before(day)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    time_plain(day)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - kids.ru_utime - kids.ru_stime
    return {
        "core_seconds": round(time.perf_counter() - start, 2),
        "core_cpu_seconds": round(cpu, 2),
    }


def _reference(name: str) -> Stage:
    def run(params: Params) -> dict:
        from bench import reference

        return getattr(reference, name)(params)

    run.__name__ = name
    return run


# Bench names of the registry stages whose names say less out of context (older reports use them).
BENCH_NAMES = {"marts": "dbt_build", "score_marts": "dbt_scores", "crm_writeback": "writeback"}

# The pipeline's stages in run order, training included: (bench name, registry name). From
# the registry itself, so a stage added there (e.g. CLV) is benchmarked too.
PIPELINE = tuple((BENCH_NAMES.get(s.name, s.name), s.name) for s in stages())

# The stages Airflow runs as tasks (each in a process forked from a scheduler that preloaded
# dbt and GX: orchestrate.stages.PRELOADED_MODULES).
AIRFLOW_TASKS = frozenset(
    name for bench_name, _ in PIPELINE for name in (bench_name, f"spark_{bench_name}")
)

STAGES: dict[str, Stage] = {
    "simulate": simulate,
    "append_day": append_day,
    "spark_crm": spark_crm,
    **{bench_name: _registry(name) for bench_name, name in PIPELINE},
    # the same stages with the warehouse on Spark (local[*]): transform scales out there
    **{f"spark_{bench_name}": _on_spark(name) for bench_name, name in PIPELINE},
    "airflow_prepare": airflow_prepare,
    "airflow": airflow,
    "dbt_plain": dbt_plain,
    "ref_read_json": _reference("bare_read_json"),
    "ref_sql_720": _reference("sql_720"),
    "ref_lightgbm": _reference("bare_lightgbm"),
}
