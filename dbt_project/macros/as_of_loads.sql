{#- What a run reads of the raw layer (ingest/crm_history.py): the newest loads, or in a
    re-run of a past date the loads its first run read.

    pinned_loaded_through(): the load time a re-run of a past date reads raw through, as a
    scalar SQL expression: the pin raw.as_of_loads holds for DBT_AS_OF when a later date has
    been run too (a replay or backfill); else null = everything loaded (a run of the newest
    date, or no DBT_AS_OF). The "later date" condition keeps a plain dbt build of the newest
    date on the newest loads, even after a load the pipeline did not pin.

    loaded_by_pin(column): true for a row whose load time (column) is within the pin, or
    that has none (not written by ingest: it belongs to every state). For append-only raw
    tables (web events).

    crm_state_as_of(table): the rows of a CRM table raw.<table> as loaded through the pin:
    the current versions loaded by then, and the versions raw.<table>_history holds that
    were loaded by then and replaced after it. One version per key, as in raw. -#}
{% macro pinned_loaded_through() -%}
    (
        select max(pinned.loaded_through)
        from {{ source('crm', 'as_of_loads') }} as pinned
        where pinned.as_of_date = {{ as_of_date_literal() }}
          and exists (
              select 1
              from {{ source('crm', 'as_of_loads') }} as later
              where later.as_of_date > pinned.as_of_date
          )
    )
{%- endmacro %}


{% macro loaded_by_pin(column) -%}
    ({{ pinned_loaded_through() }} is null or {{ column }} is null or {{ column }} <= {{ pinned_loaded_through() }})
{%- endmacro %}


{% macro crm_state_as_of(table) -%}
    {%- set current = source('crm', table) -%}
    {%- set history = source('crm', table ~ '_history') -%}
    {#- the current table's columns, named: the history table has two more -#}
    {%- set quoted = [] -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(current) -%}
            {%- do quoted.append(adapter.quote(column.name)) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- set column_list = quoted | join(', ') if quoted else '*' -%}
    select {{ column_list }}
    from {{ current }}
    where {{ loaded_by_pin('_loaded_at') }}

    union all

    select {{ column_list }}
    from {{ history }}
    where _valid_to > {{ pinned_loaded_through() }}
      and (_loaded_at is null or _loaded_at <= {{ pinned_loaded_through() }})
{%- endmacro %}
