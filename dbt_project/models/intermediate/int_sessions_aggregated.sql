{#-
    Sessions: events of one anonymous_id, ordered by collector time, split where the gap
    exceeds var('session_timeout_minutes').

    Incremental (delete+insert on session_id): an anonymous id is "touched" when it has
    events loaded into stg_web__events after the latest load already built here (minus
    events_load_lookback_minutes(), the same margin the staging table re-reads; the
    watermark is read first and inlined as a literal, so DuckDB skips old row groups), or
    events without a load time. A touched id's sessions that ended more than a session
    timeout before its first new event cannot change (no new event can join or split
    them): they stay as they are, and only the later events are sessionised again,
    numbered on from the kept sessions. A session of the id that was built before and is
    not among the new ones (a late event merged it, or renumbered the ones after it)
    comes as a marker row (channel_group = removed_row_marker()) that replaces it and that
    the post-hook deletes. So an incremental run yields exactly what a full refresh
    would - late-arriving events included, however old their event time (they move the
    boundary back); re-running changes nothing. Cost follows the new events, not the
    history. A full build on DuckDB sessionises the devices in buckets, one statement each,
    so its windows never sort every event at once (macros/full_build_buckets.sql).
    (Devices merely active in the last days by event time are not rebuilt: their
    events were all built before, the load time is what says something is new.)
-#}
{{
    config(
        materialized=incremental_facts_materialization(),
        meta={'test_new_rows_by': 'last_loaded_at'},
        incremental_strategy='delete+insert',
        unique_key='session_id',
        on_schema_change='sync_all_columns',
        post_hook=delete_removed_rows_hook('channel_group') + ['{{ insert_other_buckets() }}'],
    )
}}

{%- set watermark = incremental_watermark('last_loaded_at') %}
{%- set session_columns = [
    'session_id', 'anonymous_id', 'session_number', 'started_at', 'ended_at', 'platform', 'device_type', 'channel_group', 'referrer', 'utm_source', 'utm_medium', 'utm_campaign', 'landing_page_url', 'event_count', 'page_views', 'product_views', 'add_to_carts', 'checkout_starts', 'purchases', 'searches', 'email_clicks', 'cart_value', 'has_purchase', 'is_cart_abandoned', 'user_contact_id', 'email_contact_id', 'order_id', 'last_loaded_at',
] %}

with

events as {{ not_materialized() }} (

    select * from {{ ref('stg_web__events') }}

),

{% if watermark is not none %}
new_events as (

    select anonymous_id, min(collector_at) as first_new_at
    from events
    where {{ loaded_since('loaded_at', watermark) }}
    group by 1

),

touched_sessions as (

    -- the touched ids' sessions built before. is_kept: ended more than a session timeout
    -- before the id's first new event, so it stays as it is and the new numbering starts
    -- after it; the others are numbered again now
    select
        built.*,
        built.ended_at < {{ dbt.dateadd(
            'minute', -1 * (var('session_timeout_minutes') | int), 'new_events.first_new_at'
        ) }} as is_kept
    from {{ this }} as built
    inner join new_events
        on built.anonymous_id = new_events.anonymous_id

),

boundaries as (

    select
        new_events.anonymous_id,
        max(touched_sessions.ended_at) as kept_until,
        coalesce(max(touched_sessions.session_number), 0) as session_offset
    from new_events
    left join touched_sessions
        on new_events.anonymous_id = touched_sessions.anonymous_id
        and touched_sessions.is_kept
    group by 1

),

scoped_events as (

    select events.*, boundaries.session_offset
    from events
    inner join boundaries
        on events.anonymous_id = boundaries.anonymous_id
    where boundaries.kept_until is null or events.collector_at > boundaries.kept_until

),
{% else %}
scoped_events as (

    -- a full build on DuckDB: one bucket of devices at a time (macros/full_build_buckets.sql)
    select *, 0 as session_offset from events
    where {{ bucket_predicate('anonymous_id', full_build_buckets(
        'select count(*) from ' ~ ref('stg_web__events'), var('sessions_events_per_bucket')
    )) }}

),
{% endif %}

gaps_flagged as (

    select
        *,
        case
            when lag(collector_at) over (
                partition by anonymous_id order by collector_at, event_id
            ) is null then 1
            when collector_at > {{ dbt.dateadd(
                'minute',
                var('session_timeout_minutes') | int,
                'lag(collector_at) over (partition by anonymous_id order by collector_at, event_id)'
            ) }} then 1
            else 0
        end as is_session_start
    from scoped_events

),

sessions_numbered as (

    select
        *,
        sum(is_session_start) over (
            partition by anonymous_id
            order by collector_at, event_id
            rows between unbounded preceding and current row
        ) + session_offset as session_number
    from gaps_flagged

),

landing_events as (

    -- the first event of each session carries the acquisition context
    select
        anonymous_id,
        session_number,
        platform,
        device_type,
        referrer,
        utm_source,
        utm_medium,
        utm_campaign,
        page_url as landing_page_url
    from sessions_numbered
    where is_session_start = 1

),

session_metrics as (

    select
        anonymous_id,
        session_number,
        min(collector_at) as started_at,
        max(collector_at) as ended_at,
        count(*) as event_count,
        count(*) filter (where event_type = 'page_view') as page_views,
        count(*) filter (where event_type = 'product_view') as product_views,
        count(*) filter (where event_type = 'add_to_cart') as add_to_carts,
        count(*) filter (where event_type = 'checkout_start') as checkout_starts,
        count(*) filter (where event_type = 'purchase') as purchases,
        count(*) filter (where event_type = 'search') as searches,
        count(*) filter (where event_type = 'email_click') as email_clicks,
        sum(
            case when event_type = 'add_to_cart' then coalesce(price, 0) * coalesce(quantity, 1) else 0 end
        ) as cart_value,
        max(user_contact_id) as user_contact_id,
        max(email_contact_id) as email_contact_id,
        max(order_id) as order_id,
        max(coalesce(loaded_at, collector_at)) as last_loaded_at
    from sessions_numbered
    group by 1, 2

),

channels_grouped as (

    select
        landing_events.*,
        case
            when utm_medium in ('cpc', 'ppc', 'paid', 'paidsearch', 'paid_search', 'sem') then 'paid_search'
            when utm_medium in ('paid_social', 'paidsocial') then 'paid_social'
            when utm_medium in ('display', 'banner', 'cpm') then 'display'
            when utm_medium in ('email', 'newsletter') then 'email'
            when utm_medium in ('affiliate', 'partner') then 'affiliate'
            when utm_medium in ('social', 'social_media', 'sm') then 'organic_social'
            when utm_medium is not null or utm_source is not null then 'other_campaign'
            when referrer is null then 'direct'
            when referrer like '%google.%' or referrer like '%bing.%' or referrer like '%duckduckgo.%'
                or referrer like '%yahoo.%' or referrer like '%ecosia.%' then 'organic_search'
            when referrer like '%facebook.%' or referrer like '%instagram.%' or referrer like '%t.co/%'
                or referrer like '%twitter.%' or referrer like '%linkedin.%' or referrer like '%tiktok.%'
                or referrer like '%pinterest.%' or referrer like '%reddit.%' then 'organic_social'
            else 'referral'
        end as channel_group
    from landing_events

),

final as (

    select
        {{ dbt.hash("session_metrics.anonymous_id || '|' || cast(session_metrics.session_number as " ~ dbt.type_string() ~ ")") }} as session_id,
        session_metrics.anonymous_id,
        cast(session_metrics.session_number as integer) as session_number,
        cast(session_metrics.started_at as timestamp) as started_at,
        cast(session_metrics.ended_at as timestamp) as ended_at,
        channels_grouped.platform,
        channels_grouped.device_type,
        channels_grouped.channel_group,
        channels_grouped.referrer,
        channels_grouped.utm_source,
        channels_grouped.utm_medium,
        channels_grouped.utm_campaign,
        channels_grouped.landing_page_url,
        cast(session_metrics.event_count as integer) as event_count,
        cast(session_metrics.page_views as integer) as page_views,
        cast(session_metrics.product_views as integer) as product_views,
        cast(session_metrics.add_to_carts as integer) as add_to_carts,
        cast(session_metrics.checkout_starts as integer) as checkout_starts,
        cast(session_metrics.purchases as integer) as purchases,
        cast(session_metrics.searches as integer) as searches,
        cast(session_metrics.email_clicks as integer) as email_clicks,
        cast(session_metrics.cart_value as {{ type_double() }}) as cart_value,
        session_metrics.purchases > 0 as has_purchase,
        session_metrics.add_to_carts > 0 and session_metrics.purchases = 0 as is_cart_abandoned,
        session_metrics.user_contact_id,
        session_metrics.email_contact_id,
        session_metrics.order_id,
        cast(session_metrics.last_loaded_at as timestamp) as last_loaded_at
    from session_metrics
    inner join channels_grouped
        on session_metrics.anonymous_id = channels_grouped.anonymous_id
        and session_metrics.session_number = channels_grouped.session_number

)

select * from final
{%- if watermark is not none %}

union all

-- the sessions numbered again that no longer exist, as markers the post-hook deletes
select
    {%- for column in session_columns %}
    {% if column == 'channel_group' %}{{ removed_row_marker() }} as channel_group{% else %}touched_sessions.{{ column }}{% endif %}{{ "," if not loop.last }}
    {%- endfor %}
from touched_sessions
where not touched_sessions.is_kept
  and touched_sessions.session_id not in (select session_id from final)
{%- endif %}
