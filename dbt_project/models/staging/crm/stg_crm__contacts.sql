{{ config(crm_staging_config('contact_id')) }}

with

source as (

    -- the CRM as the run's date read it (the newest state, or a past one in a re-run): in
    -- an incremental build only the keys loaded since (macros/crm_staging.sql)
    {{ crm_staging_batch('crm_contacts', 'contact_id') }}

),

deduplicated as (

    -- ingest merges on the key, so this is only a guard: keep the latest version of a key
    select
        *,
        row_number() over (
            partition by contact_id
            order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source

),

renamed as (

    select
        -- ids
        {{ text_id('contact_id') }} as contact_id,

        -- pii (stays in staging)
        first_name,
        last_name,
        email,
        phone,
        {{ normalise_email('email') }} as email_normalised,
        {{ email_hash('email') }} as email_hash,

        -- profile
        upper(trim(country)) as country,
        lower(trim(lifecycle_stage)) as lifecycle_stage,
        owner,

        -- booleans
        coalesce(marketing_consent, false) as has_marketing_consent,
        coalesce(is_deleted, false) as is_deleted,
        {{ is_valid_email('email') }} as is_email_valid,

        -- timestamps
        cast(created_at as timestamp) as created_at,
        cast(updated_at as timestamp) as updated_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where version_rank = 1

)

select * from renamed
