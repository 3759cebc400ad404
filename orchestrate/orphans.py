"""Fail the DAG runs that a stopped run left "running" or "queued".

``make run`` runs the chain through an Airflow scheduler it starts (or ``make airflow``'s).
Ctrl-C there (or a killed terminal) stops that scheduler but leaves its runs, and their
tasks, "running" or "queued" in Airflow's metadata DB. A scheduler started later would
adopt them and run them again (an old date, in front of the new run: one active run per
DAG). ``python -m orchestrate ui`` and a ``run`` starting its own scheduler run this
first — in Airflow's environment, while no scheduler serves this Airflow home and no other
run holds the chain lock — to mark them failed, so the UI shows what happened.

It also pauses again the DAGs such a run had unpaused for itself (named as arguments;
the run writes them to ``<airflow home>/unpaused_by_run.json``): left unpaused, the next
scheduler would start their daily / weekly runs of its own.

Called by ``python -m orchestrate.airflow_db --orphans FILE [DAG_ID ...]``, which
prepares the metadata DB first, in the same process.
"""

from __future__ import annotations


def fail_orphaned_runs(pause: list[str]) -> list[dict[str, str]]:
    from airflow.models.dag import DagModel
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from sqlalchemy import select

    failed = []
    with create_session() as session:
        for dag in session.scalars(select(DagModel).where(DagModel.dag_id.in_(pause))):
            dag.is_paused = True
        runs = session.scalars(
            select(DagRun).where(DagRun.state.in_([DagRunState.RUNNING, DagRunState.QUEUED]))
        ).all()
        for run in runs:
            state = str(run.state.value if hasattr(run.state, "value") else run.state)
            for ti in run.get_task_instances(session=session):
                if ti.state not in State.finished:
                    ti.state = TaskInstanceState.FAILED
            run.set_state(DagRunState.FAILED)
            failed.append({"dag_id": run.dag_id, "run_id": run.run_id, "state": state})
    return failed
