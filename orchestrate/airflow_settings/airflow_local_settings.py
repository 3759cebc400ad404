"""Airflow imports ``airflow_local_settings`` in every one of its processes (on the path
through ``orchestrate.scheduler.airflow_env``). In the scheduler only, it imports dbt up
front: the LocalExecutor's workers are forked from the scheduler and fork each task
process in turn, so every dbt task starts with dbt loaded instead of importing it again (2-3 s a task on a quiet machine, ~10 s on a busy one).
"""

import sys

if sys.argv[1:2] == ["scheduler"]:
    import dbt.cli.main  # noqa: F401
