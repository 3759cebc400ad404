{#- The CRM state a run reads (ingest/crm_history.py).

    crm_loaded_through(): the load time a re-run of a past date reads the CRM through, as a
    scalar SQL expression: the pin raw.crm_as_of holds for DBT_AS_OF when a later date has
    been run too (a replay or backfill); else null = the newest state (a run of the newest
    date, or no DBT_AS_OF). The "later date" condition keeps a plain dbt build of the newest
    date on the newest state, even after a CRM load the pipeline did not pin.

    crm_state_as_of(table): the rows of raw.<table> as loaded through that time: the
    current versions loaded by then, and the versions raw.<table>_history holds that were
    loaded by then and replaced after it. One version per key, as in raw. A row without
    a load time (not written by ingest) belongs to every state. -#}
{% macro crm_loaded_through() -%}
    (
        select max(pinned.loaded_through)
        from {{ source('crm', 'crm_as_of') }} as pinned
        where pinned.as_of_date = {{ as_of_date_literal() }}
          and exists (
              select 1
              from {{ source('crm', 'crm_as_of') }} as later
              where later.as_of_date > pinned.as_of_date
          )
    )
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
    where {{ crm_loaded_through() }} is null
       or _loaded_at is null
       or _loaded_at <= {{ crm_loaded_through() }}

    union all

    select {{ column_list }}
    from {{ history }}
    where _valid_to > {{ crm_loaded_through() }}
      and (_loaded_at is null or _loaded_at <= {{ crm_loaded_through() }})
{%- endmacro %}
