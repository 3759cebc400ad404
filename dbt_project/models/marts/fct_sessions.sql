{#-
    One row per session. Incremental (delete+insert on session_id), see README
    "Incremental builds". A run derives again, as int_sessions_aggregated does, the
    sessions of the devices
      - with a session in int_sessions_aggregated whose last_loaded_at is after the
        latest one already here (watermark read first, inlined as a literal), from the
        start of the earliest such session on (the sessions before it are the ones
        int_sessions_aggregated kept as they were: macros/incremental_facts.sql,
        rederived_anonymous_ids), and
      - whose stored customer_key differs from the one int_identity_nodes_resolved gives the
        anonymous id now (a new login / identity link re-keyed them: all their sessions).
    A session of such a device from that time on that no longer exists (a late event merged
    it, or renumbered it) comes as a marker row (channel_group = removed_row_marker()) that
    replaces it and that the post-hook deletes.
-#}
{{
    config(
        materialized=incremental_facts_materialization(),
        meta={'test_new_rows_by': 'last_loaded_at'},
        incremental_strategy='delete+insert',
        unique_key='session_id',
        on_schema_change='fail',
        post_hook=delete_removed_rows_hook('channel_group'),
    )
}}

{%- set watermark = incremental_watermark('last_loaded_at') %}

with

sessions as {{ not_materialized() }} (

    select * from {{ ref('int_sessions_aggregated') }}

),

identity_nodes as (

    select * from {{ ref('int_identity_nodes_resolved') }}

),

anonymous_keys as (

    select anonymous_id, customer_key
    from identity_nodes
    where node_type = 'anon'

),

{% if watermark is not none %}
changed_anonymous_ids as (

    {{ rederived_anonymous_ids('sessions', 'anonymous_keys', watermark) }}

),

scoped_sessions as (

    {{ rederived_rows('sessions', 'started_at', 'changed_anonymous_ids') }}

),

removed_sessions as (

    -- sessions of changed devices that a late event merged away or renumbered
    select existing.*
    from ({{ rederived_rows(this, 'started_at', 'changed_anonymous_ids') }}) as existing
    where existing.session_id not in (select session_id from scoped_sessions)

),
{% else %}
scoped_sessions as (

    select * from sessions

),
{% endif %}

final as (

    select
        scoped_sessions.session_id,
        anonymous_keys.customer_key,
        scoped_sessions.anonymous_id,
        scoped_sessions.started_at,
        scoped_sessions.ended_at,
        cast(scoped_sessions.started_at as date) as session_date,
        cast({{ dbt.datediff('scoped_sessions.started_at', 'scoped_sessions.ended_at', 'second') }} as integer) as duration_seconds,
        scoped_sessions.platform,
        scoped_sessions.device_type,
        scoped_sessions.channel_group,
        scoped_sessions.utm_source,
        scoped_sessions.utm_medium,
        scoped_sessions.utm_campaign,
        scoped_sessions.event_count,
        scoped_sessions.page_views,
        scoped_sessions.product_views,
        scoped_sessions.add_to_carts,
        scoped_sessions.checkout_starts,
        scoped_sessions.cart_value,
        scoped_sessions.has_purchase,
        scoped_sessions.is_cart_abandoned,
        scoped_sessions.order_id,
        scoped_sessions.last_loaded_at
    from scoped_sessions
    left join anonymous_keys
        on scoped_sessions.anonymous_id = anonymous_keys.anonymous_id

)

select * from final
{%- if watermark is not none %}

union all

select
    session_id,
    customer_key,
    anonymous_id,
    started_at,
    ended_at,
    session_date,
    duration_seconds,
    platform,
    device_type,
    {{ removed_row_marker() }} as channel_group,
    utm_source,
    utm_medium,
    utm_campaign,
    event_count,
    page_views,
    product_views,
    add_to_carts,
    checkout_starts,
    cart_value,
    has_purchase,
    is_cart_abandoned,
    order_id,
    last_loaded_at
from removed_sessions
{%- endif %}
