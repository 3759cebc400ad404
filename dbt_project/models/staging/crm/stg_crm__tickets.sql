{{ config(crm_staging_config('ticket_id')) }}

with

source as (

    -- the CRM as the run's date read it (the newest state, or a past one in a re-run): in
    -- an incremental build only the keys loaded since (macros/crm_staging.sql)
    {{ crm_staging_batch('crm_tickets', 'ticket_id') }}

),

deduplicated as (

    -- ingest merges on the key, so this is only a guard: keep the latest version of a key
    select
        *,
        row_number() over (
            partition by ticket_id
            order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source

),

renamed as (

    select
        -- ids
        {{ text_id('ticket_id') }} as ticket_id,
        {{ text_id('contact_id') }} as contact_id,
        {{ text_id('order_id') }} as order_id,

        -- text (free text may hold PII: stays in staging / intermediate)
        subject,
        body,

        -- dimensions
        lower(trim(status)) as status,
        lower(trim(priority)) as priority,

        -- timestamps
        cast(created_at as timestamp) as created_at,
        cast(resolved_at as timestamp) as resolved_at,
        cast(updated_at as timestamp) as updated_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where version_rank = 1

)

select * from renamed
