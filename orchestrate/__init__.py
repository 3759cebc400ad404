"""Airflow glue and the local launcher: the stage registry, what the DAG files share, and
``python -m orchestrate run|backfill|train|prepare|ui|stop``. See orchestrate/README.md."""
