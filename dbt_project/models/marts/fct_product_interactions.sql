-- Customer x product interactions for the recommender: web product views and add-to-carts
-- (with their session) and CRM order lines (purchases, session_id null).
-- Cancelled orders are left out; a web purchase event is covered by its CRM order line.
with

events as (

    select * from {{ ref('stg_web__events') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

web_interactions as (

    select
        sessions.customer_key,
        sessions.session_id,
        events.product_id,
        case events.event_type
            when 'product_view' then 'view'
            when 'add_to_cart' then 'cart'
        end as interaction_type,
        events.collector_at as occurred_at,
        events.event_id as source_id
    from events
    inner join sessions
        on events.anonymous_id = sessions.anonymous_id
        and events.collector_at between sessions.started_at and sessions.ended_at
    where events.event_type in ('product_view', 'add_to_cart')
      and events.product_id is not null

),

order_interactions as (

    select
        customer_key,
        cast(null as {{ dbt.type_string() }}) as session_id,
        product_id,
        'purchase' as interaction_type,
        ordered_at as occurred_at,
        cast(order_item_id as {{ dbt.type_string() }}) as source_id
    from order_items
    where status <> 'cancelled' or status is null

),

final as (

    select * from web_interactions
    union all
    select * from order_interactions

)

select * from final
