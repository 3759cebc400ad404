{#-
    One timeline across every channel: orders, tickets, emails, surveys and web sessions.

    Incremental (delete+insert on touchpoint_id), see README "Incremental builds". A run
    rebuilds only the touchpoints
      - whose source row was loaded since the latest loaded_at here (order: fct_orders'
        loaded_at; ticket, email event, survey answer: their raw load; web session: the
        sessions of the devices fct_sessions holds a session of loaded since then, from the
        earliest such session on: macros/incremental_facts.sql, rederived_anonymous_ids),
        and
      - of the contacts / anonymous ids whose stored customer_key differs from the one
        int_identity_nodes_resolved gives them now (re-keyed by a new identity link).
    A web session that no longer exists (a late event merged it into another) comes as a
    marker row (channel = removed_row_marker()) that replaces it and that the post-hook
    deletes. A changed sentiment lexicon needs a --full-refresh.
-#}
{{
    config(
        materialized=incremental_facts_materialization(),
        meta={'test_new_rows_by': 'loaded_at'},
        incremental_strategy='delete+insert',
        unique_key='touchpoint_id',
        on_schema_change='fail',
        post_hook=delete_removed_rows_hook('channel'),
    )
}}

{%- set watermark = incremental_watermark('loaded_at') %}

with

orders as (

    select * from {{ ref('fct_orders') }}

),

tickets as (

    select
        int_tickets_scored.*,
        stg_tickets.loaded_at
    from {{ ref('int_tickets_scored') }} as int_tickets_scored
    inner join {{ ref('stg_crm__tickets') }} as stg_tickets
        on int_tickets_scored.ticket_id = stg_tickets.ticket_id

),

email_events as (

    select * from {{ ref('stg_crm__email_events') }}

),

survey_responses as (

    select * from {{ ref('stg_crm__survey_responses') }}

),

sessions as {{ not_materialized() }} (

    select * from {{ ref('fct_sessions') }}

),

identity_nodes as {{ not_materialized() }} (

    select * from {{ ref('int_identity_nodes_resolved') }}

),

contact_keys as (

    select contact_id, customer_key
    from identity_nodes
    where node_type = 'contact'

),

{% if watermark is not none %}
anonymous_keys as (

    select anonymous_id, customer_key
    from identity_nodes
    where node_type = 'anon'

),

rekeyed_contacts as (

    {{ rekeyed_ids('contact_id', 'contact_keys') }}

),

touched_anonymous_ids as (

    {{ rederived_anonymous_ids('sessions', 'anonymous_keys', watermark) }}

),

touched_sessions as (

    {{ rederived_rows('sessions', 'started_at', 'touched_anonymous_ids') }}

),

removed_sessions as (

    -- sessions of touched devices that a late event merged away
    select existing.*
    from ({{ rederived_rows(this, 'occurred_at', 'touched_anonymous_ids') }}) as existing
    where existing.touchpoint_type = 'web_session'
      and existing.source_id not in (select session_id from touched_sessions)

),
{% endif %}

order_touchpoints as (

    select
        customer_key,
        ordered_at as occurred_at,
        coalesce(channel, 'unknown') as channel,
        'order' as touchpoint_type,
        total_amount as touchpoint_value,
        cast(null as {{ type_double() }}) as sentiment,
        cast(order_id as {{ dbt.type_string() }}) as source_id,
        contact_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        loaded_at
    from orders
    {%- if watermark is not none %}
    where {{ loaded_since('loaded_at', watermark) }}
       or contact_id in (select contact_id from rekeyed_contacts)
    {%- endif %}

),

ticket_touchpoints as (

    select
        contact_keys.customer_key,
        tickets.created_at as occurred_at,
        'support' as channel,
        'ticket' as touchpoint_type,
        tickets.resolution_hours as touchpoint_value,
        tickets.sentiment_score as sentiment,
        cast(tickets.ticket_id as {{ dbt.type_string() }}) as source_id,
        tickets.contact_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        tickets.loaded_at
    from tickets
    left join contact_keys
        on tickets.contact_id = contact_keys.contact_id
    {%- if watermark is not none %}
    where {{ loaded_since('tickets.loaded_at', watermark) }}
       or tickets.contact_id in (select contact_id from rekeyed_contacts)
    {%- endif %}

),

email_touchpoints as (

    select
        contact_keys.customer_key,
        email_events.occurred_at,
        'email' as channel,
        'email_' || email_events.event_type as touchpoint_type,
        cast(null as {{ type_double() }}) as touchpoint_value,
        cast(null as {{ type_double() }}) as sentiment,
        cast(email_events.email_event_id as {{ dbt.type_string() }}) as source_id,
        email_events.contact_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        email_events.loaded_at
    from email_events
    left join contact_keys
        on email_events.contact_id = contact_keys.contact_id
    {%- if watermark is not none %}
    where {{ loaded_since('email_events.loaded_at', watermark) }}
       or email_events.contact_id in (select contact_id from rekeyed_contacts)
    {%- endif %}

),

survey_touchpoints as (

    select
        contact_keys.customer_key,
        survey_responses.responded_at as occurred_at,
        'survey' as channel,
        survey_responses.survey_type as touchpoint_type,
        cast(survey_responses.score as {{ type_double() }}) as touchpoint_value,
        cast(null as {{ type_double() }}) as sentiment,
        cast(survey_responses.survey_response_id as {{ dbt.type_string() }}) as source_id,
        survey_responses.contact_id,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        survey_responses.loaded_at
    from survey_responses
    left join contact_keys
        on survey_responses.contact_id = contact_keys.contact_id
    {%- if watermark is not none %}
    where {{ loaded_since('survey_responses.loaded_at', watermark) }}
       or survey_responses.contact_id in (select contact_id from rekeyed_contacts)
    {%- endif %}

),

session_touchpoints as (

    select
        customer_key,
        started_at as occurred_at,
        channel_group as channel,
        'web_session' as touchpoint_type,
        cast(page_views + product_views as {{ type_double() }}) as touchpoint_value,
        cast(null as {{ type_double() }}) as sentiment,
        session_id as source_id,
        cast(null as {{ dbt.type_string() }}) as contact_id,
        anonymous_id,
        last_loaded_at as loaded_at
    {%- if watermark is not none %}
    from touched_sessions
    {%- else %}
    from sessions
    {%- endif %}

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
        cast(touchpoint_value as {{ type_double() }}) as value,
        sentiment,
        source_id,
        contact_id,
        anonymous_id,
        cast(loaded_at as timestamp) as loaded_at
    from unioned

)

select * from final
{%- if watermark is not none %}

union all

select
    touchpoint_id,
    customer_key,
    occurred_at,
    {{ removed_row_marker() }} as channel,
    touchpoint_type,
    value,
    sentiment,
    source_id,
    contact_id,
    anonymous_id,
    loaded_at
from removed_sessions
{%- endif %}
