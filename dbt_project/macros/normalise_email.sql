{#- Email as a join key: trimmed, lower-case; empty string becomes null. -#}
{% macro normalise_email(column) -%}
    nullif(lower(trim({{ column }})), '')
{%- endmacro %}

{#- md5 hex of the normalised email (null stays null). -#}
{% macro email_hash(column) -%}
    case when {{ normalise_email(column) }} is not null then {{ dbt.hash(normalise_email(column)) }} end
{%- endmacro %}

{#- true when the normalised email looks like an address (one '@', a dotted domain, no
    spaces): placeholders such as 'n/a', 'anna.kim@' or 'x@@y.com' are no identity
    evidence - two records sharing one must not be merged. Portable (LIKE only). -#}
{% macro is_valid_email(column) -%}
    coalesce(
        {{ normalise_email(column) }} like '_%@_%._%'
        and {{ normalise_email(column) }} not like '%@%@%'
        and {{ normalise_email(column) }} not like '% %'
        and {{ normalise_email(column) }} not like '%..%'
        and {{ normalise_email(column) }} not like '%@.%'
        and {{ normalise_email(column) }} not like '%.',
        false
    )
{%- endmacro %}
