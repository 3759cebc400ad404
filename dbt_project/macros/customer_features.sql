{#- Helpers of the incremental ml.customer_features (see the model's header and
    dbt_project/README.md "Incremental builds"). -#}

{#- The cutoff dates of a build for as_of (one row per cutoff_date):
      - as_of: the scoring row, new every day;
      - as_of - churn_horizon_days: the newest labelled cutoff (the churn holdout), as recent
        as on the old as_of-anchored grid;
      - points of a fixed grid (every cutoff_step_days days through cutoff_anchor_date),
        the newest one at least a step below the holdout cutoff (as on the old grid:
        calibration never sits a day from the holdout), as many as the old grid
        as_of - k * step (k = 0..count) had labelled cutoffs besides the holdout: the same
        cutoffs when as_of - horizon is on the grid, else each up to a step older.
        A grid cutoff does not move when as_of does, so its rows are computed once and
        kept (a past cutoff never changes).
    `as_of_dates` is a relation with the column as_of_date. -#}
{% macro customer_feature_cutoffs(as_of_dates) -%}
    {%- set step = var('cutoff_step_days') | int -%}
    {%- set count = var('cutoff_count') | int -%}
    {%- set horizon = var('churn_horizon_days') | int -%}
    {%- set anchor = "cast('" ~ var('cutoff_anchor_date') ~ "' as date)" -%}
    {#- labelled cutoffs of the old grid (k * step >= horizon, k <= count), less the holdout -#}
    {%- set grid_points = [count - ((horizon + step - 1) // step), 1] | max -%}
    {%- set below = dbt.dateadd('day', -1 * (horizon + step), 'as_of_dates.as_of_date') -%}
    {#- days from `below` back to the grid; mod twice: the anchor may lie after `below` -#}
    {%- set offset = 'mod(mod(' ~ dbt.datediff(anchor, below, 'day') ~ ', ' ~ step ~ ') + ' ~ step ~ ', ' ~ step ~ ')' -%}
    select cast(as_of_dates.as_of_date as date) as cutoff_date
    from {{ as_of_dates }} as as_of_dates
    union
    select cast({{ dbt.dateadd('day', -1 * horizon, 'as_of_dates.as_of_date') }} as date)
    from {{ as_of_dates }} as as_of_dates
    {%- for k in range(grid_points) %}
    union
    -- the grid point k steps below the newest one on or before as_of - horizon - step
    select cast({{ dbt.dateadd('day', '-1 * (' ~ offset ~ ' + ' ~ (k * step) ~ ')', below) }} as date)
    from {{ as_of_dates }} as as_of_dates
    {%- endfor %}
{%- endmacro %}


{#- The persons whose stored feature rows an incremental run must recompute at every
    cutoff: those with an input row loaded after `watermark` (an order or order line, a
    session - every new web event lands in one -, a ticket, a survey answer, an email
    event, a contact change). A late row or a new identity link (its evidence is a new
    event or contact) reaches them this way; keys the identity graph no longer has (a
    merge, an erasure) are deleted by customer_features_prune. -#}
{% macro customer_features_touched(watermark) -%}
    select customer_key from {{ ref('fct_orders') }}
    where {{ loaded_since('loaded_at', watermark) }} and customer_key is not null
    union
    select customer_key from {{ ref('fct_sessions') }}
    where {{ loaded_since('last_loaded_at', watermark) }} and customer_key is not null
    {%- for source in ['stg_crm__tickets', 'stg_crm__survey_responses', 'stg_crm__email_events', 'stg_crm__contacts'] %}
    union
    select identity_nodes.customer_key
    from {{ ref(source) }} as loaded_rows
    inner join {{ ref('int_identity_nodes_resolved') }} as identity_nodes
        on identity_nodes.node_type = 'contact'
        and loaded_rows.contact_id = identity_nodes.contact_id
    where {{ loaded_since('loaded_rows.loaded_at', watermark) }}
    {%- endfor %}
{%- endmacro %}


{#- Pre-hook of an incremental run: delete the rows the run rebuilds or that no longer
    belong - cutoffs that left the set, persons touched since the watermark, keys the
    identity graph no longer has. The model then inserts the cutoffs it does not hold for
    every person and every cutoff for the persons without rows (see the model). -#}
{% macro customer_features_prune() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return('') }}
    {%- endif -%}
    {%- set watermark = incremental_watermark('loaded_at') -%}
    delete from {{ this }}
    where cutoff_date not in (
            {{ customer_feature_cutoffs(ref('int_as_of_dates_resolved')) }}
        )
        or customer_key not in (
            select customer_key from {{ ref('int_identity_nodes_resolved') }}
            where customer_key is not null
        )
    {%- if watermark is not none %}
        or customer_key in (
            {{ customer_features_touched(watermark) }}
        )
    {%- endif %}
{%- endmacro %}
