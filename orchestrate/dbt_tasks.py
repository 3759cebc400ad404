"""dbt as an Airflow task: one ``dbt build`` of a selector, each node's result in its log.

``dbt_build_task("dbt_marts", "marts")`` is the task that builds a selector of
``dbt_project/selectors.yml`` for the run's date: one call of the stage registry
(``run_task("marts", as_of)``), so through ``customer720.dbt.run_dbt`` like every dbt build
of the pipeline — the DAGs and the commands without Airflow build the same way.

What a user sees: the task's log lists every model, seed, snapshot and test with its
status and seconds (``SUCCESS model fct_orders 0.41 s``, ``PASS test unique_…``). A failed
model or test fails the task at once (``DbtNodeFailure`` is a data error for ``run_task``:
``AirflowFailException``, no retry) with a message naming it and the command lines that
re-run it (``dbt build --select <model>+`` with the run's settings and vars, or ``dbt
retry`` for the failed and skipped nodes); nothing downstream runs. Clearing the task
re-runs the build, idempotent for its date. A lock or a lost connection keeps the retries.

Why one task, measured (README, "What orchestration costs"): every dbt task pays Airflow's
task start and dbt's start-up (adapter, partial-parse load, the on-run-start hook; the
first build of a day also re-parses the project, as its vars changed), one after another
— DuckDB takes one writer. A task per model (astronomer-cosmos until issue #21, 31 tasks)
cost 3.4x a plain ``dbt build`` on the demo; a task per layer (staging, intermediate,
marts, ml) 1.5-2.3x on the e2e company, where a plain build takes ~30-45 s; one task
costs about what the build does. Cosmos's watcher mode (one build, per-model tasks that
report its results) would too, but in Cosmos 1.15 inside a DbtTaskGroup its model tasks
poll in parallel with the producer (a one-task-at-a-time runner such as ``airflow dags
test`` waits forever), and made to wait for the producer, the tests task of a model with
only unit tests never got a status and polled forever.

On DuckDB the task queues in the ``warehouse_writer`` pool of 1 (one writing process); on
Postgres it uses the default pool.
"""

from __future__ import annotations

from typing import Any

from customer720.settings import WAREHOUSE_POOL, get_settings


def dbt_build_task(task_id: str, selector: str) -> Any:
    """The task that runs ``dbt build`` of ``selector`` for the run's date (the stage of
    the same name in ``orchestrate.stages``); returns what ``>>`` chains."""
    from airflow.sdk import task

    pool = "default_pool" if get_settings().warehouse_is_postgres else WAREHOUSE_POOL

    @task(
        task_id=task_id,
        pool=pool,
        doc_md=f"`dbt build --selector {selector}` for the run's date: every node's status "
        "and time are in the log; a failure names the model or test and how to re-run it.",
    )
    def dbt_build(**context) -> dict:
        from orchestrate.dag_support import run_date, run_task

        return run_task(selector, run_date(context))

    return dbt_build()
