"""dbt models as Airflow tasks with astronomer-cosmos: one task per model, with its tests.

The fast path: the graph is read from dbt's ``manifest.json`` (LoadMode.DBT_MANIFEST, no
``dbt ls`` at parse time) and every task runs dbt in the worker's process through
dbtRunner (InvocationMode.DBT_RUNNER, no subprocess). ``TestBehavior.BUILD`` makes each
task a ``dbt build --select <model>``: the model and its tests, so a failed test fails
the model's task and stops what depends on it.

What it costs is in the README ("What orchestration costs"): every task pays dbt's
start-up (partial-parse check, adapter and connection, the on-run-start hook) one after
another — DuckDB takes one writer at a time — about a second of CPU a task. Cosmos's watcher mode (one
``dbt build`` in a producer task, per-model tasks that report its results) would cost
about 1x, but in Cosmos 1.15 inside a DbtTaskGroup its model tasks poll in parallel with
the producer (a one-task-at-a-time runner such as ``airflow dags test`` waits forever),
and made to wait for the producer, the tests task of a model with only unit tests never
got a status and polled forever; so we use local mode.

The manifest is made by ``python -m orchestrate prepare`` (``dbt parse``;
``make run`` and ``make airflow`` call it). DuckDB allows one writing process, so on
DuckDB every dbt task queues in the ``warehouse_writer`` pool of 1; on Postgres they run
in parallel in the default pool.
"""

from __future__ import annotations

import atexit
import gc
from pathlib import Path
from typing import Any

from customer720.dbt import selection
from customer720.settings import WAREHOUSE_POOL, Settings, get_settings

# The run's date comes from the DAG's first task (conf, asset event or logical date).
AS_OF_TEMPLATE = "{{ ti.xcom_pull(task_ids='run_date') }}"


def manifest_path(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).local_dir / "dbt" / "target" / "manifest.json"


class MissingManifestError(FileNotFoundError):
    """The DAG cannot be drawn without dbt's manifest."""


def dbt_task_group(group_id: str, selector: str) -> Any:
    """A Cosmos DbtTaskGroup over the models of a dbt selector (dbt_project/selectors.yml),
    for the run's date.

    Cosmos 1.15 reads ``RenderConfig(selector=...)`` from the manifest too, but keeps the
    parsed selectors in an Airflow Variable (a metadata-DB round trip at every DAG parse):
    the selector is resolved here by ``customer720.dbt.selection``, the same function
    ``run_dbt(selector=...)`` uses.
    """
    from cosmos import (
        DbtTaskGroup,
        ExecutionConfig,
        ProfileConfig,
        ProjectConfig,
        RenderConfig,
    )
    from cosmos.constants import (
        ExecutionMode,
        InvocationMode,
        LoadMode,
        TestBehavior,
        TestIndirectSelection,
    )

    # Cosmos ends every dbt task with a full gc.collect() (to release dbt's adapter
    # semaphores), which walks the whole Airflow + dbt heap each time: freezing what is
    # alive once the DAG is parsed keeps those collections to the task's own objects.
    gc.collect()
    gc.freeze()
    atexit.register(gc.unfreeze)  # at exit, let the last collection see them again
    settings = get_settings()
    select, exclude = selection(selector)
    manifest = manifest_path(settings)
    if not manifest.exists():
        raise MissingManifestError(
            f"dbt manifest {manifest} is missing: run `python -m orchestrate prepare` "
            "(make run / make airflow do) to create it with `dbt parse`"
        )
    env = {k: v for k, v in settings.tool_env().items() if k.startswith(("DBT_", "C720_"))}
    # Each task runs in Cosmos's temporary copy of the project: its target (and dbt's
    # partial-parse file, which holds absolute paths) must stay inside that copy, where
    # Cosmos caches it for the next task. A shared target would hand the next task a
    # parse of a deleted folder.
    env["DBT_TARGET_PATH"] = "target"
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=settings.dbt_project_dir,
            manifest_path=manifest,
            project_name="customer720",
            install_dbt_deps=False,  # no dbt hub packages; nothing may download at run time
            env_vars=env,
        ),
        profile_config=ProfileConfig(
            profile_name="customer720",
            target_name=settings.dbt_target,
            profiles_yml_filepath=settings.dbt_project_dir / "profiles.yml",
        ),
        execution_config=ExecutionConfig(
            execution_mode=ExecutionMode.LOCAL,
            invocation_mode=InvocationMode.DBT_RUNNER,
            # A model's task runs only the tests whose parents are all built by then ...
            test_indirect_selection=TestIndirectSelection.CAUTIOUS,
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            select=select,
            exclude=exclude,
            enable_mock_profile=False,
            # ... and a test of several models (relationships) is its own task after all of
            # them: in a fresh warehouse the other model does not exist yet.
            should_detach_multiple_parents_tests=True,
        ),
        operator_args={
            "vars": {
                "as_of": AS_OF_TEMPLATE,
                "cutoff_step_days": settings.cutoff_step_days,
                "cutoff_count": settings.cutoff_count,
                "churn_horizon_days": settings.churn_horizon_days,
                "cutoff_anchor_date": settings.cutoff_anchor_date,
            },
            "pool": "default_pool" if settings.warehouse_is_postgres else WAREHOUSE_POOL,
            "install_deps": False,
            # Our DAGs are linked by their own assets (orchestrate/dag_support.py); Cosmos's
            # per-table assets would only add lineage parsing and asset rows to every task.
            "emit_datasets": False,
            # Nothing reads a task's manifest.json / run_results.json (its folder is
            # temporary); writing them was a fifth of each task's dbt time.
            "dbt_cmd_flags": ["--no-write-json"],
        },
    )
