-- Every candidate edge of the identity graph, with the evidence for it.
-- Edges are bipartite: a contact node on one side, an email-hash or anonymous-id node on
-- the other. Node ids are typed text: 'contact:<id>', 'email:<md5>', 'anon:<anonymous_id>'.
--   crm_email    contact  <-> normalised email hash (duplicate CRM records meet here);
--                only syntactically valid emails (a placeholder like 'n/a' is no evidence)
--   login        contact  <-> anonymous id   (event with user_id = contact id)
--   order_match  contact  <-> anonymous id   (web purchase whose order_id is a CRM order)
--   email_click  contact  <-> anonymous id   (tracked email link, email_contact_id)
with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

orders as (

    select * from {{ ref('stg_crm__orders') }}

),

events as (

    select * from {{ ref('stg_web__events') }}

),

email_edges as (

    select
        contact_id,
        'email:' || email_hash as other_node_id,
        'email' as other_node_type,
        'crm_email' as edge_type,
        cast(contact_id as {{ dbt.type_string() }}) as evidence_id,
        created_at as first_seen_at,
        updated_at as last_seen_at,
        1 as evidence_count
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
        count(*) as evidence_count
    from events
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
        count(*) as evidence_count
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
        count(*) as evidence_count
    from events
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
        cast(evidence_count as bigint) as evidence_count
    from unioned

)

select * from final
