{{ config(tags=['needs_scores']) }}

-- Value at stake per person: the latest CLV run on or before the run's date, its churn
-- score of the same run date, revenue at risk = churn probability x CLV, and the
-- "who to save" order (save_rank 1 = the most value expected to walk away).
with

churn_scores as (

    select * from {{ ref('customer_churn_scores') }}

),

latest_clv as (

    -- the same selection as the churn scores' (macros/latest_scores.sql)
    {{ latest_scores(ref('customer_clv_score_history')) }}

),

joined as (

    select
        latest_clv.customer_key,
        latest_clv.as_of_date,
        latest_clv.clv,
        latest_clv.expected_purchases,
        latest_clv.horizon_days,
        churn_scores.churn_probability,
        churn_scores.risk_band as churn_risk_band,
        churn_scores.churn_probability * latest_clv.clv as revenue_at_risk,
        latest_clv.model_version as clv_model_version,
        churn_scores.model_version as churn_model_version,
        latest_clv.scored_at
    from latest_clv
    -- the churn score the 720° view shows (the latest on or before the run's date)
    left join churn_scores
        on latest_clv.customer_key = churn_scores.customer_key

),

final as (

    select
        cast(customer_key as {{ dbt.type_string() }}) as customer_key,
        cast(as_of_date as date) as as_of_date,
        cast(clv as {{ type_double() }}) as clv,
        cast(expected_purchases as {{ type_double() }}) as expected_purchases,
        cast(horizon_days as integer) as horizon_days,
        cast(churn_probability as {{ type_double() }}) as churn_probability,
        cast(churn_risk_band as {{ dbt.type_string() }}) as churn_risk_band,
        cast(revenue_at_risk as {{ type_double() }}) as revenue_at_risk,
        cast(
            case
                when revenue_at_risk is not null then row_number() over (
                    order by
                        case when revenue_at_risk is null then 1 else 0 end,
                        revenue_at_risk desc,
                        customer_key
                )
            end as integer
        ) as save_rank,
        cast(clv_model_version as {{ dbt.type_string() }}) as clv_model_version,
        cast(churn_model_version as {{ dbt.type_string() }}) as churn_model_version,
        cast(scored_at as timestamp) as scored_at
    from joined

)

select * from final
