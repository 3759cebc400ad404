{#- Data tests of an incremental model read only the rows loaded since its last tested
    build (dbt_project/README.md "Data tests on a daily build").

    Every data test has the `where` placeholder __rows_loaded_since_tested__
    (dbt_project.yml, `data_tests: +where`). get_where_subquery, dbt's hook for `where`,
    resolves it per tested model:
    - an incremental model whose config names its load-time column
      (`meta: {test_new_rows_by: loaded_at}`), on a build without --full-refresh, not on
      Spark (its incremental models are tables rebuilt whole), with a recorded watermark:
      the rows whose load time is after that watermark minus events_load_lookback_minutes()
      (the margin the model's own build re-reads), or have none (loaded_since());
    - anything else, or with --vars '{test_whole_tables: true}': the whole table.
    The watermark is dbt_state.tested_loads: per model, the newest load time it held when
    every data test of it passed or warned (record_tested_loads, on-run-end). A failed test
    keeps the older watermark, so the next build tests those rows again; a build whose tests
    did not run keeps it too; a --full-refresh without tests, or a table built anew,
    forgets it (whole-table tests next time).
    Sound because these models replace rows by their unique key (delete+insert) or append
    only rows whose key is new: a row not rewritten was tested when it was written. Not
    re-tested on a daily build: old rows re-keyed by a new identity link (their load time
    stays); a --full-refresh build tests every row. -#}

{% macro rows_loaded_since_tested_placeholder() -%}
    __rows_loaded_since_tested__
{%- endmacro %}


{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set placeholder = rows_loaded_since_tested_placeholder() -%}
    {%- if where and placeholder in where -%}
        {%- set condition = rows_loaded_since_tested_condition(relation) -%}
        {%- if condition is none and where | trim == placeholder -%}
            {%- do return(relation) -%}
        {%- endif -%}
        {%- set where = where | replace(placeholder, condition or '1 = 1') -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- endif -%}
    {%- do return(relation) -%}
{%- endmacro %}


{#- The tested model's load-time column, when its data tests may be scoped: an incremental
    model (not on Spark) whose config names it. -#}
{% macro test_new_rows_column(node) -%}
    {%- if target.type == 'spark' or node is none or node.resource_type != 'model' -%}
        {{ return(none) }}
    {%- endif -%}
    {%- if node.config.materialized != 'incremental' -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return((node.config.meta or {}).get('test_new_rows_by')) }}
{%- endmacro %}


{#- The SQL condition selecting the rows of `relation` a daily build's tests read, or none
    for the whole table. Runs when the test is compiled, i.e. after its model was built. -#}
{% macro rows_loaded_since_tested_condition(relation) -%}
    {%- if not execute or flags.FULL_REFRESH or var('test_whole_tables', false) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set attached = model.get('attached_node') if model is mapping else model.attached_node -%}
    {%- set node = graph.nodes.get(attached) if attached else none -%}
    {%- set column = test_new_rows_column(node) -%}
    {%- if not column or relation.identifier != node.alias -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set minutes = events_load_lookback_minutes() | trim | int -%}
    {%- set watermark_query -%}
        select cast({{ dbt.dateadd('minute', -1 * minutes, 'cast(tested_through as timestamp)') }} as {{ dbt.type_string() }})
        from {{ tested_loads_relation() }}
        where model_name = '{{ node.name }}'
    {%- endset -%}
    {%- set rows = run_query(watermark_query).rows -%}
    {%- if rows | length == 0 or rows[0][0] is none -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(loaded_since(column, rows[0][0])) }}
{%- endmacro %}


{% macro tested_loads_relation() -%}
    dbt_state.tested_loads
{%- endmacro %}


{#- on-run-start hook: the watermark table exists; a model whose table is missing (it is
    built whole this run) forgets its watermark. Empty on Spark (tests stay whole there). -#}
{% macro prepare_tested_loads() %}
    {%- if execute and target.type != 'spark' -%}
    {%- set statements = [
        "create schema if not exists dbt_state",
        "create table if not exists " ~ tested_loads_relation()
        ~ " (model_name " ~ dbt.type_string() ~ ", tested_through " ~ dbt.type_string() ~ ")",
    ] -%}
    {%- for node in graph.nodes.values() if test_new_rows_column(node) -%}
        {%- if adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) is none -%}
            {%- do statements.append(
                "delete from " ~ tested_loads_relation() ~ " where model_name = '" ~ node.name ~ "'"
            ) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ statements | join(";\n") }};
    {%- endif -%}
{% endmacro %}


{#- on-run-end hook: for each scoped model built in this invocation, record the newest load
    time it holds when all its data tests ran and passed (or warned): those rows are tested.
    If its tests did not all pass, keep the older watermark (the next build tests the rows
    again); after a --full-refresh without passing tests, forget it (the next build tests
    the whole table). -#}
{% macro record_tested_loads(results) %}
    {%- if execute and target.type != 'spark' -%}
    {%- set statements = [] -%}
    {%- for result in results if result.node.resource_type == 'model' and result.status == 'success' -%}
        {%- set column = test_new_rows_column(result.node) -%}
        {%- if column -%}
            {%- set tests = [] -%}
            {%- for other in results if other.node.resource_type == 'test' -%}
                {%- if other.node.attached_node == result.node.unique_id -%}
                    {%- do tests.append(other.status) -%}
                {%- endif -%}
            {%- endfor -%}
            {%- set tested = tests and (tests | reject('in', ['pass', 'warn']) | list | length == 0) -%}
            {%- if tested or flags.FULL_REFRESH -%}
                {%- do statements.append(
                    "delete from " ~ tested_loads_relation() ~ " where model_name = '" ~ result.node.name ~ "'"
                ) -%}
            {%- endif -%}
            {%- if tested -%}
                {%- do statements.append(
                    "insert into " ~ tested_loads_relation() ~ " (model_name, tested_through) "
                    ~ "select model_name, tested_through from (select '" ~ result.node.name ~ "' as model_name, "
                    ~ "cast(max(" ~ column ~ ") as " ~ dbt.type_string() ~ ") as tested_through from "
                    ~ result.node.relation_name ~ ") as newest where tested_through is not null"
                ) -%}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if statements -%}
    {{ statements | join(";\n") }};
    {%- endif -%}
    {%- endif -%}
{% endmacro %}
