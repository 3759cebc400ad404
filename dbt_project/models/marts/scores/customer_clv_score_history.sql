{#-
    Every CLV score of ml.clv_predictions. Incremental (delete+insert on as_of_date,
    macros/score_history.sql, README "Incremental builds"): a build copies only the
    dates whose rows differ from the ml table's (row count or newest scored_at: a new
    date, a re-run of a date) and removes the dates gone from it; the same rows as a
    full refresh.
-#}
{{
    config(
        tags=['needs_scores'],
        materialized=incremental_facts_materialization(),
        incremental_strategy='delete+insert',
        unique_key='as_of_date',
        on_schema_change='fail',
        post_hook=delete_removed_rows_hook('customer_key'),
    )
}}

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
