{{ config(tags=['needs_scores']) }}

-- The latest scoring run on or before the run's date (int_as_of_dates_resolved) of
-- ml.product_recommendations (macros/latest_scores.sql): every row of that run.
with

recommendations as {{ not_materialized() }} (

    select * from {{ source('ml', 'product_recommendations') }}

),

latest_run as (

    {{ latest_scoring_run('recommendations') }}

),

final as (

    select
        cast(recommendations.customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(recommendations.as_of_date as date) as as_of_date,
        cast(recommendations.rank as integer) as rank,
        {{ text_id('recommendations.product_id') }} as product_id,
        cast(recommendations.score as {{ type_double() }}) as score,
        cast(recommendations.reason as {{ dbt.type_string() }}) as reason,
        cast(recommendations.model_version as {{ dbt.type_string() }}) as model_version,
        cast(recommendations.scored_at as timestamp) as scored_at
    from recommendations
    inner join latest_run
        on recommendations.as_of_date = latest_run.as_of_date

)

select * from final
