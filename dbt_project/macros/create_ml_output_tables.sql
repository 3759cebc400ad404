{#-
    on-run-start hook: make sure the ML output tables exist (empty) so that the
    `tag:needs_scores` models build even when the ML stage has not written scores yet.
    The columns and types come from the `ml` source (models/marts/scores/_ml__sources.yml),
    the one declaration of the contract, which the Python writers read too.
    Portable DDL (DuckDB and Postgres both accept these types and `if not exists`).
-#}
{% macro create_ml_output_tables() %}
    {% if execute %}
    create schema if not exists ml;
    {%- for node in graph.sources.values() if node.source_name == 'ml' %}
    create table if not exists {{ node.schema }}.{{ node.identifier }} (
        {%- for column in node.columns.values() %}
        {{ column.name }} {{ column.data_type }}{{ "," if not loop.last }}
        {%- endfor %}
    );
    {%- endfor %}
    {% endif %}
{% endmacro %}
