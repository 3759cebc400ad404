{#- Minutes of load time the incremental web models re-read before their watermark.
    A load stamps _loaded_at when a batch starts and commits later; a build that runs while
    a batch is open could later see that batch with a stamp older than its watermark. On
    DuckDB that cannot happen (one writing process per file: a load and a build never
    overlap), so the default there is 0; elsewhere 30. var('events_load_lookback_minutes')
    overrides both. -#}
{% macro events_load_lookback_minutes() -%}
    {%- set configured = var('events_load_lookback_minutes', none) -%}
    {%- if configured is not none -%}
        {{ configured | int }}
    {%- elif target.type == 'duckdb' -%}
        0
    {%- else -%}
        30
    {%- endif -%}
{%- endmacro %}
