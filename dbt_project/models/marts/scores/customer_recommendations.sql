{{ config(tags=['needs_scores']) }}

-- The latest scoring run (latest as_of_date) of ml.product_recommendations.
with

recommendations as (

    select * from {{ source('ml', 'product_recommendations') }}

),

latest_run as (

    select max(as_of_date) as as_of_date from recommendations

),

final as (

    select
        cast(recommendations.customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(recommendations.as_of_date as date) as as_of_date,
        cast(recommendations.rank as integer) as rank,
        {{ text_id('recommendations.product_id') }} as product_id,
        cast(recommendations.score as double precision) as score,
        cast(recommendations.reason as {{ dbt.type_string() }}) as reason,
        cast(recommendations.model_version as {{ dbt.type_string() }}) as model_version,
        cast(recommendations.scored_at as timestamp) as scored_at
    from recommendations
    inner join latest_run
        on recommendations.as_of_date = latest_run.as_of_date

)

select * from final
