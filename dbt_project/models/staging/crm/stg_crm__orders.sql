{{ config(crm_staging_config('order_id')) }}

with

source as (

    -- the CRM as the run's date read it (the newest state, or a past one in a re-run): in
    -- an incremental build only the keys loaded since (macros/crm_staging.sql)
    {{ crm_staging_batch('crm_orders', 'order_id') }}

),

deduplicated as (

    -- ingest merges on the key, so this is only a guard: keep the latest version of a key
    select
        *,
        row_number() over (
            partition by order_id
            order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source

),

renamed as (

    select
        -- ids
        {{ text_id('order_id') }} as order_id,
        {{ text_id('contact_id') }} as contact_id,

        -- dimensions
        lower(trim(status)) as status,
        lower(trim(channel)) as channel,

        -- numerics
        cast(coalesce(total_amount, 0) as {{ type_double() }}) as total_amount,

        -- booleans
        {{ order_is_cancelled('status') }} as is_cancelled,
        coalesce(lower(trim(status)) = 'returned', false) as is_returned,
        coalesce(delivered_at > promised_at, false) as is_late_delivery,

        -- timestamps
        cast(ordered_at as timestamp) as ordered_at,
        cast(delivered_at as timestamp) as delivered_at,
        cast(promised_at as timestamp) as promised_at,
        cast(updated_at as timestamp) as updated_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where version_rank = 1

)

select * from renamed
