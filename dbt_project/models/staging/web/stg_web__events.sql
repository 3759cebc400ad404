with

source as (

    select * from {{ source('web', 'web_events') }}

),

deduplicated as (

    -- ingest may load the same event twice: keep the first load of each event_id
    select
        *,
        row_number() over (
            partition by event_id
            order by _loaded_at, _batch_id, collector_timestamp
        ) as load_rank
    from source

),

renamed as (

    select
        -- ids
        event_id,
        anonymous_id,
        nullif(trim(user_id), '') as user_id,
        case
            when {{ is_integer_text('user_id') }} then cast(trim(user_id) as bigint)
        end as user_contact_id,
        cast(product_id as bigint) as product_id,
        cast(order_id as bigint) as order_id,
        cast(email_contact_id as bigint) as email_contact_id,

        -- dimensions
        lower(trim(event_type)) as event_type,
        lower(trim(platform)) as platform,
        lower(trim(device_type)) as device_type,
        user_agent,
        page_url,
        nullif(trim(referrer), '') as referrer,
        nullif(lower(trim(utm_source)), '') as utm_source,
        nullif(lower(trim(utm_medium)), '') as utm_medium,
        nullif(trim(utm_campaign), '') as utm_campaign,
        search_query,

        -- numerics
        cast(price as double precision) as price,
        cast(quantity as integer) as quantity,

        -- timestamps
        cast(collector_timestamp as timestamp) as collector_at,
        cast(device_timestamp as timestamp) as device_at,
        cast(_loaded_at as timestamp) as loaded_at

    from deduplicated
    where load_rank = 1
      and event_id is not null
      and anonymous_id is not null
      and collector_timestamp is not null

)

select * from renamed
