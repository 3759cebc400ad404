{#- A full build of a model whose rows each depend on one key's rows only (a device's
    sessions, a person's features) can run on DuckDB in buckets of that key, one statement
    per bucket. Over the whole history at once, windows, joins and materialized CTEs hold
    every row and spill it all to disk: at scale L (153M events, the 4 GB memory limit)
    int_sessions_aggregated spilled past 38 GB and filled the disk, and in 16 buckets it
    stayed under 0.2 GB at 4.3 GB RSS. The buckets' union is the unbucketed build
    (tests/dbt/test_facts_incremental.py).

    How a model uses it:
      {%- set buckets = full_build_buckets('select count(*) from ...', var('..._per_bucket')) %}
      ... where {{ bucket_predicate('the_key', buckets) }} ...   (in every CTE it must split)
      post_hook: '{{ insert_other_buckets() }}'
    The model renders bucket 0; the post-hook finds the predicates in the compiled SQL and
    runs the same SQL for buckets 1 .. N-1. Incremental runs (they read what a load
    touched), Postgres and Spark (they plan their own spills) and unit tests use one
    bucket: the predicate is then `true`. -#}

{#- How many buckets a full build uses: the rows `count_sql` counts, `per_bucket` each. -#}
{% macro full_build_buckets(count_sql, per_bucket) -%}
    {#- a unit test's inputs are CTEs: one bucket -#}
    {%- if not execute or target.type != 'duckdb' or model.resource_type != 'model' or is_incremental() -%}
        {{ return(1) }}
    {%- endif -%}
    {%- set rows = run_query(count_sql).columns[0].values()[0] | int -%}
    {%- set per_bucket = per_bucket | int -%}
    {{ return([1, (rows + per_bucket - 1) // per_bucket] | max) }}
{%- endmacro %}

{#- The filter of bucket 0 on `key` (a column or expression without parentheses), or `true`
    when one bucket takes every key. -#}
{% macro bucket_predicate(key, buckets) -%}
    {%- if buckets > 1 -%}
        (hash({{ key }}) % {{ buckets }} = 0)
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- Post-hook: a build that ran bucket 0 of N adds buckets 1 .. N-1 with the same SQL. Read
    from the compiled SQL, not recomputed: once the table exists is_incremental() is true
    here. `by name`: the model's column order, whatever the table's. -#}
{% macro insert_other_buckets() -%}
    {%- if execute -%}
        {%- set pattern = '\\(hash\\(([^()]+)\\) % (\\d+) = 0\\)' -%}
        {%- set found = modules.re.search(pattern, model.compiled_code) -%}
        {%- if found -%}
            {%- set buckets = found.group(2) | int -%}
            {%- for bucket in range(1, buckets) -%}
                {%- set sql = modules.re.sub(
                    pattern, '(hash(\\1) % \\2 = ' ~ bucket ~ ')', model.compiled_code
                ) -%}
                {%- do log(model.name ~ ': bucket ' ~ (bucket + 1) ~ ' of ' ~ buckets, info=true) -%}
                {%- do run_query('insert into ' ~ this ~ ' by name ' ~ sql) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
