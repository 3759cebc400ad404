{#- The cutoff grid of ml.customer_features: one row per cutoff (cutoff_date, cutoff_at =
    cutoff_date 00:00), cutoff_date = as_of - k x step, k = 0..count.

    Derived unless C720_CUTOFF_STEP_DAYS / C720_CUTOFF_COUNT set it (dbt vars
    cutoff_step_days / cutoff_count; null = derived, each on its own). H = churn_horizon_days:
      - step = H / 3 when that is a whole number of days, else H / 2, else H: three cutoffs
        per horizon (90 -> 30), and the newest labelled cutoff, the holdout, is exactly
        as_of - H, the freshest question the data can answer (CDNOW, H = 182 -> 91: the
        holdout is 1997-12-31, the standard 26-week question);
      - count = the cutoffs that fit in the data's history (days from the first order to
        as_of) / step, at most 12: older cutoffs add training rows until the history runs
        out, and the grid never costs more than the former fixed 12 x 30.
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
        cast({{ dbt.dateadd('day', '-1 * grid.step_days * cutoff_offsets.k', 'grid.as_of_date') }} as date) as cutoff_date,
        cast({{ dbt.dateadd('day', '-1 * grid.step_days * cutoff_offsets.k', 'grid.as_of_date') }} as timestamp) as cutoff_at
    from (
        select
            as_of_date,
            {{ step }} as step_days,
            {%- if count_var is not none %}
            {{ count_var | int }} as cutoff_count
            {%- else %}
            least({{ max_count }}, coalesce(cast(floor(history_days * 1.0 / {{ step }}) as integer), 0)) as cutoff_count
            {%- endif %}
        from (
            select
                dates.as_of_date,
                {{ days_between('cast(min(first_orders.ordered_at) as date)', 'dates.as_of_date') }} as history_days
            from {{ as_of_dates }} as dates
            left join {{ orders }} as first_orders
                on cast(first_orders.ordered_at as date) <= dates.as_of_date
            group by dates.as_of_date
        ) as history
    ) as grid
    cross join (
        {% for k in range(0, max_count + 1) %}
        select {{ k }} as k
        {% if not loop.last %}union all{% endif %}
        {% endfor %}
    ) as cutoff_offsets
    where cutoff_offsets.k <= grid.cutoff_count
{%- endmacro %}
