-- depends_on: {{ ref('int_identity_nodes_resolved') }}
-- One row: the load time of the newest web event int_identity_nodes_resolved has seen
-- (minus the load lookback, macros/events_load_lookback.sql). Built right after it: its
-- next incremental build looks for new devices only among events loaded after this. A
-- failed or skipped build leaves the older watermark: more work next time, never less.
with

final as (

    select
        cast(
            {{ dbt.dateadd('minute', -1 * (events_load_lookback_minutes() | int), 'max(loaded_at)') }}
            as timestamp
        ) as events_loaded_at
    from {{ ref('stg_web__events') }}

)

select * from final
