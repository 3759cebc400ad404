{{ config(tags=['needs_scores']) }}

-- The latest scoring run (latest as_of_date) of ml.churn_predictions: one row per customer.
with

predictions as (

    select * from {{ ref('customer_churn_score_history') }}

),

latest_run as (

    select max(as_of_date) as as_of_date from predictions

),

ranked as (

    -- guard against a customer scored twice for the same date: keep the newest score
    select
        predictions.*,
        row_number() over (
            partition by predictions.customer_key
            order by predictions.scored_at desc, predictions.model_version desc
        ) as score_rank
    from predictions
    inner join latest_run
        on predictions.as_of_date = latest_run.as_of_date

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
    from ranked
    where score_rank = 1

)

select * from final
