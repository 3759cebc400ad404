{{ config(crm_staging_config('survey_response_id')) }}

with

source as (

    -- the CRM as the run's date read it (the newest state, or a past one in a re-run): in
    -- an incremental build only the keys loaded since (macros/crm_staging.sql)
    {{ crm_staging_batch('crm_survey_responses', 'survey_response_id') }}

),

deduplicated as (

    -- ingest merges on the key, so this is only a guard: keep the latest version of a key
    select
        *,
        row_number() over (
            partition by survey_response_id
            order by updated_at desc, _loaded_at desc
        ) as version_rank
    from source

),

renamed as (

    select
        -- ids
        {{ text_id('survey_response_id') }} as survey_response_id,
        {{ text_id('contact_id') }} as contact_id,

        -- dimensions
        lower(trim(survey_type)) as survey_type,

        -- numerics
        cast(score as integer) as score,

        -- text
        comment as response_comment,

        -- timestamps
        cast(responded_at as timestamp) as responded_at,
        cast(updated_at as timestamp) as updated_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where version_rank = 1

)

select * from renamed
