{#- The one selection of "the scores the marts show" from a history of scoring runs
    (ml.* or its *_score_history model): the newest run on or before the run's date
    (int_as_of_dates_resolved). As of the run's date, not the newest run: a re-run of an
    older date (a backfill after a later day) rebuilds the marts as the first run of that
    date did.

    latest_scoring_run(history): one row, that run's as_of_date (null when none). -#}
{% macro latest_scoring_run(history) -%}
    select max(scoring_runs.as_of_date) as as_of_date
    from {{ history }} as scoring_runs
    cross join {{ ref('int_as_of_dates_resolved') }} as as_of_dates
    where scoring_runs.as_of_date <= as_of_dates.as_of_date
{%- endmacro %}


{#- latest_scores(history): that run's rows, one per customer_key - a guard against a
    customer scored twice for the same date: the newest scored_at, then the highest
    model_version. Every column of the history, and score_rank (always 1: select the
    columns you publish). -#}
{% macro latest_scores(history) -%}
    select ranked.*
    from (
        select
            scored.*,
            row_number() over (
                partition by scored.customer_key
                order by scored.scored_at desc, scored.model_version desc
            ) as score_rank
        from {{ history }} as scored
        inner join ({{ latest_scoring_run(history) }}) as latest_run
            on scored.as_of_date = latest_run.as_of_date
    ) as ranked
    where ranked.score_rank = 1
{%- endmacro %}
