-- Audit of the identity graph: every candidate edge, whether it was used to merge ids
-- (is_used) or excluded by the over-merge guard (excluded_reason), the evidence
-- (edge_type, evidence_id, first/last seen, count) and the person it ended up in.
with

edges as (

    select * from {{ ref('int_identity_edges_guarded') }}

),

nodes as (

    select * from {{ ref('int_identity_nodes_resolved') }}

),

final as (

    select
        edges.edge_id,
        contact_nodes.customer_key,
        edges.contact_node_id,
        edges.other_node_id,
        edges.other_node_type,
        edges.edge_type,
        edges.evidence_id,
        edges.evidence_count,
        edges.first_seen_at,
        edges.last_seen_at,
        edges.contact_degree,
        edges.is_used,
        edges.excluded_reason
    from edges
    inner join nodes as contact_nodes
        on edges.contact_node_id = contact_nodes.node_id

)

select * from final
