{{ config(tags=['needs_scores']) }}

-- The latest scoring run on or before the run's date (int_as_of_dates_resolved) of
-- ml.churn_predictions: one row per customer (macros/latest_scores.sql).
with

latest_scores as (

    {{ latest_scores(ref('customer_churn_score_history')) }}

),

final as (

    select
        customer_key,
        as_of_date,
        churn_probability,
        risk_band,
        top_reasons,
        model_version,
        scored_at
    from latest_scores

)

select * from final
