{#- The incremental build of int_identity_edges_collected (see the model's header). -#}

{#- Where the model's web edges start from: the newest load time of a login or email_click
    edge's events here, minus the load lookback (incremental_watermark); none in a full
    build, without such edges, or when the table predates its loaded_at column (then the
    pre-hook empties it and the run derives every edge). -#}
{% macro identity_edges_watermark() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- if 'loaded_at' not in columns -%}
        {{ return(none) }}
    {%- endif -%}
    {{ return(incremental_watermark("case when edge_type in ('login', 'email_click') then loaded_at end")) }}
{%- endmacro %}


{#- Pre-hook: the edges an incremental run derives whole (crm_email, order_match) are
    deleted first, so one that no longer holds (an email changed, an order moved to another
    contact) does not stay; without a watermark every edge is. -#}
{% macro identity_edges_forget() -%}
    {%- if execute and is_incremental() -%}
        delete from {{ this }}
        {%- if identity_edges_watermark() is not none %}
        where edge_type in ('crm_email', 'order_match')
        {%- endif %}
    {%- endif -%}
{%- endmacro %}


{#- An edge's first_loaded_at: the load time from which its evidence existed (the earliest
    of `loaded_at` over its records), null when a record has none (rows not written by
    ingest count as new in every run, as loaded_since says). An edge with first_loaded_at
    after a watermark is new since then: ml.customer_features recomputes the past cutoffs
    of the persons around it. -#}
{% macro first_loaded_at(loaded_at) -%}
    case when count(*) > count({{ loaded_at }}) then null else min({{ loaded_at }}) end
{%- endmacro %}
