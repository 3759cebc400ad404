with

sessions as (

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

final as (

    select
        sessions.session_id,
        anonymous_keys.customer_key,
        sessions.anonymous_id,
        sessions.started_at,
        sessions.ended_at,
        cast(sessions.started_at as date) as session_date,
        cast({{ dbt.datediff('sessions.started_at', 'sessions.ended_at', 'second') }} as integer) as duration_seconds,
        sessions.platform,
        sessions.device_type,
        sessions.channel_group,
        sessions.utm_source,
        sessions.utm_medium,
        sessions.utm_campaign,
        sessions.event_count,
        sessions.page_views,
        sessions.product_views,
        sessions.add_to_carts,
        sessions.checkout_starts,
        sessions.cart_value,
        sessions.has_purchase,
        sessions.is_cart_abandoned,
        sessions.order_id
    from sessions
    left join anonymous_keys
        on sessions.anonymous_id = anonymous_keys.anonymous_id

)

select * from final
