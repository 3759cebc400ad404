{#- A full build of int_sessions_aggregated on DuckDB sessionises the devices in buckets (a
    hash of anonymous_id), one statement per bucket: its windows carry every event's columns,
    and over all events at once they spill the whole history to disk. At scale L (153M
    events, the 4 GB memory limit) the spill passed 38 GB and filled the disk; in 16 buckets
    it stayed under 0.2 GB at 4.3 GB RSS (8 min). A device's sessions depend on its own events
    only, so the buckets' union is the unbucketed build (tests/dbt/test_facts_incremental.py).

    The model renders bucket 0 (session_bucket_filter()); the post-hook
    insert_other_session_buckets() finds that filter in the compiled SQL and runs the same
    SQL for the other buckets. Incremental runs read only the devices a load touched, and
    Postgres and Spark plan their own spills: one bucket, no filter. -#}

{#- How many buckets a full build uses: about var('sessions_events_per_bucket') events each. -#}
{% macro session_buckets() -%}
    {#- a unit test's inputs are CTEs: one bucket -#}
    {%- if not execute or target.type != 'duckdb' or model.resource_type != 'model' or is_incremental() -%}
        {{ return(1) }}
    {%- endif -%}
    {%- set events = run_query('select count(*) from ' ~ ref('stg_web__events')).columns[0].values()[0] | int -%}
    {%- set per_bucket = var('sessions_events_per_bucket') | int -%}
    {{ return([1, (events + per_bucket - 1) // per_bucket] | max) }}
{%- endmacro %}

{% macro _session_bucket_predicate(bucket, buckets) -%}
    {{ return('(hash(anonymous_id) % ' ~ buckets ~ ' = ' ~ bucket ~ ')') }}
{%- endmacro %}

{#- The filter for the first bucket, or nothing when one bucket takes every device. -#}
{% macro session_bucket_filter() -%}
    {%- set buckets = session_buckets() -%}
    {%- if buckets > 1 -%}
        where {{ _session_bucket_predicate(0, buckets) }}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: a build that sessionised bucket 0 of N adds buckets 1 .. N-1. Read from the
    compiled SQL, not recomputed: once the table exists is_incremental() is true here. -#}
{% macro insert_other_session_buckets() -%}
    {%- if execute -%}
        {%- set found = modules.re.search('\\(hash\\(anonymous_id\\) % (\\d+) = 0\\)', model.compiled_code) -%}
        {%- if found -%}
            {%- set buckets = found.group(1) | int -%}
            {%- for bucket in range(1, buckets) -%}
                {%- set sql = model.compiled_code.replace(
                    _session_bucket_predicate(0, buckets), _session_bucket_predicate(bucket, buckets)
                ) -%}
                {%- do log('int_sessions_aggregated: bucket ' ~ (bucket + 1) ~ ' of ' ~ buckets, info=true) -%}
                {%- do run_query('insert into ' ~ this ~ ' ' ~ sql) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
