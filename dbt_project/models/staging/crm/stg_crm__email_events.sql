{#- CRM email events, one row per event: an incremental table (macros/crm_staging.sql). -#}
{{ config(crm_staging_config('email_event_id')) }}

with

source as (

    -- the CRM as the run's date read it (the newest state, or a past one in a re-run): in
    -- an incremental build only the keys loaded since (macros/crm_staging.sql)
    {{ crm_staging_batch('crm_email_events', 'email_event_id') }}

),

deduplicated as (

    -- ingest merges on the key, so this is only a guard: keep the latest version of a key
    select
        *,
        row_number() over (
            partition by email_event_id
            order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source

),

renamed as (

    select
        -- ids
        {{ text_id('email_event_id') }} as email_event_id,
        {{ text_id('contact_id') }} as contact_id,
        campaign_id,

        -- dimensions
        lower(trim(event_type)) as event_type,

        -- timestamps
        cast(occurred_at as timestamp) as occurred_at,
        cast(updated_at as timestamp) as updated_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where version_rank = 1

)

select * from renamed
