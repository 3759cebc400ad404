{#-
    One row per session. Incremental (delete+insert on anonymous_id: a late event can merge
    two sessions of a device, so a device's sessions are replaced together, as in
    int_sessions_aggregated), see README "Incremental builds". A run rebuilds only the
    devices
      - with a session in int_sessions_aggregated whose last_loaded_at is after the
        latest one already here (watermark read first, inlined as a literal; the devices
        int_sessions_aggregated rebuilt for new loads), and
      - whose stored customer_key differs from the one int_identity_nodes_resolved gives the
        anonymous id now (a new login / identity link re-keyed them: exactly those rows).
-#}
{{
    config(
        materialized=incremental_facts_materialization(),
        meta={'test_new_rows_by': 'last_loaded_at'},
        incremental_strategy='delete+insert',
        unique_key='anonymous_id',
        on_schema_change='fail',
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

    {{ touched_anonymous_ids('sessions', 'anonymous_keys', watermark) }}

),

scoped_sessions as (

    select sessions.*
    from sessions
    inner join changed_anonymous_ids
        on sessions.anonymous_id = changed_anonymous_ids.anonymous_id

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
