"""
### customer720 train (weekly, or on demand: `make train`)

Trains both models on the newest marts (or the date given as `{"as_of": "YYYY-MM-DD"}`):
- **churn**: labelled rows from several past cutoffs, a holdout, calibration, baselines;
  updates `customer720_churn_model`;
- **CLV**: a LightGBM regression of each customer's net revenue in the next
  `C720_CLV_HORIZON_DAYS` days, compared on held-out customers with a historical-average
  and a BG/NBD + Gamma-Gamma baseline; updates `customer720_clv_model`;
- **recommendations**: a LambdaRank ranker on past weekly cutoffs, evaluated on the last
  week against the baselines; updates `customer720_recommender_model`.

A new model becomes the **champion** only if it beats the current one; the daily
`customer720_score` always scores with the champions (and never trains).

Training reads the warehouse and writes only the model registry (`.local/models/`), but
it still queues in the `warehouse_writer` pool: DuckDB allows no reader while it writes.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from orchestrate.dag_support import (
    CHURN_MODEL,
    CLV_MODEL,
    RECOMMENDER_MODEL,
    default_args,
    run_task,
    time_schedule,
    training_date,
)


@dag(
    dag_id="customer720_train",
    schedule=time_schedule("@weekly"),
    start_date=pendulum.datetime(1970, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["customer720", "ml", "training"],
    doc_md=__doc__,
    default_args=default_args(),
)
def customer720_train():
    @task(outlets=[CHURN_MODEL])
    def train_churn(*, outlet_events, **context) -> dict:
        as_of = training_date(context)
        result = run_task("train_churn", as_of)
        outlet_events[CHURN_MODEL].extra = {"as_of": as_of.isoformat()}
        return result

    @task(outlets=[CLV_MODEL])
    def train_clv(*, outlet_events, **context) -> dict:
        as_of = training_date(context)
        result = run_task("train_clv", as_of)
        outlet_events[CLV_MODEL].extra = {"as_of": as_of.isoformat()}
        return result

    @task(outlets=[RECOMMENDER_MODEL])
    def train_recommender(*, outlet_events, **context) -> dict:
        as_of = training_date(context)
        result = run_task("train_recommender", as_of)
        outlet_events[RECOMMENDER_MODEL].extra = {"as_of": as_of.isoformat()}
        return result

    # Independent (one failing does not block the other); the warehouse pool runs them
    # one at a time, as DuckDB allows no reader while another process writes.
    train_churn()
    train_clv()
    train_recommender()


customer720_train()
