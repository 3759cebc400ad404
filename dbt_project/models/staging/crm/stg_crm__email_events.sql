with

source as (

    -- the CRM as the run's date read it: the newest state, or a past one in a re-run
    {{ crm_state_as_of('crm_email_events') }}

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
