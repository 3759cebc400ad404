-- depends_on: {{ ref('customer_features') }}
-- One row: the load time of the newest input row ml.customer_features has seen (minus the
-- load lookback, macros/events_load_lookback.sql). Built right after customer_features
-- (it depends on it): the next incremental build of customer_features recomputes only the
-- persons with an input row loaded after this (macros/customer_features_incremental.sql).
-- A failed or skipped build leaves the older watermark: the next build recomputes more,
-- never less.
with

loads as (

    select max(loaded_at) as loaded_at from {{ ref('stg_web__events') }}
    union all
    select max(loaded_at) from {{ ref('fct_orders') }}
    union all
    select max(loaded_at) from {{ ref('stg_crm__contacts') }}
    union all
    select max(loaded_at) from {{ ref('stg_crm__tickets') }}
    union all
    select max(loaded_at) from {{ ref('stg_crm__survey_responses') }}
    union all
    select max(loaded_at) from {{ ref('stg_crm__email_events') }}

),

final as (

    select
        cast(
            {{ dbt.dateadd('minute', -1 * (events_load_lookback_minutes() | int), 'max(loaded_at)') }}
            as timestamp
        ) as inputs_loaded_at
    from loads

)

select * from final
