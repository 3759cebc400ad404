{#- The analysis date as a SQL expression of type date: var('as_of') when given,
    else the value computed in int_as_of_date (latest order / web event date). -#}
{% macro as_of_date_literal() -%}
    {%- if var('as_of', none) -%}
        cast('{{ var("as_of") }}' as date)
    {%- else -%}
        null
    {%- endif -%}
{%- endmacro %}
