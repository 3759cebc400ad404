{#- Every CLV score of ml.clv_predictions, incremental by as_of_date: a build copies the dates whose
    row count or newest scored_at differ from the ml table's (macros/score_history.sql). -#}
{{ config(score_history_config('customer_key')) }}

with

predictions as (

    {{ score_history_batch(source('ml', 'clv_predictions'), 'scored_at', 'customer_key') }}

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
