{#- The incremental score histories (customer_churn_score_history,
    customer_clv_score_history, fct_model_monitoring): copies of an ml.* table that the ML
    stage writes one as_of_date at a time (ml/common/outputs.write replaces every row of the
    date, all stamped with one new time). Why not copy the whole table each day: after a
    year that is 365 dates copied to add one. See dbt_project/README.md "Incremental builds".

    changed_score_dates(source_relation, changed_at): in an incremental run, the dates whose
    rows differ between the ml table and {{ this }}, compared per as_of_date by row count
    and max(changed_at) (`is distinct from`: a date on one side only counts), as
    {'copy': [dates the ml table holds], 'gone': [dates only {{ this }} holds]}, date
    literals as text; none in a full build. A new date, a re-run of a date (new time, maybe
    other customers or model version) and a date deleted from ml are found; an erasure
    deletes the same rows on both sides, so no date differs and nothing is copied again.
    Two narrow columns per side (DuckDB: compressed, one value per date) instead of every
    column of every row; a rewrite of a date within the same second with the same row count
    is not seen (--full-refresh). -#}
{% macro changed_score_dates(source_relation, changed_at) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set query -%}
        with

        source_dates as (
            select
                as_of_date,
                count(*) as row_count,
                max(cast({{ changed_at }} as timestamp)) as changed_at
            from {{ source_relation }}
            group by as_of_date
        ),

        held_dates as (
            select as_of_date, count(*) as row_count, max({{ changed_at }}) as changed_at
            from {{ this }}
            group by as_of_date
        )

        select
            cast(coalesce(source_dates.as_of_date, held_dates.as_of_date) as {{ dbt.type_string() }}),
            case when source_dates.as_of_date is null then 1 else 0 end
        from source_dates
        full outer join held_dates
            on source_dates.as_of_date = held_dates.as_of_date
        where source_dates.row_count is distinct from held_dates.row_count
           or source_dates.changed_at is distinct from held_dates.changed_at
        order by 1
    {%- endset -%}
    {%- set dates = {'copy': [], 'gone': []} -%}
    {%- for row in run_query(query).rows -%}
        {%- do dates['gone' if row[1] == 1 else 'copy'].append(row[0]) -%}
    {%- endfor -%}
    {{ return(dates) }}
{%- endmacro %}


{#- The rows of an incremental score history's build (its import CTE; delete+insert on
    as_of_date): a full build reads the whole ml table; an incremental one only the dates of
    changed_score_dates(), inlined as literals (DuckDB skips the other dates' row groups by
    their min/max), plus for each date gone from ml a marker row - marker_column =
    removed_row_marker(), the other columns null - so delete+insert removes the date's
    rows; the model's post-hook delete_removed_rows_hook(marker_column) deletes the marker. -#}
{% macro score_history_batch(source_relation, changed_at, marker_column) -%}
    {%- set dates = changed_score_dates(source_relation, changed_at) -%}
    {%- if dates is none -%}
        select * from {{ source_relation }}
    {%- else -%}
        {%- set columns = adapter.get_columns_in_relation(source_relation) | map(attribute='name') | list -%}
        select {{ columns | join(', ') }}
        from {{ source_relation }}
        where {% if dates['copy'] -%}
            as_of_date in ({% for day in dates['copy'] %}cast('{{ day }}' as date){{ ', ' if not loop.last }}{% endfor %})
        {%- else -%}
            1 = 0
        {%- endif %}
        {%- if dates['gone'] %}

        union all

        select
            {%- for column in columns %}
            {% if column == marker_column -%}
                {{ removed_row_marker() }}
            {%- elif column == 'as_of_date' -%}
                gone_dates.as_of_date
            {%- else -%}
                null
            {%- endif %} as {{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        from (
            values {% for day in dates['gone'] %}(cast('{{ day }}' as date)){{ ', ' if not loop.last }}{% endfor %}
        ) as gone_dates (as_of_date)
        {%- endif %}
    {%- endif -%}
{%- endmacro %}


{#- The config the score histories share (one owner): delete+insert by as_of_date, the
    marker rows of dates gone from ml deleted after the insert; on Spark a table rebuilt
    whole (incremental_facts_materialization). -#}
{% macro score_history_config(marker_column) -%}
    {{ return({
        'tags': ['needs_scores'],
        'materialized': incremental_facts_materialization(),
        'incremental_strategy': 'delete+insert',
        'unique_key': 'as_of_date',
        'on_schema_change': 'fail',
        'post_hook': delete_removed_rows_hook(marker_column),
    }) }}
{%- endmacro %}
