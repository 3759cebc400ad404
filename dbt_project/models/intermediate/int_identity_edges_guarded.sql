-- Over-merge guard: a hub node (email hash or anonymous id) linked to more than
-- var('identity_max_degree') distinct contacts - a shared family tablet, a shop-floor
-- kiosk, a placeholder email - is evidence of nothing, so none of its edges merge ids.
-- The node itself stays in the graph (it becomes its own anonymous person).
with

edges as {{ not_materialized() }} (

    select * from {{ ref('int_identity_edges_collected') }}

),

hub_degrees as (

    select
        other_node_id,
        count(distinct contact_id) as contact_degree
    from edges
    group by 1

),

final as (

    select
        edges.*,
        hub_degrees.contact_degree,
        hub_degrees.contact_degree <= {{ var('identity_max_degree') }} as is_used,
        case
            when hub_degrees.contact_degree > {{ var('identity_max_degree') }}
                then 'hub node linked to ' || cast(hub_degrees.contact_degree as {{ dbt.type_string() }})
                    || ' contacts (max {{ var("identity_max_degree") }})'
        end as excluded_reason
    from edges
    inner join hub_degrees
        on edges.other_node_id = hub_degrees.other_node_id

)

select * from final
