{#- Email as a join key: trimmed, lower-case; empty string becomes null. -#}
{% macro normalise_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}

{#- md5 hex of the normalised email (null stays null). -#}
{% macro email_hash(column) -%}
    case when {{ normalise_email(column) }} is not null then {{ dbt.hash(normalise_email(column)) }} end
{%- endmacro %}
