"""dbt as Airflow tasks: one ``dbt build`` per layer, each node's result in the task's log.

``dbt_task_group("dbt_marts", "marts", layers=True)`` is a task group with one task per
layer of the selector (``customer720.dbt.LAYERS``: staging with the seeds and the
snapshot → intermediate → marts → ml), each one ``dbt build`` of that layer's models with
their tests; ``dbt_task_group("dbt_score_marts", "score_marts")`` is a single task that
builds the whole selector. A task is one call of the stage registry
(``run_task("marts", as_of, layer=...)``, the same ``customer720.dbt.run_dbt`` every dbt
build of the pipeline goes through), so the DAGs and the commands without Airflow build
the same way.

What a user sees: each task's log lists every model, seed, snapshot and test it ran with
its status and seconds. A failed model or test fails the task at once (``AirflowFailException``,
no retry: ``DbtNodeFailure`` is a data error for ``run_task``) with a message naming it and
the command lines that re-run it (``dbt build --select <model>+`` with the run's vars, or
``dbt retry``); clearing the task re-runs its layer, which is idempotent for the date.
A lock or a lost connection keeps the task's retries.

Why not a task per model (astronomer-cosmos, until issue #21): every task paid Airflow's
task start and dbt's start-up (partial-parse check, adapter, connection, the on-run-start
hook) one after another — DuckDB takes one writer — 31 times a run: the transform DAG took
3.4× a plain ``dbt build`` on the demo. Cosmos's watcher mode (one build, per-model tasks
reporting its results) would cost about 1×, but in Cosmos 1.15 inside a DbtTaskGroup its
model tasks poll in parallel with the producer (a one-task-at-a-time runner such as
``airflow dags test`` waits forever), and made to wait for the producer, the tests task
of a model with only unit tests never got a status and polled forever. Four builds cost
four start-ups; the README's "What orchestration costs" has the measurements.

On DuckDB every dbt task queues in the ``warehouse_writer`` pool of 1 (one writing
process); on Postgres they use the default pool.
"""

from __future__ import annotations

from typing import Any

from customer720.dbt import LAYERS
from customer720.settings import WAREHOUSE_POOL, get_settings


def dbt_task_group(group_id: str, selector: str, *, layers: bool = False) -> Any:
    """The dbt build of a selector of ``dbt_project/selectors.yml`` for the run's date:
    with ``layers``, a task group ``group_id`` with one task per layer, in build order;
    else one task ``group_id``. Returns what ``>>`` chains."""
    from airflow.sdk import TaskGroup, chain, task

    pool = "default_pool" if get_settings().warehouse_is_postgres else WAREHOUSE_POOL

    def build_task(task_id: str, layer: str | None) -> Any:
        doc = (
            f"`dbt build` of selector `{selector}`"
            + (f", layer `{layer}` (`{' '.join(LAYERS[layer])}`)" if layer else "")
            + ": every node's status and time are in the log."
        )

        @task(task_id=task_id, pool=pool, doc_md=doc)
        def dbt_build(**context) -> dict:
            from orchestrate.dag_support import run_date, run_task

            kwargs = {"layer": layer} if layer else {}
            return run_task(selector, run_date(context), **kwargs)

        return dbt_build()

    if not layers:
        return build_task(group_id, None)
    with TaskGroup(
        group_id=group_id, tooltip=f"dbt build --selector {selector}, by layer"
    ) as group:
        chain(*[build_task(layer, layer) for layer in LAYERS])
    return group
