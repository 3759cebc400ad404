"""
### customer720 daily pipeline

Builds the 720° customer view for one logical date and acts on it:

1. **ingest** CRM tables (incremental on `updated_at`) and new web/app event files into `raw`
2. **quality gate** on the day's raw batch (Great Expectations)
3. **dbt build** staging → intermediate → marts (identity graph, sessions, `dim_customer_720`, …)
4. **quality gate** on the marts (one row per person, no personal data)
5. **churn model**: train (champion/challenger) and score every eligible customer
6. **recommendations** for every active customer
7. **dbt build** of the score marts (`customer_churn_scores`, `customer_recommendations`, `dim_customer_720`)
8. **quality gate** on the scores, then **publish** `.local/published.duckdb` atomically
9. **CRM writeback** of scores (diff-based, consent honoured) and a **run summary**

A failed gate stops the run before publishing; the last published snapshot stays.
Every task is idempotent for its logical date. Logic lives in the stage packages
(`ingest`, `quality`, `ml`, `activate`); this file only wires them for Airflow.
"""

from __future__ import annotations

from datetime import date, timedelta

import pendulum
from airflow.sdk import Asset, dag, task

from customer720.airflow_callbacks import log_failure
from customer720.settings import get_settings

WAREHOUSE_POOL = "warehouse_writer"  # DuckDB allows one writer: tasks that write queue here.
PUBLISHED = Asset("customer720_published_marts")


def _as_of(context: dict) -> date:
    return date.fromisoformat(context["ds"])


@dag(
    dag_id="customer720_daily",
    schedule="@daily",
    # Airflow creates no task for a logical date before start_date: keep it early, so any
    # past date runs (real data is often old: the CDNOW example is 1997-98).
    start_date=pendulum.datetime(1970, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["customer720", "daily"],
    doc_md=__doc__,
    default_args={
        "owner": "data-engineering",
        "retries": get_settings().task_retries,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "pool": WAREHOUSE_POOL,
        "on_failure_callback": log_failure,
    },
)
def customer720_daily():
    @task
    def extract_crm() -> dict:
        from ingest import extract_crm as run

        return run().as_dict()

    @task
    def load_events() -> dict:
        from ingest import load_events as run

        return run().as_dict()

    @task
    def check_raw(**context) -> dict:
        from quality import check_raw as run

        return run(_as_of(context)).summary()

    @task
    def build_marts(**context) -> dict:
        from customer720.dbt import run_dbt

        nodes = run_dbt("build", as_of=_as_of(context), exclude="tag:needs_scores")
        return {"nodes": len(nodes), "seconds": round(sum(n["seconds"] for n in nodes), 1)}

    @task
    def check_marts(**context) -> dict:
        from quality import check_marts as run

        return run(_as_of(context)).summary()

    @task
    def train_churn(**context) -> dict:
        from ml.pipeline import train_churn as run

        return run(_as_of(context))

    @task
    def score_churn(**context) -> dict:
        from ml.pipeline import score_churn as run

        return run(_as_of(context))

    @task
    def recommend(**context) -> dict:
        from ml.pipeline import recommend as run

        return run(_as_of(context))

    @task
    def build_score_marts(**context) -> dict:
        from customer720.dbt import run_dbt

        nodes = run_dbt("build", as_of=_as_of(context), select="tag:needs_scores")
        return {"nodes": len(nodes)}

    @task
    def check_scores(**context) -> dict:
        from quality.gates import check_scores as run

        return run(_as_of(context)).summary()

    @task(outlets=[PUBLISHED])
    def publish() -> dict:
        from activate.publish import publish as run

        return run()

    @task
    def sync_crm(**context) -> dict:
        from activate.writeback import sync_scores

        result = sync_scores(_as_of(context))
        return {k: v for k, v in result.__dict__.items() if k != "failures"}

    @task(pool="default_pool")
    def summarize(parts: dict, **context) -> str:
        from activate.summary import write_summary

        return str(write_summary(_as_of(context), parts))

    crm, events = extract_crm(), load_events()
    raw_gate = check_raw()
    crm >> events >> raw_gate
    marts = build_marts()
    marts_gate = check_marts()
    raw_gate >> marts >> marts_gate
    trained = train_churn()
    scored = score_churn()
    recs = recommend()
    marts_gate >> trained >> scored >> recs
    score_marts = build_score_marts()
    scores_gate = check_scores()
    recs >> score_marts >> scores_gate
    published = publish()
    synced = sync_crm()
    scores_gate >> published >> synced
    summarize(
        {
            "ingest_crm": crm,
            "ingest_events": events,
            "quality_raw": raw_gate,
            "quality_marts": marts_gate,
            "dbt": marts,
            "churn_model": trained,
            "churn_scores": scored,
            "recommendations": recs,
            "quality_scores": scores_gate,
            "publish": published,
            "crm_writeback": synced,
        }
    )


customer720_daily()
