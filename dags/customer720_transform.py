"""
### customer720 transform (on `customer720_raw_checked`)

Started when the raw gate of `customer720_ingest` passes, for the same date (the asset
event carries it; a manual trigger takes `{"as_of": "YYYY-MM-DD"}` as conf).

1. **dbt** staging → intermediate → marts (identity graph, sessions, `dim_customer_720`
   without scores, `ml.customer_features`): the task `dbt_marts` is one `dbt build
   --selector marts`, the models with their tests; its log lists every node with its
   status and time, and a failed model or test fails the task naming it and the commands
   that re-run it (`dbt build --select <model>+`, `dbt retry`);
2. the **marts quality gate**: features for this date exist and are unique per customer,
   `fct_orders` keys, and no personal-data column in any mart.

A passed gate updates `customer720_marts_checked`, which starts `customer720_score`.
dbt writes the DuckDB warehouse, so its tasks queue in the `warehouse_writer` pool of 1.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from orchestrate.dag_support import MARTS_CHECKED, RAW_CHECKED, default_args, run_date, run_task
from orchestrate.dbt_tasks import dbt_build_task


@dag(
    dag_id="customer720_transform",
    schedule=[RAW_CHECKED],
    start_date=pendulum.datetime(1970, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["customer720", "dbt", "quality"],
    doc_md=__doc__,
    default_args=default_args(),
)
def customer720_transform():
    @task(outlets=[MARTS_CHECKED])
    def check_marts(*, outlet_events, **context) -> dict:
        as_of = run_date(context)
        result = run_task("quality_marts", as_of)
        outlet_events[MARTS_CHECKED].extra = {"as_of": as_of.isoformat()}
        return result

    dbt_build_task("dbt_marts", "marts") >> check_marts()


customer720_transform()
