{#- The incremental build of ml.customer_features (issue #18). The cutoff grid is anchored
    (macros/cutoff_grid.sql), so a past cutoff keeps its date; its rows are kept unless the
    person's inputs changed. A build:
      1. forgets (pre-hook, customer_features_forget): rows of cutoffs no longer in the grid,
         rows of persons whose inputs changed since the last build, rows of keys that are no
         buyer any more (merged into another person, erased, refunded);
      2. computes every person at the cutoffs no row holds any more (the as-of cutoff, a new
         grid date) and the changed persons at every cutoff, and appends them.
    "Changed since the last build" = an input row loaded after the watermark that
    int_feature_inputs_loaded recorded right after that build. No watermark (first build,
    the table was never recorded) = everything is recomputed. -#}

{#- The watermark an incremental model starts from, as a string literal, or none: the one
    value of `model_name` (a one-row model downstream of the incremental one, recording what
    its last build saw), read here by name, not ref (a ref would be a cycle). -#}
{% macro recorded_watermark(model_name, column) -%}
    {%- if not execute -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set node = graph.nodes.values() | selectattr('name', 'equalto', model_name) | first -%}
    {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.alias) -%}
    {%- if relation is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set values = run_query('select cast(' ~ column ~ ' as ' ~ dbt.type_string() ~ ') from ' ~ relation).columns[0].values() -%}
    {{ return(values[0] if values | length > 0 else none) }}
{%- endmacro %}


{% macro customer_features_watermark() -%}
    {{ return(recorded_watermark('int_feature_inputs_loaded', 'inputs_loaded_at')) }}
{%- endmacro %}


{#- The newest cutoff the table holds, as a date literal string, or none: a row whose time
    is after it can only change cutoffs no row holds yet, which every build computes for
    every buyer anyway. Read before the pre-hook deletes anything, by the hook and by the
    model alike (both render before the delete), so both name the same persons. -#}
{% macro customer_features_kept_until() -%}
    {%- if not (execute and is_incremental()) -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set values = run_query('select cast(max(cutoff_date) as ' ~ dbt.type_string() ~ ') from ' ~ this).columns[0].values() -%}
    {{ return(values[0] if values | length > 0 else none) }}
{%- endmacro %}


{#- The customer keys whose features at a cutoff the table holds may have changed since the
    watermark - the persons whose rows are computed again at every cutoff:
      - late rows: a CRM row (contact, order, ticket, survey answer, email event) or a web
        event loaded since, whose own time (created, ordered, responded, occurred,
        collected) is on or before the newest held cutoff (kept_until). Every feature at
        a cutoff reads only rows from before it (point in time), so a row from after it -
        a day's new activity - cannot change it;
      - identity changes: the persons around a node that gained an edge since (first
        evidence loaded after the watermark: a new link merges persons, or pushes a hub
        past the over-merge guard and splits them), and around the email of a contact
        loaded since.
    Without kept_until (nothing held) every touched person is listed. -#}
{% macro customer_features_changed_keys(watermark, kept_until) -%}
    with touched_contacts as (
        select contact_id from {{ ref('stg_crm__contacts') }}
        where {{ loaded_since('loaded_at', watermark) }}{{ held_cutoff_reached('created_at', kept_until) }}
        union
        select contact_id from {{ ref('fct_orders') }}
        where {{ loaded_since('loaded_at', watermark) }}{{ held_cutoff_reached('ordered_at', kept_until) }}
        union
        select contact_id from {{ ref('stg_crm__tickets') }}
        where {{ loaded_since('loaded_at', watermark) }}{{ held_cutoff_reached('created_at', kept_until) }}
        union
        select contact_id from {{ ref('stg_crm__survey_responses') }}
        where {{ loaded_since('loaded_at', watermark) }}{{ held_cutoff_reached('responded_at', kept_until) }}
        union
        select contact_id from {{ ref('stg_crm__email_events') }}
        where {{ loaded_since('loaded_at', watermark) }}{{ held_cutoff_reached('occurred_at', kept_until) }}
    ),
    touched_nodes as (
        select 'anon:' || anonymous_id as node_id
        from {{ ref('stg_web__events') }}
        where {{ loaded_since('loaded_at', watermark) }}{{ held_cutoff_reached('collector_at', kept_until) }}
        union
        select other_node_id as node_id
        from {{ ref('int_identity_edges_collected') }}
        where {{ loaded_since('first_loaded_at', watermark) }}
        union
        select 'email:' || email_hash as node_id
        from {{ ref('stg_crm__contacts') }}
        where {{ loaded_since('loaded_at', watermark) }} and email_hash is not null
    ),
    changed_contacts as (
        select contact_id from touched_contacts
        union
        select contact_id
        from {{ ref('int_identity_edges_guarded') }}
        where other_node_id in (select node_id from touched_nodes)
    )
    select distinct nodes.customer_key
    from {{ ref('int_identity_nodes_resolved') }} as nodes
    where nodes.contact_id in (select contact_id from changed_contacts where contact_id is not null)
       or nodes.node_id in (select node_id from touched_nodes where node_id is not null)
{%- endmacro %}


{#- ` and <time column> on or before the newest held cutoff`, or nothing without one. -#}
{% macro held_cutoff_reached(column, kept_until) -%}
    {%- if kept_until is not none %} and {{ column }} <= cast('{{ kept_until }}' as timestamp){% endif -%}
{%- endmacro %}


{#- Pre-hook of customer_features: step 1 above (nothing in a full build). -#}
{% macro customer_features_forget() -%}
    {%- if execute and is_incremental() -%}
        {%- set watermark = customer_features_watermark() -%}
        delete from {{ this }}
        {%- if watermark is not none %}
        where cutoff_date not in (
                select cutoff_date from (
                    {{ cutoff_grid(ref('int_as_of_dates_resolved'), ref('fct_orders')) }}
                ) as grid
            )
            or customer_key in (
                select customer_key from (
                    {{ customer_features_changed_keys(watermark, customer_features_kept_until()) }}
                ) as changed
                where customer_key is not null
            )
            or customer_key not in (
                select customer_key from {{ ref('fct_orders') }} where customer_key is not null
            )
        {%- endif %}
    {%- endif -%}
{%- endmacro %}


{#- Post-hook of int_identity_nodes_resolved: an email hash is a node only while one of its
    edges is used (the over-merge guard may stop using them); an incremental build does not
    rebuild that node's row, so it is deleted here. -#}
{% macro identity_nodes_forget_unused_emails() -%}
    {%- if execute and is_incremental() -%}
        delete from {{ this }}
        where node_type = 'email'
          and node_id not in (
              select other_node_id
              from {{ ref('int_identity_edges_guarded') }}
              where is_used and other_node_type = 'email'
          )
    {%- endif -%}
{%- endmacro %}
