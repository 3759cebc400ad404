{{ config(crm_staging_config('product_id')) }}

with

source as (

    -- the CRM as the run's date read it (the newest state, or a past one in a re-run): in
    -- an incremental build only the keys loaded since (macros/crm_staging.sql)
    {{ crm_staging_batch('crm_products', 'product_id') }}

),

deduplicated as (

    -- ingest merges on the key, so this is only a guard: keep the latest version of a key
    select
        *,
        row_number() over (
            partition by product_id
            order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source

),

renamed as (

    select
        -- ids
        {{ text_id('product_id') }} as product_id,

        -- text
        name as product_name,
        coalesce(nullif(lower(trim(category)), ''), 'unknown') as category,
        brand,

        -- numerics
        cast(price as {{ type_double() }}) as price,

        -- booleans
        coalesce(is_discontinued, false) as is_discontinued,

        -- timestamps
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where version_rank = 1

)

select * from renamed
