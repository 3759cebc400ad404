-- One row: the analysis date. env DBT_AS_OF when set, else the date of the latest
-- order or web event in the data (today when there is no data at all).
with

orders as (

    select * from {{ ref('stg_crm__orders') }}

),

events as (

    select * from {{ ref('stg_web__events') }}

),

latest_activity as (

    select max(activity_at) as latest_activity_at
    from (
        select max(ordered_at) as activity_at from orders
        union all
        select max(collector_at) as activity_at from events
    ) as activity

),

final as (

    select
        cast(
            coalesce(
                {{ as_of_date_literal() }},
                cast(latest_activity_at as date),
                current_date
            ) as date
        ) as as_of_date
    from latest_activity

)

select * from final
