-- Moments of impact: one row per (customer_key, moment_type, moment_at, source_id) that
-- deserves action, as of the run's analysis date (int_as_of_dates_resolved, env DBT_AS_OF).
--   high_value_cart_abandoned  a session in the last var('moment_window_days') days with
--                              items added for >= var('high_value_cart_amount'), no
--                              purchase in it and no order by the person since it began
--   negative_ticket_open       a ticket with negative lexicon sentiment, created by the
--                              as-of date and still open or pending (current CRM status)
--   engagement_drop            sessions in the last var('engagement_window_days') days at
--                              most var('engagement_drop_max_ratio') x those of the window
--                              before, which had >= var('engagement_drop_min_prior_sessions')
{%- set text = dbt.type_string() %}
{%- set window = var('engagement_window_days') | int %}
with

sessions as {{ not_materialized() }} (

    select * from {{ ref('fct_sessions') }}

),

orders as {{ not_materialized() }} (

    select * from {{ ref('fct_orders') }}

),

tickets as (

    select * from {{ ref('int_tickets_scored') }}

),

identity_nodes as (

    select * from {{ ref('int_identity_nodes_resolved') }}

),

as_of_dates as (

    select * from {{ ref('int_as_of_dates_resolved') }}

),

contact_keys as (

    select contact_id, customer_key
    from identity_nodes
    where node_type = 'contact'

),

-- carts -----------------------------------------------------------------------------------

abandoned_carts as (

    select
        sessions.customer_key,
        sessions.session_id,
        sessions.started_at,
        sessions.platform,
        sessions.device_type,
        sessions.cart_value,
        as_of_dates.as_of_date
    from sessions
    cross join as_of_dates
    where sessions.is_cart_abandoned
      and sessions.cart_value >= {{ var('high_value_cart_amount') }}
      and sessions.session_date > {{ dbt.dateadd('day', -1 * var('moment_window_days') | int, 'as_of_dates.as_of_date') }}
      and sessions.session_date <= as_of_dates.as_of_date
      and sessions.customer_key is not null

),

carts_still_open as (

    -- an order by the same person after the cart (up to the as-of date) closes it
    select abandoned_carts.*
    from abandoned_carts
    where not exists (
        select 1
        from orders
        where orders.customer_key = abandoned_carts.customer_key
          and not coalesce(orders.is_cancelled, false)
          and orders.ordered_at >= abandoned_carts.started_at
          and orders.order_date <= abandoned_carts.as_of_date
    )

),

cart_moments as (

    select
        customer_key,
        'high_value_cart_abandoned' as moment_type,
        started_at as moment_at,
        session_id as source_id,
        platform as channel,
        cart_value as value_amount,
        cast(null as {{ type_double() }}) as sentiment_score,
        cast(null as {{ text }}) as ticket_priority,
        cast(null as integer) as sessions_recent,
        cast(null as integer) as sessions_prior,
        'cart of ' || cast(cast(cart_value as decimal(18, 2)) as {{ text }})
            || ' abandoned on ' || coalesce(platform, '?') || '/' || coalesce(device_type, '?')
            || ', no order since' as reason,
        as_of_date
    from carts_still_open

),

-- service ---------------------------------------------------------------------------------

negative_open_tickets as (

    select
        contact_keys.customer_key,
        tickets.ticket_id,
        tickets.created_at,
        tickets.status,
        tickets.priority,
        tickets.sentiment_score,
        orders.total_amount as order_amount,
        as_of_dates.as_of_date
    from tickets
    inner join contact_keys
        on tickets.contact_id = contact_keys.contact_id
    cross join as_of_dates
    left join orders
        on tickets.order_id = orders.order_id
    where tickets.is_negative
      and tickets.status in ('open', 'pending')
      and cast(tickets.created_at as date) <= as_of_dates.as_of_date

),

ticket_moments as (

    select
        customer_key,
        'negative_ticket_open' as moment_type,
        created_at as moment_at,
        cast(ticket_id as {{ text }}) as source_id,
        'service' as channel,
        order_amount as value_amount,
        sentiment_score,
        priority as ticket_priority,
        cast(null as integer) as sessions_recent,
        cast(null as integer) as sessions_prior,
        status || ' ' || coalesce(priority, '?') || ' priority ticket with sentiment '
            || cast(cast(sentiment_score as decimal(18, 2)) as {{ text }})
            || ', open ' || cast({{ days_between('created_at', 'as_of_date') }} as {{ text }})
            || ' days' as reason,
        as_of_date
    from negative_open_tickets

),

-- engagement ------------------------------------------------------------------------------

session_windows as (

    select
        sessions.customer_key,
        as_of_dates.as_of_date,
        count(*) filter (
            where sessions.session_date > {{ dbt.dateadd('day', -window, 'as_of_dates.as_of_date') }}
              and sessions.session_date <= as_of_dates.as_of_date
        ) as sessions_recent,
        count(*) filter (
            where sessions.session_date > {{ dbt.dateadd('day', -2 * window, 'as_of_dates.as_of_date') }}
              and sessions.session_date <= {{ dbt.dateadd('day', -window, 'as_of_dates.as_of_date') }}
        ) as sessions_prior
    from sessions
    cross join as_of_dates
    where sessions.customer_key is not null
      and sessions.session_date > {{ dbt.dateadd('day', -2 * window, 'as_of_dates.as_of_date') }}
      and sessions.session_date <= as_of_dates.as_of_date
    group by 1, 2

),

engagement_moments as (

    select
        customer_key,
        'engagement_drop' as moment_type,
        cast(as_of_date as timestamp) as moment_at,
        cast(null as {{ text }}) as source_id,
        'digital' as channel,
        cast(null as {{ type_double() }}) as value_amount,
        cast(null as {{ type_double() }}) as sentiment_score,
        cast(null as {{ text }}) as ticket_priority,
        cast(sessions_recent as integer) as sessions_recent,
        cast(sessions_prior as integer) as sessions_prior,
        'sessions in the last {{ window }} days: ' || cast(sessions_recent as {{ text }})
            || ', in the {{ window }} days before: ' || cast(sessions_prior as {{ text }}) as reason,
        as_of_date
    from session_windows
    where sessions_prior >= {{ var('engagement_drop_min_prior_sessions') }}
      and sessions_recent <= sessions_prior * {{ var('engagement_drop_max_ratio') }}

),

unioned as (

    select * from cart_moments
    union all
    select * from ticket_moments
    union all
    select * from engagement_moments

),

final as (

    select
        cast(
            {{ dbt.hash("customer_key || '|' || moment_type || '|' || cast(moment_at as " ~ text ~ ") || '|' || coalesce(source_id, '')") }}
            as {{ text }}
        ) as moment_id,
        cast(customer_key as {{ text }}) as customer_key,
        cast(moment_type as {{ text }}) as moment_type,
        cast(moment_at as timestamp) as moment_at,
        cast(moment_at as date) as moment_date,
        cast({{ days_between('moment_at', 'as_of_date') }} as integer) as days_before_as_of,
        cast(source_id as {{ text }}) as source_id,
        cast(channel as {{ text }}) as channel,
        cast({{ stable_double('value_amount') }} as {{ type_double() }}) as value_amount,
        cast({{ stable_double('sentiment_score') }} as {{ type_double() }}) as sentiment_score,
        cast(ticket_priority as {{ text }}) as ticket_priority,
        cast(sessions_recent as integer) as sessions_recent,
        cast(sessions_prior as integer) as sessions_prior,
        cast(reason as {{ text }}) as reason,
        cast(as_of_date as date) as as_of_date
    from unioned

)

select * from final
