{#- The cutoff grid of ml.customer_features: one row per cutoff (cutoff_date, cutoff_at =
    cutoff_date 00:00): the as-of date itself (the cutoff the day is scored at) and the
    `count` newest dates before it on a grid anchored at the data's first order day
    (first order day + j x step). Anchored, not as_of - k x step: a past cutoff stays the
    same date from day to day, so its features are computed once and kept (the incremental
    build of customer_features recomputes only persons whose inputs changed); only the
    as-of cutoff and as_of - H (the holdout question, exactly H before as_of) move.

    Derived unless C720_CUTOFF_STEP_DAYS / C720_CUTOFF_COUNT set it (dbt vars
    cutoff_step_days / cutoff_count; null = derived, each on its own). H = churn_horizon_days:
      - step = H / 3 when that is a whole number of days, else H / 2, else H: three cutoffs
        per horizon (90 -> 30); the newest labelled cutoff, the holdout, is as_of - H, the
        freshest question the data can answer (CDNOW, H = 182 -> 91: first order
        1997-01-01, the holdout is 1997-12-31, the standard 26-week question);
      - count = the grid dates after the first order day, at most 12: older cutoffs add
        training rows until the history runs out, and the grid never costs more than the
        former fixed 12 x 30. An explicit count reaches before the first order if needed.
    Measured (ml/README.md, "Cutoff grid"). The count is computed in SQL from the data,
    not passed as a var that changes every day: a changed var makes dbt re-parse the
    whole project. -#}
{% macro cutoff_grid(as_of_dates, orders) -%}
    {%- set horizon = var('churn_horizon_days') | int -%}
    {%- set step_var = var('cutoff_step_days', none) -%}
    {%- set count_var = var('cutoff_count', none) -%}
    {%- set max_count = count_var | int if count_var is not none else 12 -%}
    {%- if step_var is not none -%}
        {%- set step = step_var | int -%}
    {%- elif horizon % 3 == 0 -%}
        {%- set step = horizon // 3 -%}
    {%- elif horizon % 2 == 0 -%}
        {%- set step = horizon // 2 -%}
    {%- else -%}
        {%- set step = horizon -%}
    {%- endif -%}
    {%- set step = [step, 1] | max %}
    select
        cast(cutoff_date as date) as cutoff_date,
        cast(cutoff_date as timestamp) as cutoff_at
    from (
        select as_of_date as cutoff_date
        from {{ as_of_dates }}
        {%- if max_count > 0 %}

        union

        -- the k-th newest grid date before as_of: anchor + (last_j - k + 1) x step, where
        -- last_j = floor((days from anchor to as_of - 1) / step) is the newest j before as_of
        select {{ dbt.dateadd('day', '(grid.last_j - cutoff_offsets.k + 1) * ' ~ step, 'grid.anchor_date') }} as cutoff_date
        from (
            select
                as_of_date,
                anchor_date,
                cast(floor(({{ days_between('anchor_date', 'as_of_date') }} - 1) * 1.0 / {{ step }}) as integer) as last_j
            from (
                select
                    dates.as_of_date,
                    coalesce(cast(min(first_orders.ordered_at) as date), dates.as_of_date) as anchor_date
                from {{ as_of_dates }} as dates
                left join {{ orders }} as first_orders
                    on cast(first_orders.ordered_at as date) <= dates.as_of_date
                group by dates.as_of_date
            ) as history
        ) as grid
        cross join (
            {% for k in range(1, max_count + 1) %}
            select {{ k }} as k
            {% if not loop.last %}union all{% endif %}
            {% endfor %}
        ) as cutoff_offsets
        {%- if count_var is none %}
        where grid.last_j - cutoff_offsets.k + 1 >= 1  -- the first order day itself sees no purchase
        {%- endif %}

        union

        -- as_of - H, the newest question the data can answer (the holdout): it moves with
        -- as_of like the as-of cutoff, so a short history has its two labelled cutoffs
        -- whatever day it is; on CDNOW's and the demo's grids it is a grid date anyway
        select {{ dbt.dateadd('day', -1 * horizon, 'history.as_of_date') }} as cutoff_date
        from (
            select
                dates.as_of_date,
                cast(min(first_orders.ordered_at) as date) as first_order_date
            from {{ as_of_dates }} as dates
            inner join {{ orders }} as first_orders
                on cast(first_orders.ordered_at as date) <= dates.as_of_date
            group by dates.as_of_date
        ) as history
        where {{ days_between('history.first_order_date', 'history.as_of_date') }} > {{ horizon }}
        {%- endif %}
    ) as cutoff_dates
{%- endmacro %}
