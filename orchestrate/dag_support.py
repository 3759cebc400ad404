"""What the DAG files share: the assets that link them, default arguments, the run's date.

The pipeline is four DAGs linked by Airflow assets (see dags/):

    customer720_ingest (daily)  ──raw_checked──▶  customer720_transform  ──marts_checked──▶
    customer720_score (score, recommend, score marts, gate, publish, CRM writeback, summary)

    customer720_train (weekly or on demand) ──churn_model, clv_model, recommender_model──▶
    (the next scoring uses the champions)

An asset event carries the logical date it was produced for (``extra["as_of"]``), so a
DAG run started by an asset works on the same date as the run that produced it. This
module imports nothing heavy: the scheduler parses the DAG files that import it often.
"""

from __future__ import annotations

import json
import logging
from datetime import date, timedelta
from typing import Any

from airflow.sdk import Asset

from customer720.settings import WAREHOUSE_POOL, get_settings
from orchestrate.callbacks import log_failure
from orchestrate.stages import run_stage

log = logging.getLogger(__name__)

OWNER = "data-engineering"

RAW_CHECKED = Asset("customer720_raw_checked", uri="customer720://raw/checked")
MARTS_CHECKED = Asset("customer720_marts_checked", uri="customer720://marts/checked")
CHURN_MODEL = Asset("customer720_churn_model", uri="customer720://ml/churn_model")
CLV_MODEL = Asset("customer720_clv_model", uri="customer720://ml/clv_model")
RECOMMENDER_MODEL = Asset("customer720_recommender_model", uri="customer720://ml/recommender_model")
PUBLISHED = Asset("customer720_published_marts", uri="customer720://published/marts")


def default_args() -> dict[str, Any]:
    """Owner, retries with exponential backoff, the failure callback, the writer pool."""
    return {
        "owner": OWNER,
        "retries": get_settings().task_retries,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "max_retry_delay": timedelta(minutes=15),
        "pool": WAREHOUSE_POOL,
        "on_failure_callback": log_failure,
    }


def time_schedule(cron: str) -> str | None:
    """A time-scheduled DAG's cron, or None (triggered runs only) with C720_TIME_SCHEDULES=0:
    the scheduler ``make run`` starts for its own dates must not add the day's own run."""
    return cron if get_settings().time_schedules else None


def data_errors() -> tuple[type[Exception], ...]:
    """Errors no retry can fix: a failed quality gate, bad or missing input, a preflight
    failure, a run without a date, a dbt model or test that failed on the data or its SQL.
    (Imported when needed: the DAG files stay cheap.)"""
    from customer720.dbt import DbtNodeFailure
    from ingest.errors import IngestError
    from ml.common.data import MissingInputError
    from orchestrate.preflight import PreflightError
    from quality.gates import QualityGateFailed

    return (
        QualityGateFailed,
        IngestError,
        MissingInputError,
        PreflightError,
        NoRunDateError,
        DbtNodeFailure,
    )


def run_task(name: str, as_of: date, **kwargs: Any) -> dict[str, Any]:
    """One stage as an Airflow task: ``run_stage(...).save()``, its summary the XCom.

    The one place that tells Airflow which failures to retry: a data error (see
    ``data_errors``) becomes ``AirflowFailException`` (failed at once, no retry, the
    original message kept: the console and the failure callback show the failed
    expectations); anything else (a lock, a network blip) keeps the task's retries.
    """
    try:
        result = run_stage(name, as_of, **kwargs)
    except Exception as exc:
        if not isinstance(exc, data_errors()):
            raise
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
    # What the task did, in its log (the UI and `make run` read it there).
    summary = json.dumps(result.summary, default=str)
    log.info(
        "stage %s for %s done in %.1f s: %s",
        name,
        result.as_of,
        result.seconds,
        summary if len(summary) <= 600 else summary[:600] + " ...",
    )
    return result.save()


class NoRunDateError(ValueError):
    """A DAG run with no date to work on (no conf, no asset event, no logical date)."""


def run_date(context: dict[str, Any]) -> date:
    """The date this run works on, in order of precedence.

    1. ``as_of`` in the run's conf (a REST-API or UI trigger, the chain runner);
    2. ``as_of`` in the newest asset event that triggered the run (asset-scheduled DAGs:
       their runs have no logical date of their own in Airflow 3);
    3. the run's logical date (time-scheduled DAGs, ``airflow dags test DAG DATE``).
    """
    dag_run = context.get("dag_run")
    conf = getattr(dag_run, "conf", None) or {}
    if conf.get("as_of"):
        return date.fromisoformat(str(conf["as_of"])[:10])
    events = context.get("triggering_asset_events") or {}
    dates = [
        str(event.extra["as_of"])[:10]
        for asset_events in events.values()
        for event in asset_events
        if (getattr(event, "extra", None) or {}).get("as_of")
    ]
    if dates:
        return date.fromisoformat(max(dates))
    logical = context.get("logical_date")
    if logical is not None:
        return logical.date()
    raise NoRunDateError(
        "this run has no date: trigger it with conf {'as_of': 'YYYY-MM-DD'}, a logical date, "
        "or let an upstream DAG's asset event start it"
    )


def training_date(context: dict[str, Any]) -> date:
    """The date a training run learns from: ``as_of`` in its conf, else the newest marts.

    The weekly schedule's own logical date is no use here: features exist only for the
    cutoff grid of the date the marts were last built for.
    """
    conf = getattr(context.get("dag_run"), "conf", None) or {}
    if conf.get("as_of"):
        return date.fromisoformat(str(conf["as_of"])[:10])
    from ml.pipeline import newest_cutoff

    newest = newest_cutoff()
    if newest is None:
        raise NoRunDateError("no marts to train on yet: run the ingest and transform DAGs first")
    return newest
