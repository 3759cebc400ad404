{#- Lower-case text with every run of non-letters replaced by one space, padded with a
    space on both sides, so ' word ' matches whole words (portable: regexp_replace_all). -#}
{% macro normalise_text_for_matching(column) -%}
    ' ' || trim({{ regexp_replace_all("lower(coalesce(" ~ column ~ ", ''))", "'[^a-z]+'", "' '") }}) || ' '
{%- endmacro %}

{#- An id as text: ids are text end to end (ingest/contract.json), so '0035g00000AbCdEAAZ',
    'cus_9s6XKzkNRiz8i3' and 123 (as '123') all key and join the same way. -#}
{% macro text_id(column) -%}
    cast({{ column }} as {{ dbt.type_string() }})
{%- endmacro %}

{#- A text that orders contact ids as a person expects: integer ids (digits, no leading
    zero, at most 20) by their number, before every other id, which order as text. Unique
    per id (20 digits vs '~' and the id: the two forms cannot meet), so it can key a node. For integer ids it is the zero-padded number that the identity graph keyed on
    before ids were text, so their customer keys did not change. -#}
{% macro contact_order_key(column) -%}
    case
        when length({{ column }}) between 1 and 20
            and translate({{ column }}, '0123456789', '') = ''
            and substr({{ column }}, 1, 1) <> '0'
        then lpad({{ column }}, 20, '0')
        else '~' || {{ column }}
    end
{%- endmacro %}

{#- whole days between two timestamps/dates, as an integer. -#}
{% macro days_between(start, end) -%}
    cast({{ dbt.datediff(start, end, 'day') }} as integer)
{%- endmacro %}

{#- numerator / denominator as double, null when the denominator is 0 or null. -#}
{% macro safe_divide(numerator, denominator) -%}
    (cast({{ numerator }} as {{ type_double() }}) / nullif(cast({{ denominator }} as {{ type_double() }}), 0))
{%- endmacro %}
