-- Connected components of the identity graph by label propagation, unrolled into
-- var('identity_passes') passes: each pass gives every node the smallest label among itself
-- and its neighbours. The label is a sort key that ranks contacts first (lowest contact id),
-- then email hashes, then anonymous ids, so a person's key is the hash of their lowest
-- contact id when they have one and it does not move when new cookies join.
-- is_converged = false flags a component wider than the number of passes.
{%- set passes = var('identity_passes') | int %}
with

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

orders as (

    select * from {{ ref('stg_crm__orders') }}

),

tickets as (

    select * from {{ ref('stg_crm__tickets') }}

),

email_events as (

    select * from {{ ref('stg_crm__email_events') }}

),

survey_responses as (

    select * from {{ ref('stg_crm__survey_responses') }}

),

events as (

    select * from {{ ref('stg_web__events') }}

),

edges as (

    select * from {{ ref('int_identity_edges_guarded') }}

),

contact_ids as (

    select contact_id from contacts
    union
    select contact_id from orders
    union
    select contact_id from tickets
    union
    select contact_id from email_events
    union
    select contact_id from survey_responses
    union
    select contact_id from edges

),

nodes as (

    select
        'contact:' || cast(contact_id as {{ dbt.type_string() }}) as node_id,
        'contact' as node_type,
        contact_id,
        cast(null as {{ dbt.type_string() }}) as email_hash,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        '1:' || lpad(cast(contact_id as {{ dbt.type_string() }}), 20, '0') as sort_key
    from contact_ids
    where contact_id is not null

    union all

    select distinct
        'email:' || email_hash as node_id,
        'email' as node_type,
        cast(null as bigint) as contact_id,
        email_hash,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        '2:' || email_hash as sort_key
    from contacts
    where email_hash is not null

    union all

    select distinct
        'anon:' || anonymous_id as node_id,
        'anon' as node_type,
        cast(null as bigint) as contact_id,
        cast(null as {{ dbt.type_string() }}) as email_hash,
        anonymous_id,
        '3:' || anonymous_id as sort_key
    from events

),

adjacency as (

    select contact_node_id as node_id, other_node_id as neighbour_id from edges where is_used
    union
    select other_node_id as node_id, contact_node_id as neighbour_id from edges where is_used
    union
    select node_id, node_id as neighbour_id from nodes

),

pass_0 as (

    select node_id, sort_key as label from nodes

),
{% for i in range(1, passes + 2) %}
pass_{{ i }} as (

    select
        adjacency.node_id,
        min(pass_{{ i - 1 }}.label) as label
    from adjacency
    inner join pass_{{ i - 1 }}
        on adjacency.neighbour_id = pass_{{ i - 1 }}.node_id
    group by 1

),
{% endfor %}
final as (

    select
        nodes.node_id,
        nodes.node_type,
        nodes.contact_id,
        nodes.email_hash,
        nodes.anonymous_id,
        {{ dbt.hash('last_pass.label') }} as customer_key,
        last_pass.label as component_label,
        last_pass.label = check_pass.label as is_converged
    from nodes
    inner join pass_{{ passes }} as last_pass
        on nodes.node_id = last_pass.node_id
    inner join pass_{{ passes + 1 }} as check_pass
        on nodes.node_id = check_pass.node_id

)

select * from final
