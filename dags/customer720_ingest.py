"""
### customer720 ingest (daily)

The first DAG of the chain. For its logical date it

1. **extracts the CRM** tables (incremental on `updated_at`, merged on the primary key),
2. **loads new web/app event files** (a manifest of loaded files; bad records quarantined),
3. runs the **raw quality gate** (Great Expectations) on the date's batch: every source
   loaded (none rejected for more than `C720_QUARANTINE_MAX_RATE` bad records), the
   contract's columns, ids not null, timestamps in range, the day's volume within 5× of the
   trailing 7-day average, and *at least one event* — a day with no data fails here with a
   reason. It runs after a failed load too (and fails), so the reason reaches the data docs.

Only a passed gate updates the asset `customer720_raw_checked`, which starts
`customer720_transform` for the same date. A failed gate stops the chain for that date:
nothing downstream runs, the published snapshot stays as it was, and the reason is in the
task log and the data docs (`.local/reports/quality/`).

Every task is idempotent for its date. Logic lives in `ingest` and `quality`, reached
through the stage registry (`orchestrate/stages.py`); this file only wires it for Airflow.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from orchestrate.dag_support import (
    RAW_CHECKED,
    default_args,
    run_date,
    run_task,
    time_schedule,
)


@dag(
    dag_id="customer720_ingest",
    schedule=time_schedule("@daily"),
    # Airflow creates no task for a logical date before start_date: keep it early, so any
    # past date runs (real data is often old: the CDNOW example is 1997-98).
    start_date=pendulum.datetime(1970, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["customer720", "ingest", "quality"],
    doc_md=__doc__,
    default_args=default_args(),
)
def customer720_ingest():
    @task
    def extract_crm(**context) -> dict:
        return run_task("ingest_crm", run_date(context))

    @task
    def load_events(**context) -> dict:
        return run_task("ingest_events", run_date(context))

    # Runs after failed loads too (and fails then), so a rejected delivery's reasons reach
    # the data docs as well as the load's task log.
    @task(outlets=[RAW_CHECKED], trigger_rule="all_done")
    def check_raw(*, outlet_events, ti, **context) -> dict:
        as_of = run_date(context)
        loads = ("extract_crm", "load_events")
        failed = [t for t in loads if ti.xcom_pull(task_ids=t) is None]
        result = run_task("quality_raw", as_of, failed_loads=failed)
        outlet_events[RAW_CHECKED].extra = {"as_of": as_of.isoformat()}
        return result

    extract_crm() >> load_events() >> check_raw()


customer720_ingest()
