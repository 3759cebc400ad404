{#
  A float rounded to 6 decimals. Sums of doubles depend on the order the engine adds
  them in (DuckDB aggregates in parallel), so the same data could give features that
  differ in the 12th digit and, through them, a different model. Rounding makes
  features, and so trained models, reproducible. Postgres has no round(double, int),
  hence the detour through decimal.
#}
{% macro stable_double(expression) -%}
    cast(round(cast({{ expression }} as decimal(38, 9)), 6) as {{ type_double() }})
{%- endmacro %}
