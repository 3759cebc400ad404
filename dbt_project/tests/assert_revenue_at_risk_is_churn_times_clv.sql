{{ config(tags=['needs_scores']) }}

-- Revenue at risk is churn probability x CLV, in the score mart and in the 720° view.
with

value_scores as (

    select * from {{ ref('customer_value_scores') }}

),

dim as (

    select * from {{ ref('dim_customer_720') }}

),

mart_rows as (

    select customer_key, 'customer_value_scores' as model
    from value_scores
    where abs(revenue_at_risk - churn_probability * clv) > 0.005
        or (revenue_at_risk is null and churn_probability is not null and clv is not null)

),

dim_rows as (

    select customer_key, 'dim_customer_720' as model
    from dim
    where abs(revenue_at_risk - churn_probability * clv) > 0.005
        or (revenue_at_risk is null and churn_probability is not null and clv is not null)

)

select * from mart_rows
union all
select * from dim_rows
