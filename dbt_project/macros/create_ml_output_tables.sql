{#-
    on-run-start hook: make sure the ML output tables exist (empty) so that the
    `tag:needs_scores` models build even when the ML stage has not written scores yet.
    The columns and types come from the `ml` source (models/marts/scores/_ml__sources.yml),
    the one declaration of the contract, which the Python writers read too.
    Portable DDL: `if not exists`, the types in the warehouse's spelling (warehouse_type);
    Spark runs one statement per call, so there each is run here and the hook is empty.
-#}
{% macro create_ml_output_tables() %}
    {% if execute %}
    {%- set statements = ["create schema if not exists ml"] -%}
    {%- for node in graph.sources.values() if node.source_name == 'ml' %}
        {%- set columns = [] -%}
        {%- for column in node.columns.values() -%}
            {%- do columns.append(column.name ~ " " ~ warehouse_type(column.data_type)) -%}
        {%- endfor -%}
        {%- do statements.append(
            "create table if not exists " ~ node.schema ~ "." ~ node.identifier
            ~ " (" ~ columns | join(", ") ~ ")"
            ~ (" using parquet" if target.type == 'spark' else "")
        ) -%}
    {%- endfor %}
    {%- if target.type == 'spark' -%}
        {%- for statement in statements -%}
            {%- do run_query(statement) -%}
        {%- endfor -%}
    {%- else -%}
        {{ statements | join(";\n") }};
    {%- endif -%}
    {% endif %}
{% endmacro %}
