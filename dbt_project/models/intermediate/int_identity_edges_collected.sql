-- Every candidate edge of the identity graph, with the evidence for it.
-- Edges are bipartite: a contact node on one side, an email-hash or anonymous-id node on
-- the other. Node ids are typed text: 'contact:<id>', 'email:<md5>', 'anon:<anonymous_id>'.
--   crm_email    contact  <-> normalised email hash (duplicate CRM records meet here);
--                only syntactically valid emails (a placeholder like 'n/a' is no evidence)
--   login        contact  <-> anonymous id   (event with user_id = contact id)
--   order_match  contact  <-> anonymous id   (web purchase whose order_id is a CRM order)
--   email_click  contact  <-> anonymous id   (tracked email link, email_contact_id)
--
-- Incremental (delete+insert on edge_id; macros/identity_edges.sql): the login and
-- email_click edges - one aggregate over the events of a device, most of the cost - are
-- derived again only for the devices with such an event loaded since the newest one here
-- (loaded_at), from all of that device's events; the crm_email and order_match edges
-- (one row per contact, per web purchase) are derived whole each run, after the pre-hook
-- deleted them, so an email or order that changed leaves no stale edge. The rows equal a
-- full build's.
{{
    config(
        materialized=incremental_facts_materialization(),
        incremental_strategy='delete+insert',
        unique_key='edge_id',
        on_schema_change='sync_all_columns',
        pre_hook="{{ identity_edges_forget() }}",
    )
}}

{%- set watermark = identity_edges_watermark() %}

with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

orders as (

    select * from {{ ref('stg_crm__orders') }}

),

events as {{ not_materialized() }} (

    select * from {{ ref('stg_web__events') }}

),

{% if watermark is not none %}
touched_devices as (

    select distinct anonymous_id
    from events
    where {{ loaded_since('loaded_at', watermark) }}
      and (user_contact_id is not null or email_contact_id is not null)

),

device_events as {{ not_materialized() }} (

    select events.*
    from events
    where events.anonymous_id in (select anonymous_id from touched_devices)

),
{% else %}
device_events as {{ not_materialized() }} (

    select * from events

),
{% endif %}

email_edges as (

    select
        contact_id,
        'email:' || email_hash as other_node_id,
        'email' as other_node_type,
        'crm_email' as edge_type,
        cast(contact_id as {{ dbt.type_string() }}) as evidence_id,
        created_at as first_seen_at,
        updated_at as last_seen_at,
        1 as evidence_count,
        loaded_at,
        loaded_at as first_loaded_at
    from contacts
    where email_hash is not null
      and is_email_valid  -- 'n/a', 'anna.kim@', ... prove nothing

),

login_edges as (

    select
        user_contact_id as contact_id,
        'anon:' || anonymous_id as other_node_id,
        'anon' as other_node_type,
        'login' as edge_type,
        min(event_id) as evidence_id,
        min(collector_at) as first_seen_at,
        max(collector_at) as last_seen_at,
        count(*) as evidence_count,
        max(loaded_at) as loaded_at,
        {{ first_loaded_at('loaded_at') }} as first_loaded_at
    from device_events
    where user_contact_id is not null
    group by 1, 2

),

order_match_edges as (

    select
        orders.contact_id,
        'anon:' || events.anonymous_id as other_node_id,
        'anon' as other_node_type,
        'order_match' as edge_type,
        min(cast(events.order_id as {{ dbt.type_string() }})) as evidence_id,
        min(events.collector_at) as first_seen_at,
        max(events.collector_at) as last_seen_at,
        count(*) as evidence_count,
        max(events.loaded_at) as loaded_at,
        -- a pair is evidence once both the event and the order are loaded
        {{ first_loaded_at(
            'case when events.loaded_at is null or orders.loaded_at is null then null'
            ~ ' when events.loaded_at > orders.loaded_at then events.loaded_at'
            ~ ' else orders.loaded_at end'
        ) }} as first_loaded_at
    from events
    inner join orders
        on events.order_id = orders.order_id
    where events.event_type = 'purchase'
    group by 1, 2

),

email_click_edges as (

    select
        email_contact_id as contact_id,
        'anon:' || anonymous_id as other_node_id,
        'anon' as other_node_type,
        'email_click' as edge_type,
        min(event_id) as evidence_id,
        min(collector_at) as first_seen_at,
        max(collector_at) as last_seen_at,
        count(*) as evidence_count,
        max(loaded_at) as loaded_at,
        {{ first_loaded_at('loaded_at') }} as first_loaded_at
    from device_events
    where email_contact_id is not null
    group by 1, 2

),

unioned as (

    select * from email_edges
    union all
    select * from login_edges
    union all
    select * from order_match_edges
    union all
    select * from email_click_edges

),

final as (

    select
        {{ dbt.hash("'contact:' || cast(contact_id as " ~ dbt.type_string() ~ ") || '|' || other_node_id || '|' || edge_type") }} as edge_id,
        'contact:' || cast(contact_id as {{ dbt.type_string() }}) as contact_node_id,
        contact_id,
        other_node_id,
        other_node_type,
        edge_type,
        evidence_id,
        cast(first_seen_at as timestamp) as first_seen_at,
        cast(last_seen_at as timestamp) as last_seen_at,
        cast(evidence_count as bigint) as evidence_count,
        cast(loaded_at as timestamp) as loaded_at,
        cast(first_loaded_at as timestamp) as first_loaded_at
    from unioned

)

select * from final
