with

orders as (

    select * from {{ ref('stg_crm__orders') }}

),

order_items as (

    select * from {{ ref('stg_crm__order_items') }}

),

identity_nodes as (

    select * from {{ ref('int_identity_nodes_resolved') }}

),

contact_keys as (

    select contact_id, customer_key
    from identity_nodes
    where node_type = 'contact'

),

items_per_order as (

    select
        order_id,
        sum(quantity) as item_count
    from order_items
    group by 1

),

final as (

    select
        orders.order_id,
        contact_keys.customer_key,
        orders.contact_id,
        orders.ordered_at,
        cast(orders.ordered_at as date) as order_date,
        orders.status,
        orders.channel,
        orders.total_amount,
        cast(coalesce(items_per_order.item_count, 0) as integer) as item_count,
        orders.is_cancelled,
        orders.is_returned,
        orders.is_late_delivery,
        orders.delivered_at,
        orders.promised_at,
        orders.updated_at
    from orders
    left join contact_keys
        on orders.contact_id = contact_keys.contact_id
    left join items_per_order
        on orders.order_id = items_per_order.order_id

)

select * from final
