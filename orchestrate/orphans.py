"""Fail the DAG runs that a killed ``airflow dags test`` left "running".

``make run`` runs each DAG with ``airflow dags test``; Ctrl-C there kills the process but
leaves its run, and the task it was in, "running" in Airflow's metadata DB. Nothing will
ever finish them, and with ``max_active_runs`` they hold back that DAG's next runs in the
UI. ``python -m orchestrate ui`` runs this (in Airflow's environment, before the scheduler
starts, and only when no ``python -m orchestrate run`` holds the chain lock) to mark them
failed, so the UI shows what happened and schedules normally.

    python -m orchestrate.orphans           # prints the failed runs as JSON
"""

from __future__ import annotations

import json
import sys


def fail_orphaned_test_runs() -> list[dict[str, str]]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, State, TaskInstanceState
    from airflow.utils.types import DagRunTriggeredByType
    from sqlalchemy import select

    failed = []
    with create_session() as session:
        runs = session.scalars(
            select(DagRun).where(
                DagRun.state == DagRunState.RUNNING,
                DagRun.triggered_by == DagRunTriggeredByType.TEST,
            )
        ).all()
        for run in runs:
            for ti in run.get_task_instances(session=session):
                if ti.state not in State.finished:
                    ti.state = TaskInstanceState.FAILED
            run.set_state(DagRunState.FAILED)
            failed.append({"dag_id": run.dag_id, "run_id": run.run_id})
    return failed


if __name__ == "__main__":
    json.dump(fail_orphaned_test_runs(), sys.stdout)
