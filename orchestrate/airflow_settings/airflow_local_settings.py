"""Airflow imports ``airflow_local_settings`` in every one of its processes (on the path
through ``orchestrate.scheduler.airflow_env``). In the scheduler only, it imports dbt and
Great Expectations up front (``orchestrate.stages.PRELOADED_MODULES``): the LocalExecutor's
workers are forked from the scheduler and fork each task process in turn, so every dbt task
and quality gate starts with its library loaded instead of importing it again (dbt 2-3 s a
task, GX ~3 s a gate, on a quiet machine; ~10 s each on a busy one).
"""

import sys

if sys.argv[1:2] == ["scheduler"]:
    from orchestrate.stages import preload

    preload()
