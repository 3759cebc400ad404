with

products as (

    select * from {{ ref('stg_crm__products') }}

),

final as (

    select
        product_id,
        product_name as name,
        category,
        brand,
        price,
        is_discontinued
    from products

)

select * from final
