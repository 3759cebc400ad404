{#- The CRM staging models (stg_crm__*): incremental tables (delete+insert on the CRM key),
    not views. Models, gates and daily tests read them many times a day, and as views each
    read deduplicated the whole raw table again (3.9M email events at 100k customers).

    crm_staging_batch(table, key): the rows a build stages - the CRM state the run reads
    (crm_state_as_of: the newest loads, or in a re-run of a past date its first run's) of
    the keys whose raw row was loaded since the latest loaded_at the model holds
    (incremental_watermark, inlined as a literal) or carries no load time; in a full build
    every key. All of a key's versions come along, so the model's dedup guard ranks them as
    a full refresh would. Ingest replaces a changed row with a newly stamped one and never
    removes one (an erasure removes it from every table, this one too), so replacing by key
    gives the rows of a full refresh (tests/dbt/test_facts_incremental.py). A re-run of a
    past date is built with --full-refresh by the transform stage. -#}
{% macro crm_staging_batch(table, key) -%}
    {%- set watermark = incremental_watermark('loaded_at') -%}
    {%- if watermark is none -%}
    {{ crm_state_as_of(table) }}
    {%- else -%}
    with

    crm_state as {{ not_materialized() }} (

        {{ crm_state_as_of(table) }}

    )

    select *
    from crm_state
    where {{ key }} in (
        select {{ key }} from crm_state where {{ loaded_since('_loaded_at', watermark) }}
    )
    {%- endif -%}
{%- endmacro %}


{#- The config every stg_crm__ model shares (one owner): incremental on `key`, its data
    tests reading only the rows loaded since the last tested build (tests_on_new_rows.sql),
    a Postgres index on the key for delete+insert; on Spark a table rebuilt whole
    (incremental_facts_materialization). -#}
{% macro crm_staging_config(key) -%}
    {{ return({
        'materialized': incremental_facts_materialization(),
        'meta': {'test_new_rows_by': 'loaded_at'},
        'incremental_strategy': 'delete+insert',
        'unique_key': key,
        'on_schema_change': 'fail',
        'indexes': ([{'columns': [key]}] if target.type == 'postgres' else []),
    }) }}
{%- endmacro %}
