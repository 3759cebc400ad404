{#- Helpers of the incremental facts (fct_orders, fct_order_items, fct_sessions,
    fct_product_interactions). See dbt_project/README.md "Incremental builds".

    incremental_watermark(column): in an incremental run, max(column) of {{ this }} minus
    events_load_lookback_minutes(), as a string to inline as a literal (a literal lets
    DuckDB skip row groups by their min/max, a subquery does not); none in a full build or
    when the table is empty (then the model builds everything). -#}
{% macro incremental_watermark(column) -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set minutes = events_load_lookback_minutes() | trim | int -%}
    {%- set watermark_query -%}
        select cast({{ dbt.dateadd('minute', -1 * minutes, 'max(' ~ column ~ ')') }} as {{ dbt.type_string() }})
        from {{ this }}
    {%- endset -%}
    {{ return(run_query(watermark_query).columns[0].values()[0]) }}
{%- endmacro %}


{#- True when a row was loaded after the watermark, or carries no load time (rows not
    written by ingest: re-read every run, as stg_web__events does). Strictly after: the rows
    stamped with the watermark itself were built by the last run (ingest stamps a whole
    file batch with one time, and with >= the last batch of every load - 133k of 1.5M
    events at 10k customers - was rebuilt again each run); a batch still open during the
    last build is caught by the lookback margin of events_load_lookback_minutes() (0 only
    on DuckDB, where a load and a build never overlap). -#}
{% macro loaded_since(column, watermark) -%}
    ({{ column }} > cast('{{ watermark }}' as timestamp) or {{ column }} is null)
{%- endmacro %}


{#- Marker of a row that no longer exists (a session a late event merged away or
    renumbered; an order line that stopped being a purchase): the incremental batch
    carries it so delete+insert removes the old row, and the model's post-hook
    (delete_removed_rows_hook) deletes the marker itself. -#}
{% macro removed_row_marker() -%}
    '<removed>'
{%- endmacro %}


{#- The ids (contact_id or anonymous_id, id_column) whose customer_key stored in {{ this }}
    differs from the current one in current_keys (a relation or CTE with id_column and
    customer_key): the rows a new identity link re-keyed. `is distinct from` also catches
    an id that lost or gained a person. Reads two narrow columns of {{ this }}. -#}
{% macro rekeyed_ids(id_column, current_keys) -%}
    select existing.{{ id_column }}
    from (
        select distinct {{ id_column }}, customer_key
        from {{ this }}
        where {{ id_column }} is not null
    ) as existing
    left join {{ current_keys }} as current_keys
        on existing.{{ id_column }} = current_keys.{{ id_column }}
    where existing.customer_key is distinct from current_keys.customer_key
{%- endmacro %}


{#- The devices whose web rows (one per event or per session) an incremental run of a web
    fact derives again, each with the time from which it does (rederive_from): for a device
    with a session in `sessions` (fct_sessions) loaded since the watermark, the start of the
    earliest such session; for a device re-keyed against current_keys (see rekeyed_ids),
    its first session. Why the rows before that time stay as they are: the earliest
    session loaded since holds the device's earliest new event, and int_sessions_aggregated
    kept every session of the device that ended more than a session timeout before it
    (same rows, same numbers, same session_id); every later session, whether new, merged
    by a late event or renumbered after a merge, starts at or after it. -#}
{% macro rederived_anonymous_ids(sessions, current_keys, watermark) -%}
    select anonymous_id, min(started_at) as rederive_from
    from {{ sessions }}
    where {{ loaded_since('last_loaded_at', watermark) }}
       or anonymous_id in (
           {{ rekeyed_ids('anonymous_id', current_keys) }}
       )
    group by anonymous_id
{%- endmacro %}


{#- The rows of `relation` (an anonymous_id and a time column) that an incremental run of a
    web fact derives again: those of the devices in `devices` (rederived_anonymous_ids)
    from each device's rederive_from on. -#}
{% macro rederived_rows(relation, time_column, devices) -%}
    select rederived.*
    from {{ relation }} as rederived
    inner join {{ devices }}
        on rederived.anonymous_id = {{ devices }}.anonymous_id
    where rederived.{{ time_column }} >= {{ devices }}.rederive_from
{%- endmacro %}
