{{ config(tags=['needs_scores']) }}

-- dim_customer_720 holds exactly one row per person of the identity graph.
with

persons as (

    select distinct customer_key from {{ ref('int_identity_nodes_resolved') }}

),

dim as (

    select customer_key from {{ ref('dim_customer_720') }}

),

missing as (

    select persons.customer_key, 'missing from dim_customer_720' as problem
    from persons
    left join dim on persons.customer_key = dim.customer_key
    where dim.customer_key is null

),

extra as (

    select dim.customer_key, 'not a person of the identity graph' as problem
    from dim
    left join persons on dim.customer_key = persons.customer_key
    where persons.customer_key is null

)

select * from missing
union all
select * from extra
