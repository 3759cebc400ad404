{#- Helpers of the incremental facts (fct_orders, fct_order_items, fct_sessions,
    fct_product_interactions). See dbt_project/README.md "Incremental builds".

    incremental_watermark(column): in an incremental run, max(column) of {{ this }} minus
    events_load_lookback_minutes(), as a string to inline as a literal (a literal lets
    DuckDB skip row groups by their min/max, a subquery does not); none in a full build or
    when the table is empty (then the model builds everything). -#}
{% macro incremental_watermark(column) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set minutes = events_load_lookback_minutes() | trim | int -%}
    {%- set watermark_query -%}
        select cast({{ dbt.dateadd('minute', -1 * minutes, 'max(' ~ column ~ ')') }} as {{ dbt.type_string() }})
        from {{ this }}
    {%- endset -%}
    {{ return(run_query(watermark_query).columns[0].values()[0]) }}
{%- endmacro %}


{#- True when a row was loaded at or after the watermark, or carries no load time (rows not
    written by ingest: re-read every run, as stg_web__events does). -#}
{% macro loaded_since(column, watermark) -%}
    ({{ column }} >= cast('{{ watermark }}' as timestamp) or {{ column }} is null)
{%- endmacro %}


{#- Marker of a fct_product_interactions row that no longer exists (its order line stopped
    being a purchase): the incremental batch carries it so delete+insert removes the old
    row, and the model's post-hook deletes the marker itself. -#}
{% macro removed_row_marker() -%}
    '<removed>'
{%- endmacro %}
