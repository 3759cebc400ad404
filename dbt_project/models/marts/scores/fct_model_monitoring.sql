{#- Every row of ml.model_monitoring, incremental by as_of_date: a build copies the dates whose
    row count or newest computed_at differ from the ml table's (macros/score_history.sql). -#}
{{ config(score_history_config('model')) }}

with

monitoring as (

    {{ score_history_batch(source('ml', 'model_monitoring'), 'computed_at', 'model') }}

),

final as (

    select
        -- keys
        cast(as_of_date as date) as as_of_date,
        cast(model as {{ dbt.type_string() }}) as model,
        cast(model_version as {{ dbt.type_string() }}) as model_version,
        cast(metric as {{ dbt.type_string() }}) as metric,
        cast(subject as {{ dbt.type_string() }}) as subject,
        cast(issue_week as date) as issue_week,
        -- dates
        cast(issued_from as date) as issued_from,
        cast(issued_to as date) as issued_to,
        -- numerics
        cast(value as {{ type_double() }}) as metric_value,
        cast(reference_value as {{ type_double() }}) as reference_value,
        cast(value - reference_value as {{ type_double() }}) as change_vs_reference,
        cast(ci_low as {{ type_double() }}) as ci_low,
        cast(ci_high as {{ type_double() }}) as ci_high,
        cast(threshold as {{ type_double() }}) as alert_threshold,
        cast(n_rows as integer) as rows_evaluated,
        cast(n_positives as integer) as positives,
        -- booleans
        cast(is_alert as boolean) as is_alert,
        -- timestamps
        cast(computed_at as timestamp) as computed_at
    from monitoring

)

select * from final
