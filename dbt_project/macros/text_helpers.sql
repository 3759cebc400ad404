{#- Lower-case text with every run of non-letters replaced by one space, padded with a
    space on both sides, so ' word ' matches whole words (portable: DuckDB and Postgres
    both support regexp_replace(..., 'g')). -#}
{% macro normalise_text_for_matching(column) -%}
    ' ' || trim(regexp_replace(lower(coalesce({{ column }}, '')), '[^a-z]+', ' ', 'g')) || ' '
{%- endmacro %}

{#- true when the trimmed text is a non-empty run of digits (fits a bigint). -#}
{% macro is_integer_text(column) -%}
    (
        {{ column }} is not null
        and length(trim({{ column }})) between 1 and 18
        and translate(trim({{ column }}), '0123456789', '') = ''
    )
{%- endmacro %}

{#- whole days between two timestamps/dates, as an integer. -#}
{% macro days_between(start, end) -%}
    cast({{ dbt.datediff(start, end, 'day') }} as integer)
{%- endmacro %}

{#- numerator / denominator as double, null when the denominator is 0 or null. -#}
{% macro safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as double precision) / nullif(cast({{ denominator }} as double precision), 0))
{%- endmacro %}
