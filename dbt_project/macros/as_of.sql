{#- The analysis date as a SQL expression of type date: env var DBT_AS_OF when set (run_dbt
    sets it from its as_of), else null = the value computed in int_as_of_dates_resolved
    (latest order / web event date).
    An environment variable, not a var: dbt re-parses the whole project whenever --vars
    change, but only the files that read an env var when that env var changes, so a new
    day keeps partial parsing (one file re-parsed instead of the project). -#}
{% macro as_of_date_literal() -%}
    {%- if var('as_of', none) -%}
        {{ exceptions.raise_compiler_error(
            "as_of is no longer a dbt var: set the environment variable DBT_AS_OF=YYYY-MM-DD"
        ) }}
    {%- endif -%}
    {%- set as_of = env_var('DBT_AS_OF', '') | trim -%}
    {%- if as_of -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of) -%}
            {{ exceptions.raise_compiler_error("DBT_AS_OF must be a date YYYY-MM-DD, got '" ~ as_of ~ "'") }}
        {%- endif -%}
        cast('{{ as_of }}' as date)
    {%- else -%}
        null
    {%- endif -%}
{%- endmacro %}
