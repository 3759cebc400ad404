{{ config(tags=['needs_scores']) }}

-- The latest scoring run on or before the run's date (int_as_of_dates_resolved) of
-- ml.churn_predictions: one row per customer.
with

predictions as (

    select * from {{ ref('customer_churn_score_history') }}

),

as_of_dates as (

    select * from {{ ref('int_as_of_dates_resolved') }}

),

latest_run as (

    -- as of the run's date, not the newest scoring run: a re-run of an older date (a
    -- backfill after a later day) rebuilds this mart as the first run of that date did
    select max(predictions.as_of_date) as as_of_date
    from predictions
    cross join as_of_dates
    where predictions.as_of_date <= as_of_dates.as_of_date

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
