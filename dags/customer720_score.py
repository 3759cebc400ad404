"""
### customer720 score & activate (on `customer720_marts_checked`)

Started when the marts gate of `customer720_transform` passes, for the same date.

1. **churn scores** for every eligible customer with the champion model
   (train one first: `make train` or the `customer720_train` DAG);
2. **CLV** (expected net revenue in the next `C720_CLV_HORIZON_DAYS` days) for the same
   customers with the champion CLV model;
3. **recommendations** for every active customer;
4. **model monitoring** (`monitor_models`): realised ROC-AUC / Brier / ECE and MAP@10 of
   scores issued a horizon ago, PSI of features and scores vs training → `ml.model_monitoring`;
5. **dbt** of the score marts (`customer_churn_scores`, `customer_value_scores` with
   revenue at risk and the "who to save" rank, `customer_recommendations`,
   `dim_customer_720` with scores, `fct_model_monitoring`): the task `dbt_score_marts`, one
   `dbt build` whose log lists every model and test with its status;
6. the **scores quality gate**: one row per person, this date's scores in [0, 1], CLV
   and revenue at risk not negative, recommendations well-formed, no personal data;
7. **publish** `.local/published.duckdb` atomically (updates `customer720_published_marts`);
8. **CRM writeback** of the scores (diff-based, consent honoured), the **model monitoring
   gate** (`check_models`: alerts through `orchestrate.callbacks.alert`, never fails the
   run) and the **run summary** (`.local/reports/runs/<date>/summary.md`, linking the
   date's gate data docs).

A failed gate stops the run before publishing: readers keep the last published snapshot.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from orchestrate.dag_support import MARTS_CHECKED, PUBLISHED, default_args, run_date, run_task
from orchestrate.dbt_tasks import dbt_build_task


@dag(
    dag_id="customer720_score",
    schedule=[MARTS_CHECKED],
    start_date=pendulum.datetime(1970, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["customer720", "ml", "activate", "quality"],
    doc_md=__doc__,
    default_args=default_args(),
)
def customer720_score():
    @task
    def score_churn(**context) -> dict:
        return run_task("score_churn", run_date(context))

    @task
    def score_clv(**context) -> dict:
        return run_task("score_clv", run_date(context))

    @task
    def recommend(**context) -> dict:
        return run_task("recommend", run_date(context))

    @task
    def monitor_models(**context) -> dict:
        return run_task("monitor_models", run_date(context))

    @task
    def check_models(**context) -> dict:
        return run_task("quality_models", run_date(context))

    @task
    def check_scores(**context) -> dict:
        return run_task("quality_scores", run_date(context))

    @task(outlets=[PUBLISHED])
    def publish(*, outlet_events, **context) -> dict:
        as_of = run_date(context)
        result = run_task("publish", as_of)
        outlet_events[PUBLISHED].extra = {"as_of": as_of.isoformat()}
        return result

    @task
    def sync_crm(**context) -> dict:
        return run_task("crm_writeback", run_date(context))

    @task(pool="default_pool")
    def summarize(**context) -> str:
        from activate.summary import write_summary
        from customer720.runs import load_parts

        as_of = run_date(context)
        return str(write_summary(as_of, load_parts(as_of)))

    (
        score_churn()
        >> score_clv()
        >> recommend()
        >> monitor_models()
        >> dbt_build_task("dbt_score_marts", "score_marts")
        >> check_scores()
        >> publish()
        >> sync_crm()
        >> check_models()
        >> summarize()
    )


customer720_score()
