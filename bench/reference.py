"""Reference limits, measured on the same data in the same run as our stages.

- ``bare_read_json``: DuckDB ``create table as select * from read_json(<event files>)`` into
  a fresh file, DuckDB defaults, as a user would type it: reading, parsing and storing the
  events with no checks (the ingest limit).
- ``sql_720``: one hand-written DuckDB SQL statement over the raw layer computing the core
  720° aggregates per person (e-mail stitching, commerce RFM, sessions and web behaviour,
  service, e-mail engagement) for every person with a CRM record — what a careful analyst
  would write in one go, without the identity graph, anonymous-only visitors, the
  timeline, the feature cutoffs, contracts or tests (the transform reference for
  ``dbt build``; it does less, so the ratio is an upper bound of our overhead).
- ``bare_lightgbm``: ``lightgbm.train`` with the churn model's parameters and early
  stopping on the very matrices ``ml.churn.train`` builds (the training reference). Only the
  ``lightgbm.train`` call is timed; building the matrix is preparation.

Each returns ``core_seconds`` / ``core_cpu_seconds``: the timed part the ratios use.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from datetime import date
from typing import Any


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _timed(fn: Callable[[], Any]) -> tuple[dict, Any]:
    start, cpu = time.perf_counter(), _cpu()
    out = fn()
    return {
        "core_seconds": round(time.perf_counter() - start, 3),
        "core_cpu_seconds": round(_cpu() - cpu, 3),
    }, out


def bare_read_json(params: dict) -> dict:
    import duckdb

    from customer720.settings import get_settings

    settings = get_settings()
    glob = f"{settings.events_dir}/**/*.json.gz"
    path = settings.local_dir / "bench-bare-read-json.duckdb"
    path.unlink(missing_ok=True)

    def run() -> int:
        con = duckdb.connect(str(path))
        try:
            con.execute(
                f"create table t as select * from read_json('{glob}', format = 'newline_delimited')"
            )
            return con.execute("select count(*) from t").fetchone()[0]
        finally:
            con.close()

    try:
        timing, rows = _timed(run)
    finally:
        path.unlink(missing_ok=True)
        path.with_name(path.name + ".wal").unlink(missing_ok=True)
    return {**timing, "rows": rows}


# The core 720° aggregates in one statement. ``{as_of}`` is the logical date: only data
# collected up to the end of that day counts (as in the marts).
SQL_720 = """
create table ref_720 as
with
contacts as (
    select * from w.raw.crm_contacts
    qualify row_number() over (partition by contact_id order by updated_at desc, _loaded_at desc) = 1
),
persons as (  -- the same e-mail (normalised) is the same person
    select
        contact_id,
        min(contact_id) over (partition by coalesce(lower(trim(email)), cast(contact_id as varchar)))
            as person_id,
        md5(lower(trim(email))) as email_hash,
        country, lifecycle_stage, marketing_consent, owner, created_at
    from contacts
    where not coalesce(is_deleted, false)
),
orders as (
    select * from w.raw.crm_orders
    qualify row_number() over (partition by order_id order by updated_at desc, _loaded_at desc) = 1
),
commerce as (
    select
        p.person_id,
        count(*) filter (where o.status <> 'cancelled') as orders,
        sum(o.total_amount) filter (where o.status not in ('cancelled', 'returned')) as revenue,
        count(*) filter (where o.status = 'returned') as returns,
        min(o.ordered_at) as first_order_at,
        max(o.ordered_at) filter (where o.status <> 'cancelled') as last_order_at,
        count(*) filter (where o.delivered_at > o.promised_at) as late_deliveries
    from orders o join persons p using (contact_id)
    where o.ordered_at < date '{as_of}' + interval 1 day
    group by 1
),
tickets as (
    select
        p.person_id,
        count(*) as tickets,
        avg(date_diff('hour', t.created_at, t.resolved_at)) as avg_resolution_hours,
        count(*) filter (where t.priority in ('high', 'urgent')) as urgent_tickets
    from (
        select * from w.raw.crm_tickets
        qualify row_number() over (partition by ticket_id order by updated_at desc, _loaded_at desc) = 1
    ) t join persons p using (contact_id)
    where t.created_at < date '{as_of}' + interval 1 day
    group by 1
),
surveys as (
    select p.person_id, avg(s.score) filter (where s.survey_type = 'nps') as nps
    from w.raw.crm_survey_responses s join persons p using (contact_id)
    where s.responded_at < date '{as_of}' + interval 1 day
    group by 1
),
email as (
    select
        p.person_id,
        count(*) filter (where e.event_type = 'sent') as emails_sent,
        count(*) filter (where e.event_type = 'open') as emails_opened,
        count(*) filter (where e.event_type = 'click') as emails_clicked
    from w.raw.crm_email_events e join persons p using (contact_id)
    where e.occurred_at < date '{as_of}' + interval 1 day
    group by 1
),
events as (
    select event_id, event_type, anonymous_id, user_id, collector_timestamp, platform,
           utm_source, device_type
    from w.raw.web_events
    where collector_timestamp < date '{as_of}' + interval 1 day
    qualify row_number() over (partition by event_id order by _loaded_at) = 1
),
cookies as (  -- a cookie seen logged in belongs to that contact
    select anonymous_id, min(user_id) as contact_id  -- ids are text
    from events where user_id is not null group by 1
),
sessionised as (
    select
        anonymous_id, event_type, collector_timestamp, platform, device_type, utm_source,
        coalesce(
            collector_timestamp - lag(collector_timestamp) over (
                partition by anonymous_id order by collector_timestamp
            ) > interval 30 minute,
            true
        ) as starts_session
    from events
),
web as (
    select
        p.person_id,
        count(*) as events,
        count(*) filter (where s.starts_session) as sessions,
        count(*) filter (where s.starts_session
            and s.collector_timestamp >= date '{as_of}' - interval 29 day) as sessions_last_30d,
        count(*) filter (where s.starts_session
            and s.collector_timestamp >= date '{as_of}' - interval 59 day
            and s.collector_timestamp < date '{as_of}' - interval 29 day) as sessions_prior_30d,
        count(*) filter (where s.event_type = 'page_view') as page_views,
        count(*) filter (where s.event_type = 'product_view') as product_views,
        count(*) filter (where s.event_type = 'add_to_cart') as add_to_carts,
        count(*) filter (where s.event_type = 'purchase') as web_purchases,
        count(distinct s.anonymous_id) as cookies,
        count(distinct s.device_type) as device_types,
        arg_min(s.utm_source, s.collector_timestamp) as first_touch_source,
        arg_max(s.utm_source, s.collector_timestamp) as last_touch_source,
        max(s.collector_timestamp) as last_seen_at
    from sessionised s
    join cookies c using (anonymous_id)
    join persons p on p.contact_id = c.contact_id
    group by 1
)
select
    p.person_id,
    any_value(p.email_hash) as email_hash,
    count(*) as crm_records,
    any_value(p.country) as country,
    any_value(p.lifecycle_stage) as lifecycle_stage,
    bool_or(p.marketing_consent) as marketing_consent,
    date_diff('day', min(p.created_at), date '{as_of}') as tenure_days,
    any_value(c.orders) as orders,
    any_value(c.revenue) as revenue,
    any_value(c.returns) as returns,
    any_value(c.late_deliveries) as late_deliveries,
    date_diff('day', any_value(c.last_order_at), date '{as_of}') as recency_days,
    any_value(t.tickets) as tickets,
    any_value(t.avg_resolution_hours) as avg_resolution_hours,
    any_value(t.urgent_tickets) as urgent_tickets,
    any_value(s.nps) as nps,
    any_value(e.emails_sent) as emails_sent,
    any_value(e.emails_opened) as emails_opened,
    any_value(e.emails_clicked) as emails_clicked,
    any_value(wb.events) as web_events,
    any_value(wb.sessions) as sessions,
    any_value(wb.sessions_last_30d) as sessions_last_30d,
    any_value(wb.sessions_prior_30d) as sessions_prior_30d,
    any_value(wb.page_views) as page_views,
    any_value(wb.product_views) as product_views,
    any_value(wb.add_to_carts) as add_to_carts,
    any_value(wb.web_purchases) as web_purchases,
    any_value(wb.cookies) as cookies,
    any_value(wb.device_types) as device_types,
    any_value(wb.first_touch_source) as first_touch_source,
    any_value(wb.last_touch_source) as last_touch_source,
    any_value(wb.last_seen_at) as last_seen_at
from persons p
left join commerce c using (person_id)
left join tickets t using (person_id)
left join surveys s using (person_id)
left join email e using (person_id)
left join web wb using (person_id)
group by p.person_id
"""


def sql_720(params: dict) -> dict:
    import duckdb

    from customer720.settings import get_settings

    settings = get_settings()
    sql = SQL_720.format(as_of=date.fromisoformat(params["as_of"]).isoformat())

    def run() -> int:
        # In memory: the warehouse is only read, and the result is not kept.
        con = duckdb.connect()
        try:
            con.execute(f"attach '{settings.warehouse_path}' as w (read_only)")
            con.execute(sql)
            return con.execute("select count(*) from ref_720").fetchone()[0]
        finally:
            con.close()

    timing, rows = _timed(run)
    return {**timing, "persons": rows}


def bare_lightgbm(params: dict) -> dict:
    # isort: off
    from ml.churn.dataset import training_data  # first: ml sets OpenMP's wait policy
    import lightgbm as lgb
    import numpy as np

    # isort: on

    from ml.churn.model import lgb_params
    from ml.common.config import ChurnConfig

    cfg = ChurnConfig.from_settings()
    td = training_data(date.fromisoformat(params["as_of"]), cfg)
    X_train, X_valid, y_train, y_valid = td.X["train"], td.X["valid"], td.y["train"], td.y["valid"]
    pos = float(np.sum(y_train))
    params_lgb = lgb_params(cfg, (len(y_train) - pos) / pos)

    def run() -> lgb.Booster:
        train_set = lgb.Dataset(X_train, label=y_train)
        valid_set = lgb.Dataset(X_valid, label=y_valid, reference=train_set)
        return lgb.train(
            params_lgb,
            train_set,
            num_boost_round=cfg.num_boost_round,
            valid_sets=[valid_set],
            callbacks=[
                lgb.early_stopping(cfg.early_stopping_rounds, first_metric_only=True, verbose=False)
            ],
        )

    timing, booster = _timed(run)
    return {
        **timing,
        "train_rows": len(y_train),
        "features": X_train.shape[1],
        "trees": booster.best_iteration,
    }
