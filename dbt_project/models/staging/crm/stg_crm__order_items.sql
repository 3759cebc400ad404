with

source as (

    select * from {{ source('crm', 'crm_order_items') }}

),

deduplicated as (

    -- ingest merges on the key, so this is only a guard: keep the latest version of a key
    select
        *,
        row_number() over (
            partition by order_item_id
            order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source

),

renamed as (

    select
        -- ids
        cast(order_item_id as bigint) as order_item_id,
        cast(order_id as bigint) as order_id,
        cast(product_id as bigint) as product_id,

        -- numerics
        cast(coalesce(quantity, 1) as integer) as quantity,
        cast(unit_price as double precision) as unit_price,
        cast(coalesce(quantity, 1) * coalesce(unit_price, 0) as double precision) as line_amount,

        -- timestamps
        cast(updated_at as timestamp) as updated_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where version_rank = 1

)

select * from renamed
