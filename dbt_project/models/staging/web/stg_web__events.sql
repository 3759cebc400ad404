{#-
    Web/app events, typed and deduplicated on event_id: the first load of an event wins.

    Incremental (a table, appended to): a run reads only the raw rows loaded since the
    latest load it already holds, minus events_load_lookback_minutes() (0 on DuckDB, 30 on
    Postgres: a batch stamps _loaded_at when it starts and commits later, so a batch still
    open during the last build can carry an older stamp; DuckDB allows no overlap), plus
    raw rows without _loaded_at (not written by ingest). Rows whose event_id is already
    here are dropped (anti-join), so an event loaded twice stays once and a re-run adds
    nothing. Because loads only get later, the
    kept load is the same one a full refresh keeps: incremental = full refresh (tested).
    The watermark is read before the query and inlined as a literal, so DuckDB skips old
    row groups by their min/max and Postgres can use the index on raw._loaded_at if any.
    Indexes (the anti-join, the watermark, sessions' lookups) only on Postgres: DuckDB
    scans columns fast without them, and building its ART indexes on 15M events at commit
    took longer than the table itself.
    A re-run of a past date reads the events loaded when that date was first run (the pin
    of macros/as_of_loads.sql; the stage builds it with --full-refresh then).
    After changing the columns, run once with --full-refresh (on_schema_change = fail).
-#}
{{
    config(
        materialized='incremental',
        meta={'test_new_rows_by': 'loaded_at'},
        incremental_strategy='append',
        on_schema_change='fail',
        indexes=(
            [
                {'columns': ['event_id'], 'unique': True},
                {'columns': ['loaded_at']},
                {'columns': ['anonymous_id']},
            ] if target.type == 'postgres' else []
        ),
    )
}}

{%- set load_watermark = none %}
{%- if execute and is_incremental() %}
    {%- set watermark_query %}
        select cast(
            {{ dbt.dateadd('minute', -1 * (events_load_lookback_minutes() | int), 'max(loaded_at)') }}
            as {{ dbt.type_string() }}
        )
        from {{ this }}
    {%- endset %}
    {%- set load_watermark = run_query(watermark_query).columns[0].values()[0] %}
{%- endif %}

with

source as {{ not_materialized() }} (

    -- in a re-run of a past date, the events loaded when that date was first run
    -- (macros/as_of_loads.sql); every event otherwise
    select * from {{ source('web', 'web_events') }}
    where {{ loaded_by_pin('_loaded_at') }}

),

candidates as (

    -- events that name themselves, a device and a time; anything else cannot be placed
    select *
    from source
    where event_id is not null
      and anonymous_id is not null
      and collector_timestamp is not null
    {%- if is_incremental() and load_watermark is not none %}
      and _loaded_at >= cast('{{ load_watermark }}' as timestamp)

    union all

    select *
    from source
    where event_id is not null
      and anonymous_id is not null
      and collector_timestamp is not null
      and _loaded_at is null
    {%- endif %}

),

{% if is_incremental() %}
already_loaded as (

    -- the candidates' ids this table holds, found by probing its ids against the day's
    -- candidates: an anti-join straight against the table would hash every id it holds
    -- (22.7M at 100k customers: 2.7 GB and most of the model's time) to drop a few
    select existing.event_id
    from {{ this }} as existing
    where existing.event_id in (select event_id from candidates)

),

new_candidates as (

    select candidates.*
    from candidates
    where not exists (
        select 1
        from already_loaded
        where already_loaded.event_id = candidates.event_id
    )

),
{% else %}
new_candidates as (

    select * from candidates

),
{% endif %}

duplicated_ids as (

    -- ingest may load the same event twice; such ids are rare, and ranking only them keeps
    -- the wide rows of the rest out of a window (at 15M events: minutes of sorting)
    select event_id
    from new_candidates
    group by event_id
    having count(*) > 1

),

deduplicated as (

    select
        new_candidates.*,
        1 as load_rank
    from new_candidates
    where not exists (
        select 1
        from duplicated_ids
        where duplicated_ids.event_id = new_candidates.event_id
    )

    union all

    -- the first load of each duplicated event_id wins
    select
        *,
        row_number() over (
            partition by event_id
            order by _loaded_at nulls last, _batch_id, _source, collector_timestamp, anonymous_id, event_type
        ) as load_rank
    from new_candidates
    where event_id in (select event_id from duplicated_ids)

),

renamed as (

    select
        -- ids
        event_id,
        anonymous_id,
        nullif(trim(user_id), '') as user_id,
        -- user_id is the CRM contact id (text, as the CRM keys its contacts)
        nullif(trim(user_id), '') as user_contact_id,
        {{ text_id('product_id') }} as product_id,
        {{ text_id('order_id') }} as order_id,
        {{ text_id('email_contact_id') }} as email_contact_id,

        -- dimensions
        lower(trim(event_type)) as event_type,
        lower(trim(platform)) as platform,
        lower(trim(device_type)) as device_type,
        user_agent,
        page_url,
        nullif(trim(referrer), '') as referrer,
        nullif(lower(trim(utm_source)), '') as utm_source,
        nullif(lower(trim(utm_medium)), '') as utm_medium,
        nullif(trim(utm_campaign), '') as utm_campaign,
        search_query,

        -- numerics
        cast(price as {{ type_double() }}) as price,
        cast(quantity as integer) as quantity,

        -- timestamps
        cast(collector_timestamp as timestamp) as collector_at,
        cast(device_timestamp as timestamp) as device_at,
        cast(_loaded_at as timestamp) as loaded_at,

        -- load metadata
        cast(_batch_id as {{ dbt.type_string() }}) as load_batch_id,
        cast(_source as {{ dbt.type_string() }}) as source_file

    from deduplicated
    where load_rank = 1

)

select * from renamed
