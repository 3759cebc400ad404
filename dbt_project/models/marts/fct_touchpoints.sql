-- One timeline across every channel: orders, tickets, emails, surveys and web sessions.
with

orders as (

    select * from {{ ref('fct_orders') }}

),

tickets as (

    select * from {{ ref('int_tickets_scored') }}

),

email_events as (

    select * from {{ ref('stg_crm__email_events') }}

),

survey_responses as (

    select * from {{ ref('stg_crm__survey_responses') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

identity_nodes as (

    select * from {{ ref('int_identity_nodes_resolved') }}

),

contact_keys as (

    select contact_id, customer_key
    from identity_nodes
    where node_type = 'contact'

),

order_touchpoints as (

    select
        customer_key,
        ordered_at as occurred_at,
        coalesce(channel, 'unknown') as channel,
        'order' as touchpoint_type,
        total_amount as touchpoint_value,
        cast(null as double precision) as sentiment,
        cast(order_id as {{ dbt.type_string() }}) as source_id
    from orders

),

ticket_touchpoints as (

    select
        contact_keys.customer_key,
        tickets.created_at as occurred_at,
        'support' as channel,
        'ticket' as touchpoint_type,
        tickets.resolution_hours as touchpoint_value,
        tickets.sentiment_score as sentiment,
        cast(tickets.ticket_id as {{ dbt.type_string() }}) as source_id
    from tickets
    left join contact_keys
        on tickets.contact_id = contact_keys.contact_id

),

email_touchpoints as (

    select
        contact_keys.customer_key,
        email_events.occurred_at,
        'email' as channel,
        'email_' || email_events.event_type as touchpoint_type,
        cast(null as double precision) as touchpoint_value,
        cast(null as double precision) as sentiment,
        cast(email_events.email_event_id as {{ dbt.type_string() }}) as source_id
    from email_events
    left join contact_keys
        on email_events.contact_id = contact_keys.contact_id

),

survey_touchpoints as (

    select
        contact_keys.customer_key,
        survey_responses.responded_at as occurred_at,
        'survey' as channel,
        survey_responses.survey_type as touchpoint_type,
        cast(survey_responses.score as double precision) as touchpoint_value,
        cast(null as double precision) as sentiment,
        cast(survey_responses.survey_response_id as {{ dbt.type_string() }}) as source_id
    from survey_responses
    left join contact_keys
        on survey_responses.contact_id = contact_keys.contact_id

),

session_touchpoints as (

    select
        customer_key,
        started_at as occurred_at,
        channel_group as channel,
        'web_session' as touchpoint_type,
        cast(page_views + product_views as double precision) as touchpoint_value,
        cast(null as double precision) as sentiment,
        session_id as source_id
    from sessions

),

unioned as (

    select * from order_touchpoints
    union all
    select * from ticket_touchpoints
    union all
    select * from email_touchpoints
    union all
    select * from survey_touchpoints
    union all
    select * from session_touchpoints

),

final as (

    select
        {{ dbt.hash("touchpoint_type || '|' || source_id") }} as touchpoint_id,
        customer_key,
        cast(occurred_at as timestamp) as occurred_at,
        channel,
        touchpoint_type,
        cast(touchpoint_value as double precision) as value,
        sentiment,
        source_id
    from unioned

)

select * from final
