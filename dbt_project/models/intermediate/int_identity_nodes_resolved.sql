-- Connected components of the identity graph (persons), by min-label propagation with
-- root hooking and pointer jumping (Shiloach-Vishkin style), unrolled into
-- var('identity_passes') passes, on integer ranks of the nodes' sort keys. Every node starts
-- with its own rank as label; a pass
--   1. spreads: each node takes the smallest label among itself and its neighbours;
--   2. hooks: the node a label names takes the smallest spread label of the nodes that
--      carry its label (a whole tree of labels moves at once, not one hop);
--   3. jumps: each node takes the label of the node its label names.
-- Labels only decrease and stay inside the component, so the fixpoint is the component's
-- smallest sort key; a chain of n nodes needs O(log n) passes instead of n (a path of
-- 1,000 nodes in random key order took 6-8 in our trials; real persons converge in 2-3).
-- The sort key ranks contacts first (lowest contact id: macros/text_helpers.sql), then email hashes, then
-- anonymous ids, so a person's key is the hash of their lowest contact id when they have
-- one and it does not move when new cookies join.
-- is_converged = false flags a node whose label one more pass would still change.
--
-- Incremental (issue #18): a build propagates only over the components a change touches -
-- the components at both ends of a used edge whose ends carry different labels (a new
-- link merges them), the component of a node the over-merge guard cut off (a hub whose
-- label is not its own) or of an email node no longer used, and the new nodes (contacts,
-- used email hashes, devices with a web event loaded after the watermark that
-- int_identity_inputs_loaded recorded). Their rows replace the old ones (node_id); the
-- other components keep theirs. Labels are the components' smallest sort keys, so the
-- rows equal a full build's. No watermark = a full build. On Spark (no DELETE) a table,
-- rebuilt whole.
{{ config(
    materialized=incremental_facts_materialization(),
    incremental_strategy='delete+insert',
    unique_key='node_id',
    on_schema_change='fail',
    post_hook=["{{ identity_nodes_forget_unused_emails() }}"] + drop_cte_tables()
) }}
{%- set passes = var('identity_passes') | int %}
{%- set watermark = recorded_watermark('int_identity_inputs_loaded', 'events_loaded_at') if is_incremental() else none %}
{%- set scoped = is_incremental() and watermark is not none %}
with

{% call warehouse_cte('contacts') %}

    select * from {{ ref('stg_crm__contacts') }}

{% endcall %}

{% call warehouse_cte('orders') %}

    select * from {{ ref('stg_crm__orders') }}

{% endcall %}

{% call warehouse_cte('tickets') %}

    select * from {{ ref('stg_crm__tickets') }}

{% endcall %}

{% call warehouse_cte('email_events') %}

    select * from {{ ref('stg_crm__email_events') }}

{% endcall %}

{% call warehouse_cte('survey_responses') %}

    select * from {{ ref('stg_crm__survey_responses') }}

{% endcall %}

{% call warehouse_cte('events') %}

    select * from {{ ref('stg_web__events') }}

{% endcall %}

{% call warehouse_cte('edges') %}

    select * from {{ ref('int_identity_edges_guarded') }}

{% endcall %}

{% call warehouse_cte('contact_ids') %}

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

{% endcall %}

{% call warehouse_cte('candidate_nodes') %}

    select
        'contact:' || cast(contact_id as {{ dbt.type_string() }}) as node_id,
        'contact' as node_type,
        contact_id,
        cast(null as {{ dbt.type_string() }}) as email_hash,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        '1:' || {{ contact_order_key('contact_id') }} as sort_key
    from contact_ids
    where contact_id is not null

    union all

    -- an email hash is a node only when it merges something (a placeholder shared by
    -- too many contacts, or an invalid email, is no node and no person)
    select distinct
        other_node_id as node_id,
        'email' as node_type,
        cast(null as {{ dbt.type_string() }}) as contact_id,
        substr(other_node_id, 7) as email_hash,
        cast(null as {{ dbt.type_string() }}) as anonymous_id,
        '2:' || substr(other_node_id, 7) as sort_key
    from edges
    where other_node_type = 'email'
      and is_used

    union all

    select distinct
        'anon:' || anonymous_id as node_id,
        'anon' as node_type,
        cast(null as {{ dbt.type_string() }}) as contact_id,
        cast(null as {{ dbt.type_string() }}) as email_hash,
        anonymous_id,
        '3:' || anonymous_id as sort_key
    from events
    {%- if scoped %}
    -- devices already resolved are in {{ this }}; new ones come with newly loaded events
    where {{ loaded_since('loaded_at', watermark) }}

    union

    select
        node_id,
        node_type,
        contact_id,
        email_hash,
        anonymous_id,
        '3:' || anonymous_id as sort_key
    from {{ this }}
    where node_type = 'anon'
    {%- endif %}

{% endcall %}
{%- if scoped %}

{% call warehouse_cte('previous') %}

    select node_id, component_label from {{ this }}

{% endcall %}

{% call warehouse_cte('used_edge_labels') %}

    select
        contact_previous.component_label as contact_label,
        other_previous.component_label as other_label
    from edges
    left join previous as contact_previous
        on edges.contact_node_id = contact_previous.node_id
    left join previous as other_previous
        on edges.other_node_id = other_previous.node_id
    where edges.is_used

{% endcall %}

{% call warehouse_cte('affected_labels') %}

    -- a used edge between two components (or to a new node): they merge
    select contact_label as component_label
    from used_edge_labels
    where contact_label is not null and contact_label is distinct from other_label

    union

    select other_label
    from used_edge_labels
    where other_label is not null and other_label is distinct from contact_label

    union

    -- a node the over-merge guard cuts off that still shares a label: its component splits
    select previous.component_label
    from edges
    inner join previous
        on edges.other_node_id = previous.node_id
    where not edges.is_used
      and previous.component_label <> case
          when edges.other_node_type = 'email' then '2:' || substr(edges.other_node_id, 7)
          else '3:' || substr(edges.other_node_id, 6)
      end

    union

    -- an email node no longer used (the post-hook deletes it): its component may split
    select previous.component_label
    from {{ this }} as previous
    where previous.node_type = 'email'
      and previous.node_id not in (
          select other_node_id from edges where is_used and other_node_type = 'email'
      )

{% endcall %}

{% call warehouse_cte('nodes', materialize_on_spark=true) %}

    -- new nodes, and every node of an affected component
    select candidate_nodes.*
    from candidate_nodes
    left join previous
        on candidate_nodes.node_id = previous.node_id
    where previous.node_id is null
       or previous.component_label in (select component_label from affected_labels)

{% endcall %}
{%- else %}

{% call warehouse_cte('nodes', materialize_on_spark=true) %}

    select * from candidate_nodes

{% endcall %}
{%- endif %}

-- propagation runs on each node's rank by sort key (unique per node): integer labels keep
-- the passes small. They are all held until the query ends; as text at scale L (4.1M nodes,
-- 27 passes) they spilled 36 GB under the 4 GB memory limit and filled the disk
{% call warehouse_cte('node_keys', materialize=true) %}

    select
        node_id,
        sort_key,
        row_number() over (order by sort_key) as node_rank
    from nodes

{% endcall %}

{% call warehouse_cte('used_edges') %}

    select
        contact_keys.node_rank as contact_key,
        other_keys.node_rank as other_key
    from edges
    inner join node_keys as contact_keys
        on edges.contact_node_id = contact_keys.node_id
    inner join node_keys as other_keys
        on edges.other_node_id = other_keys.node_id
    where edges.is_used

{% endcall %}

-- a label is the rank of a node: the smallest rank of a component is its smallest sort key
{% call warehouse_cte('adjacency', materialize_on_spark=true) %}

    select contact_key as node_key, other_key as neighbour_key from used_edges
    union
    select other_key as node_key, contact_key as neighbour_key from used_edges
    union
    select node_rank as node_key, node_rank as neighbour_key from node_keys

{% endcall %}

{% call warehouse_cte('pass_0', materialize=true) %}

    select node_rank as node_key, node_rank as label from node_keys

{% endcall %}
{% for i in range(1, passes + 2) %}
{% call warehouse_cte('spread_' ~ i, materialize=true) %}

    select
        adjacency.node_key,
        min(neighbour.label) as label
    from adjacency
    inner join pass_{{ i - 1 }} as neighbour
        on adjacency.neighbour_key = neighbour.node_key
    group by 1

{% endcall %}

{% call warehouse_cte('hooks_' ~ i) %}

    select
        previous.label as owner_key,
        min(spread_{{ i }}.label) as label
    from pass_{{ i - 1 }} as previous
    inner join spread_{{ i }}
        on previous.node_key = spread_{{ i }}.node_key
    group by 1

{% endcall %}

{% call warehouse_cte('hooked_' ~ i, materialize=true) %}

    select
        previous.node_key,
        least(spread_{{ i }}.label, owner.label, hooks_{{ i }}.label) as label
    from pass_{{ i - 1 }} as previous
    inner join spread_{{ i }}
        on previous.node_key = spread_{{ i }}.node_key
    inner join pass_{{ i - 1 }} as owner
        on previous.label = owner.node_key
    inner join hooks_{{ i }}
        on previous.label = hooks_{{ i }}.owner_key

{% endcall %}

{% call warehouse_cte('pass_' ~ i, materialize=true) %}

    select
        hooked.node_key,
        least(hooked.label, target.label) as label
    from hooked_{{ i }} as hooked
    inner join hooked_{{ i }} as target
        on hooked.label = target.node_key

{% endcall %}
{% endfor %}
final as (

    select
        nodes.node_id,
        nodes.node_type,
        nodes.contact_id,
        nodes.email_hash,
        nodes.anonymous_id,
        {{ dbt.hash('labels.sort_key') }} as customer_key,
        labels.sort_key as component_label,
        last_pass.label = check_pass.label as is_converged
    from nodes
    inner join node_keys
        on nodes.node_id = node_keys.node_id
    inner join pass_{{ passes }} as last_pass
        on node_keys.node_rank = last_pass.node_key
    inner join pass_{{ passes + 1 }} as check_pass
        on node_keys.node_rank = check_pass.node_key
    inner join node_keys as labels
        on last_pass.label = labels.node_rank

)

select * from final
