{#-
    Customer x product interactions for the recommender: web product views and add-to-carts
    (with their session and device) and CRM order lines that are purchases
    (fct_order_items.is_purchase: cancelled and returned orders and credit notes are not;
    session_id null). A web purchase event is covered by its CRM order line.

    Incremental (delete+insert on interaction_type + source_id), see README "Incremental
    builds". A run re-derives only
      - web rows of the devices fct_sessions holds a session of loaded since the latest
        loaded_at here, from the start of the earliest such session on (a late event can
        merge two sessions and renumber the later ones; the events before it keep their
        session: macros/incremental_facts.sql, rederived_anonymous_ids), and every web row
        of the devices whose stored customer_key differs from fct_sessions' (re-keyed by
        a new identity link);
      - purchase rows of the order lines fct_order_items holds loaded since then or whose
        stored customer_key differs. A line that stopped being a purchase (cancelled,
        returned) comes as a marker row (session_id = removed_row_marker()) that replaces
        the old row and is deleted by the post-hook, so nothing stale stays.
    The range join of events to sessions - the cost of this model - runs only for the
    touched devices.
-#}
{{
    config(
        materialized=incremental_facts_materialization(),
        meta={'test_new_rows_by': 'loaded_at'},
        incremental_strategy='delete+insert',
        unique_key=['interaction_type', 'source_id'],
        on_schema_change='fail',
        post_hook=delete_removed_rows_hook('session_id'),
    )
}}

{%- set watermark = incremental_watermark('loaded_at') %}

with

events as (

    select * from {{ ref('stg_web__events') }}

),

sessions as {{ not_materialized() }} (

    select * from {{ ref('fct_sessions') }}

),

order_items as {{ not_materialized() }} (

    select * from {{ ref('fct_order_items') }}

),

{% if watermark is not none %}
changed_anonymous_ids as (

    {{ rederived_anonymous_ids(
        'sessions', '(select distinct anonymous_id, customer_key from sessions)', watermark
    ) }}

),

scoped_events as (

    {{ rederived_rows('events', 'collector_at', 'changed_anonymous_ids') }}

),

scoped_sessions as (

    {{ rederived_rows('sessions', 'started_at', 'changed_anonymous_ids') }}

),

changed_order_items as (

    select order_item_id
    from order_items
    where {{ loaded_since('loaded_at', watermark) }}

    union

    select order_items.order_item_id
    from {{ this }} as existing
    inner join order_items
        on existing.source_id = cast(order_items.order_item_id as {{ dbt.type_string() }})
    where existing.interaction_type = 'purchase'
      and existing.customer_key is distinct from order_items.customer_key

),

scoped_order_items as (

    select order_items.*
    from order_items
    where order_items.order_item_id in (select order_item_id from changed_order_items)

),
{% else %}
scoped_events as (

    select * from events

),

scoped_sessions as (

    select * from sessions

),

scoped_order_items as (

    select * from order_items
    where is_purchase

),
{% endif %}

web_interactions as (

    select
        scoped_sessions.customer_key,
        scoped_sessions.session_id,
        scoped_events.product_id,
        case scoped_events.event_type
            when 'product_view' then 'view'
            when 'add_to_cart' then 'cart'
        end as interaction_type,
        scoped_events.collector_at as occurred_at,
        scoped_events.event_id as source_id,
        scoped_events.anonymous_id,
        scoped_events.loaded_at
    from scoped_events
    inner join scoped_sessions
        on scoped_events.anonymous_id = scoped_sessions.anonymous_id
        and scoped_events.collector_at between scoped_sessions.started_at and scoped_sessions.ended_at
    where scoped_events.event_type in ('product_view', 'add_to_cart')
      and scoped_events.product_id is not null

),

order_interactions as (

    select
        customer_key,
        case
            when is_purchase then cast(null as {{ dbt.type_string() }})
            else {{ removed_row_marker() }}
        end as session_id,
        product_id,
        'purchase' as interaction_type,
        ordered_at as occurred_at,
        cast(order_item_id as {{ dbt.type_string() }}) as source_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        loaded_at
    from scoped_order_items

),

final as (

    select * from web_interactions
    union all
    select * from order_interactions

)

select * from final
