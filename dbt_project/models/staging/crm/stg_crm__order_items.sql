{{ config(crm_staging_config('order_item_id')) }}

with

source as (

    -- the CRM as the run's date read it (the newest state, or a past one in a re-run): in
    -- an incremental build only the keys loaded since (macros/crm_staging.sql)
    {{ crm_staging_batch('crm_order_items', 'order_item_id') }}

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
        {{ text_id('order_item_id') }} as order_item_id,
        {{ text_id('order_id') }} as order_id,
        {{ text_id('product_id') }} as product_id,

        -- numerics
        cast(coalesce(quantity, 1) as integer) as quantity,
        cast(unit_price as {{ type_double() }}) as unit_price,
        cast(coalesce(quantity, 1) * coalesce(unit_price, 0) as {{ type_double() }}) as line_amount,

        -- timestamps
        cast(updated_at as timestamp) as updated_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where version_rank = 1

)

select * from renamed
