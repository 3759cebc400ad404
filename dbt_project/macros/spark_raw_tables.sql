{#- on-run-start hook, Spark only: register the raw layer's Parquet hand-off
    (customer720/spark.py export_raw: <DBT_SPARK_DIR>/raw/<table>/) as external tables of
    database `raw`, the schema of the `crm` and `web` sources. Dropped and created again
    each build (dropping an external table keeps its files), so a new contract column
    shows at once; Spark finds the partition folders (web events by load date) itself.
    Spark runs one statement per call: each is run here, the hook itself is empty. -#}
{% macro register_raw_tables() %}
    {% if execute and target.type == 'spark' %}
    {%- set root = env_var('DBT_SPARK_DIR', '') -%}
    {%- if not root -%}
        {{ exceptions.raise_compiler_error("DBT_SPARK_DIR is not set: run dbt through customer720 (C720_WAREHOUSE=spark)") }}
    {%- endif -%}
    {%- do run_query("create database if not exists raw") -%}
    {%- for node in graph.sources.values() if node.schema == 'raw' %}
    {%- do run_query("drop table if exists raw." ~ node.identifier) -%}
    {%- do run_query("create table raw." ~ node.identifier ~ " using parquet location '" ~ root ~ "/raw/" ~ node.identifier ~ "'") -%}
    {%- endfor %}
    {% endif %}
{% endmacro %}
