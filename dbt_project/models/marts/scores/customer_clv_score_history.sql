{{ config(tags=['needs_scores']) }}

with

predictions as (

    select * from {{ source('ml', 'clv_predictions') }}

),

final as (

    select
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(as_of_date as date) as as_of_date,
        cast(clv as {{ type_double() }}) as clv,
        cast(expected_purchases as {{ type_double() }}) as expected_purchases,
        cast(horizon_days as integer) as horizon_days,
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(scored_at as timestamp) as scored_at
    from predictions

)

select * from final
