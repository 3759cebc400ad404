{#- Where Spark SQL differs from DuckDB and Postgres (adapter.dispatch; DuckDB and
    Postgres keep the default__ SQL they always had). README "Scale out on Spark". -#}

{#- A double-precision float: `double precision` in DuckDB and Postgres, `double` in Spark. -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double precision
{%- endmacro %}

{% macro spark__type_double() -%}
    double
{%- endmacro %}


{#- A contract / DDL type of the project (DuckDB and Postgres names: text, varchar,
    double precision, integer, ...) in the warehouse's own spelling. -#}
{% macro warehouse_type(data_type) -%}
    {{ return(adapter.dispatch('warehouse_type')(data_type)) }}
{%- endmacro %}

{% macro default__warehouse_type(data_type) -%}
    {{ return(data_type) }}
{%- endmacro %}

{% macro spark__warehouse_type(data_type) -%}
    {%- set names = {'text': 'string', 'varchar': 'string', 'double precision': 'double', 'integer': 'int'} -%}
    {{ return(names.get(data_type | trim | lower, data_type)) }}
{%- endmacro %}


{#- Contracts on Spark: the declared types are the project's (warehouse_type maps them);
    dbt-spark's own version casts to them as written, and Spark knows no `text`. -#}
{% macro spark__get_empty_schema_sql(columns) %}
    select
    {% for i in columns %}
      {%- set col = columns[i] -%}
      {%- if col['data_type'] is not defined -%}
        {{ exceptions.column_type_missing(column_names=[col['name']]) }}
      {%- endif %}
      cast(null as {{ warehouse_type(col['data_type']) }}) as {{ col['name'] }}{{ ", " if not loop.last }}
    {%- endfor -%}
{% endmacro %}


{#- One CTE of a long chain (the identity graph's propagation passes), as a call block:
        {% call warehouse_cte('pass_1', materialize=true) %} select ... {% endcall %}
    DuckDB and Postgres: `pass_1 as [materialized] (select ...),` - `materialized` computes
    it once instead of inlining it into every reference.
    Spark has no such hint, and inlining a chain where each pass reads the one before three
    times grows the plan as 3^passes (the JVM ran out of heap planning it). There each CTE
    is a temporary view of the session instead, and a materialized one a scratch Parquet
    table (<model>__<cte>, dropped by the model's post-hook drop_cte_tables) that its view
    reads: a pass then starts from stored rows, not from the plan of every pass before.
    The model's own SQL keeps only the CTEs after the chain. -#}
{% macro warehouse_cte(name, materialize=false, materialize_on_spark=false) -%}
    {{ return(adapter.dispatch('warehouse_cte')(name, materialize, materialize_on_spark, caller())) }}
{%- endmacro %}

{% macro default__warehouse_cte(name, materialize, materialize_on_spark, body) -%}
{{ name }} as {% if materialize %}materialized {% endif %}(
{{ body }}
),
{%- endmacro %}

{% macro spark__warehouse_cte(name, materialize, materialize_on_spark, body) -%}
    {%- if execute -%}
        {%- if materialize or materialize_on_spark -%}
            {%- set table = this.schema ~ '.' ~ this.identifier ~ '__' ~ name -%}
            {%- do run_query('drop table if exists ' ~ table) -%}
            {%- do run_query('create table ' ~ table ~ ' using parquet as ' ~ body) -%}
            {%- do run_query('create or replace temporary view ' ~ name ~ ' as select * from ' ~ table) -%}
        {%- else -%}
            {%- do run_query('create or replace temporary view ' ~ name ~ ' as ' ~ body) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- post-hook of a model that uses warehouse_cte: drop its scratch tables (Spark). -#}
{% macro drop_cte_tables() -%}
    {%- if target.type != 'spark' -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(["{{ spark_drop_cte_tables(this) }}"]) }}
{%- endmacro %}

{% macro spark_drop_cte_tables(relation) -%}
    {%- if execute -%}
        {%- set found = run_query("show tables in " ~ relation.schema ~ " like '" ~ relation.identifier ~ "__*'") -%}
        {%- for row in found -%}
            {%- do run_query("drop table if exists " ~ relation.schema ~ "." ~ row[1]) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}


{#- regexp_replace of every match: DuckDB and Postgres need the 'g' flag, Spark replaces
    every match always (its fourth argument is a position). -#}
{% macro regexp_replace_all(expression, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all')(expression, pattern, replacement)) }}
{%- endmacro %}

{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ pattern }}, {{ replacement }})
{%- endmacro %}


{#- The incremental facts (delete+insert on a key) are rebuilt whole on Spark: its
    Parquet tables have no DELETE (that needs Delta or Iceberg, which are not installed
    here); `merge` / `insert_overwrite` would need them or a partition per key. A full
    build gives the same rows (tests/dbt/test_facts_incremental.py checks incremental =
    full on DuckDB), and scales out with the cluster. -#}
{% macro incremental_facts_materialization() -%}
    {{ return('table' if target.type == 'spark' else 'incremental') }}
{%- endmacro %}

{#- The incremental facts' post-hook that deletes marker rows: only an incremental
    delete+insert run writes them. -#}
{% macro delete_removed_rows_hook(column) -%}
    {%- if target.type == 'spark' -%}
        {{ return([]) }}
    {%- endif -%}
    {{ return(["delete from {{ this }} where " ~ column ~ " = " ~ removed_row_marker()]) }}
{%- endmacro %}


{#- dbt-spark's listagg drops the order (it warns); Spark 4 has the standard
    `listagg(...) within group (order by ...)`, as DuckDB and Postgres do. -#}
{% macro spark__listagg(measure, delimiter_text, order_by_clause, limit_num) -%}
    {%- if limit_num -%}
        {{ exceptions.raise_compiler_error("listagg with a limit is not supported on Spark") }}
    {%- endif -%}
    listagg({{ measure }}, {{ delimiter_text }})
    {%- if order_by_clause %} within group ({{ order_by_clause }}){% endif %}
{%- endmacro %}


{#- dbt-spark's dateadd / datediff raise on a null date (assert_not_null) and round
    sub-day differences up; the project's SQL needs null in, null out, and the DuckDB /
    Postgres meaning of datediff: the number of day / hour / minute / second boundaries
    between the two. -#}
{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart | upper }}, cast({{ interval }} as int), {{ from_date_or_timestamp }})
{%- endmacro %}

{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- set seconds = {'second': 1, 'minute': 60, 'hour': 3600} -%}
    {%- if datepart == 'day' -%}
        datediff(to_date({{ second_date }}), to_date({{ first_date }}))
    {%- elif datepart in seconds -%}
        (floor(to_unix_timestamp({{ second_date }}) / {{ seconds[datepart] }})
         - floor(to_unix_timestamp({{ first_date }}) / {{ seconds[datepart] }}))
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff by " ~ datepart ~ " is not defined for Spark in this project") }}
    {%- endif -%}
{%- endmacro %}


{#- An import CTE over a table that the model reads more than once, written
        events as {{ not_materialized() }} (select * from {{ ref('stg_web__events') }}),
    so each reference reads the table itself. DuckDB and Postgres otherwise compute a CTE
    referenced twice once and keep its rows: the whole table (at 100k customers DuckDB
    buffered all 22.7M events, 11 GB, to hand a daily run the 67k it needed: 5.9 s of
    int_sessions_aggregated's 6), where each reference alone would read only the rows its
    filters and joins keep. A table scan costs nothing to repeat; a view's query does, so
    views are not marked. Spark has no such hint (and inlines CTEs). -#}
{% macro not_materialized() -%}
    {{ return(adapter.dispatch('not_materialized')()) }}
{%- endmacro %}

{% macro default__not_materialized() -%}
    not materialized
{%- endmacro %}

{% macro spark__not_materialized() -%}
{%- endmacro %}
