{#-
    Point-in-time customer features for the churn model and the recommender.

    Rows: (customer_key, cutoff_date) for cutoff_date = as_of - k * step, k = 0..count (the
    grid: macros/cutoff_grid.sql, from the data's history and the churn horizon unless
    C720_CUTOFF_STEP_DAYS / C720_CUTOFF_COUNT set it), for every customer with at least one purchase (not cancelled,
    not returned, no credit note; macros/purchases.sql) on or before the cutoff.

    Point in time: a row for cutoff_date uses only data known at cutoff_at
    (= cutoff_date 00:00:00, timestamps <= cutoff_at). Mutable CRM state is used only when
    the row's last change is known by then:
      - an order's cancelled/returned status counts only if the order's updated_at <= cutoff_at
        (otherwise the order counts as still open at the cutoff);
      - a late delivery counts when delivered late before the cutoff, or when the promised
        date passed before the cutoff without delivery;
      - contact attributes (country, marketing_consent) come from the person's lowest
        contact created by the cutoff, as of the cutoff, from the SCD2 snapshot
        snap_crm__contacts (the version valid at cutoff_at). When the snapshot holds no
        version that old (history starts at the first snapshot), marketing_consent is null
        (unknown) and country falls back to the earliest version known (country is treated
        as quasi-static);
      - web activity of an anonymous id counts only once it was linked to the person
        (first evidence of a used identity edge <= cutoff_at).
    No label columns: labels are built by the ML stage from data after cutoff_at.
-#}
-- depends_on: {{ ref('stg_crm__tickets') }}
-- depends_on: {{ ref('stg_crm__contacts') }}
-- depends_on: {{ ref('stg_web__events') }}
-- depends_on: {{ ref('int_identity_edges_guarded') }}
-- depends_on: {{ ref('int_identity_edges_collected') }}
{{ config(
    materialized=incremental_facts_materialization(),
    incremental_strategy='append',
    on_schema_change='fail',
    pre_hook="{{ customer_features_forget() }}",
    post_hook="{{ insert_other_buckets() }}"
) }}
{#- Incremental (macros/customer_features_incremental.sql): the pre-hook forgets the rows of
    dropped cutoffs and of changed persons; this query computes every buyer at the cutoffs
    no row holds (the as-of cutoff) and the changed persons at every cutoff. A full build
    computes every buyer at every cutoff: the same rows. On DuckDB it does so in buckets of
    persons, one statement each (macros/full_build_buckets.sql): a person's rows depend on
    the person's own orders, contacts and devices only, and over every person at once the
    pairs of persons and cutoffs, their sessions and events spilled 19 GB at scale L. -#}
{%- set text = dbt.type_string() -%}
{%- set watermark = customer_features_watermark() if is_incremental() else none %}
{%- set buckets = full_build_buckets(
    'select count(distinct customer_key) from ' ~ ref('fct_orders'),
    var('features_customers_per_bucket')
) %}

with

as_of_dates as (

    select * from {{ ref('int_as_of_dates_resolved') }}

),

orders as {{ not_materialized() }} (

    select * from {{ ref('fct_orders') }}

),

order_items as (

    select * from {{ ref('fct_order_items') }}

),

tickets as (

    select * from {{ ref('int_tickets_scored') }}

),

survey_responses as (

    select * from {{ ref('stg_crm__survey_responses') }}

),

email_events as (

    select * from {{ ref('stg_crm__email_events') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

contact_history as (

    select * from {{ ref('snap_crm__contacts') }}

),

sessions as (

    select * from {{ ref('fct_sessions') }}

),

events as (

    select * from {{ ref('stg_web__events') }}

),

identity_nodes as {{ not_materialized() }} (

    select * from {{ ref('int_identity_nodes_resolved') }}

),

identity_edges as (

    select * from {{ ref('int_identity_edges_guarded') }}

),

-- the cutoff grid --------------------------------------------------------------------------

cutoffs as (

    -- derived from the data's history and the churn horizon unless set (macros/cutoff_grid.sql)
    {{ cutoff_grid('as_of_dates', 'orders') }}

),

buyers as (

    select distinct customer_key
    from orders
    where customer_key is not null and {{ bucket_predicate('customer_key', buckets) }}

),
{%- if is_incremental() %}

kept_cutoffs as (

    -- after the pre-hook: the grid's cutoffs whose rows are kept (unchanged persons)
    select distinct cutoff_date from {{ this }}

),
{%- if watermark is not none %}

changed_keys as (

    {{ customer_features_changed_keys(watermark, customer_features_kept_until()) }}

),
{%- endif %}
{%- endif %}

customer_cutoffs as (

    -- the (person, cutoff) pairs this build computes, each with the person's previous
    -- computed cutoff (session_buckets)
    select
        buyers.customer_key,
        cutoffs.cutoff_date,
        cutoffs.cutoff_at,
        lag(cutoffs.cutoff_at) over (
            partition by buyers.customer_key order by cutoffs.cutoff_at
        ) as previous_cutoff_at
    from buyers
    cross join cutoffs
    {%- if is_incremental() %}
    where cutoffs.cutoff_date not in (select cutoff_date from kept_cutoffs)
        {%- if watermark is not none %}
        or buyers.customer_key in (select customer_key from changed_keys where customer_key is not null)
        {%- endif %}
    {%- endif %}

),

contact_keys as (

    select contact_id, customer_key
    from identity_nodes
    where node_type = 'contact' and {{ bucket_predicate('customer_key', buckets) }}

),

anonymous_links as (

    -- when each anonymous id became known as part of its person
    select
        identity_nodes.anonymous_id,
        identity_nodes.customer_key,
        min(identity_edges.first_seen_at) as linked_at
    from identity_nodes
    inner join identity_edges
        on identity_nodes.node_id = identity_edges.other_node_id
        and identity_edges.is_used
    where identity_nodes.node_type = 'anon'
      and {{ bucket_predicate('identity_nodes.customer_key', buckets) }}
    group by 1, 2

),

-- commerce ----------------------------------------------------------------------------------

orders_known as (

    select
        orders.customer_key,
        cutoffs.cutoff_date,
        cutoffs.cutoff_at,
        orders.order_id,
        orders.ordered_at,
        orders.total_amount,
        orders.is_cancelled and orders.updated_at <= cutoffs.cutoff_at as is_cancelled_known,
        orders.is_returned and orders.updated_at <= cutoffs.cutoff_at as is_returned_known,
        -- a purchase as known at the cutoff (macros/purchases.sql, point in time): not a
        -- credit note, and not cancelled or returned by then
        coalesce(orders.total_amount, 0) >= 0
            and not (orders.is_cancelled and orders.updated_at <= cutoffs.cutoff_at)
            and not (orders.is_returned and orders.updated_at <= cutoffs.cutoff_at)
            as is_purchase_known,
        (orders.delivered_at <= cutoffs.cutoff_at and orders.delivered_at > orders.promised_at)
            or (
                orders.promised_at < cutoffs.cutoff_at
                and (orders.delivered_at is null or orders.delivered_at > cutoffs.cutoff_at)
                and not (orders.is_cancelled and orders.updated_at <= cutoffs.cutoff_at)
            ) as is_late_known
    from orders
    inner join customer_cutoffs as cutoffs
        on orders.customer_key = cutoffs.customer_key
        and orders.ordered_at <= cutoffs.cutoff_at

),

order_features as (

    select
        customer_key,
        cutoff_date,
        min(cutoff_at) as cutoff_at,
        count(*) as all_order_count,
        count(*) filter (where not is_cancelled_known and coalesce(total_amount, 0) >= 0) as order_count,
        count(*) filter (where is_cancelled_known) as cancelled_order_count,
        count(*) filter (where is_returned_known) as returned_order_count,
        count(*) filter (where coalesce(is_late_known, false)) as late_delivery_count,
        -- net: returned orders count 0, credit notes subtract
        sum(case when is_purchase_known or total_amount < 0 then total_amount else 0 end) as monetary,
        sum(case when not is_cancelled_known and coalesce(total_amount, 0) >= 0 then total_amount else 0 end) as gross_revenue,
        min(case when is_purchase_known then ordered_at end) as first_order_at,
        max(case when is_purchase_known then ordered_at end) as last_order_at,
        count(*) filter (
            where is_purchase_known and ordered_at > {{ dbt.dateadd('day', -30, 'cutoff_at') }}
        ) as orders_last_30d,
        count(*) filter (
            where is_purchase_known and ordered_at > {{ dbt.dateadd('day', -90, 'cutoff_at') }}
        ) as orders_last_90d,
        count(*) filter (
            where is_purchase_known
              and ordered_at > {{ dbt.dateadd('day', -180, 'cutoff_at') }}
              and ordered_at <= {{ dbt.dateadd('day', -90, 'cutoff_at') }}
        ) as orders_prior_90d,
        sum(case
            when is_purchase_known and ordered_at > {{ dbt.dateadd('day', -30, 'cutoff_at') }}
                then total_amount else 0 end) as revenue_last_30d,
        sum(case
            when is_purchase_known and ordered_at > {{ dbt.dateadd('day', -90, 'cutoff_at') }}
                then total_amount else 0 end) as revenue_last_90d,
        sum(case
            when is_purchase_known
              and ordered_at > {{ dbt.dateadd('day', -180, 'cutoff_at') }}
              and ordered_at <= {{ dbt.dateadd('day', -90, 'cutoff_at') }}
                then total_amount else 0 end) as revenue_prior_90d
    from orders_known
    group by 1, 2

),

eligible as (

    -- a customer is a buyer with a purchase by the cutoff (a fully refunded order is none)
    select * from order_features where last_order_at is not null

),

category_amounts as (

    select
        orders_known.customer_key,
        orders_known.cutoff_date,
        order_items.category,
        sum(order_items.line_amount) as category_amount
    from orders_known
    inner join order_items
        on orders_known.order_id = order_items.order_id
    where orders_known.is_purchase_known
    group by 1, 2, 3

),

category_features as (

    select
        customer_key,
        cutoff_date,
        count(*) as category_count,
        {{ safe_divide('max(category_amount)', 'sum(category_amount)') }} as top_category_share
    from category_amounts
    group by 1, 2

),

-- profile -----------------------------------------------------------------------------------

contacts_known as (

    select
        contact_keys.customer_key,
        cutoffs.cutoff_date,
        cutoffs.cutoff_at,
        contacts.contact_id,
        contacts.created_at,
        row_number() over (
            partition by contact_keys.customer_key, cutoffs.cutoff_date
            order by {{ contact_order_key('contacts.contact_id') }}
        ) as contact_rank
    from contacts
    inner join contact_keys
        on contacts.contact_id = contact_keys.contact_id
    inner join customer_cutoffs as cutoffs
        on contact_keys.customer_key = cutoffs.customer_key
        and contacts.created_at <= cutoffs.cutoff_at

),

contact_versions as (

    select
        {{ text_id('contact_id') }} as contact_id,
        upper(trim(country)) as country,
        coalesce(marketing_consent, false) as has_marketing_consent,
        dbt_valid_from,
        dbt_valid_to,
        row_number() over (partition by contact_id order by dbt_valid_from) as version_number
    from contact_history

),

profile_features as (

    select
        contacts_known.customer_key,
        contacts_known.cutoff_date,
        min(contacts_known.created_at) as first_contact_created_at,
        max(case when contacts_known.contact_rank = 1 then
            coalesce(valid_version.country, first_version.country) end) as country,
        max(case when contacts_known.contact_rank = 1 then
            case
                when valid_version.has_marketing_consent then 1
                when not valid_version.has_marketing_consent then 0
            end end) as marketing_consent
    from contacts_known
    left join contact_versions as valid_version
        on contacts_known.contact_id = valid_version.contact_id
        and valid_version.dbt_valid_from <= contacts_known.cutoff_at
        and (valid_version.dbt_valid_to is null or valid_version.dbt_valid_to > contacts_known.cutoff_at)
    left join contact_versions as first_version
        on contacts_known.contact_id = first_version.contact_id
        and first_version.version_number = 1
    group by 1, 2

),

-- service -----------------------------------------------------------------------------------

ticket_features as (

    select
        contact_keys.customer_key,
        cutoffs.cutoff_date,
        count(*) as ticket_count,
        count(*) filter (
            where tickets.created_at > {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_at') }}
        ) as tickets_last_90d,
        count(*) filter (where tickets.is_negative) as negative_ticket_count,
        count(*) filter (
            where tickets.resolved_at is null or tickets.resolved_at > cutoffs.cutoff_at
        ) as open_ticket_count,
        avg(tickets.sentiment_score) as avg_ticket_sentiment,
        max(tickets.created_at) as last_ticket_at
    from tickets
    inner join contact_keys
        on tickets.contact_id = contact_keys.contact_id
    inner join customer_cutoffs as cutoffs
        on contact_keys.customer_key = cutoffs.customer_key
        and tickets.created_at <= cutoffs.cutoff_at
    group by 1, 2

),

surveys_ranked as (

    select
        contact_keys.customer_key,
        cutoffs.cutoff_date,
        survey_responses.survey_type,
        survey_responses.score,
        row_number() over (
            partition by contact_keys.customer_key, cutoffs.cutoff_date, survey_responses.survey_type
            order by survey_responses.responded_at desc, survey_responses.survey_response_id desc
        ) as response_rank
    from survey_responses
    inner join contact_keys
        on survey_responses.contact_id = contact_keys.contact_id
    inner join customer_cutoffs as cutoffs
        on contact_keys.customer_key = cutoffs.customer_key
        and survey_responses.responded_at <= cutoffs.cutoff_at

),

survey_features as (

    select
        customer_key,
        cutoff_date,
        max(case when survey_type = 'nps' then score end) as last_nps_score,
        max(case when survey_type = 'csat' then score end) as last_csat_score
    from surveys_ranked
    where response_rank = 1
    group by 1, 2

),

-- marketing ---------------------------------------------------------------------------------

email_features as (

    select
        contact_keys.customer_key,
        cutoffs.cutoff_date,
        count(*) filter (
            where email_events.event_type = 'sent'
              and email_events.occurred_at > {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_at') }}
        ) as emails_sent_90d,
        count(*) filter (
            where email_events.event_type = 'open'
              and email_events.occurred_at > {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_at') }}
        ) as emails_opened_90d,
        count(*) filter (
            where email_events.event_type = 'click'
              and email_events.occurred_at > {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_at') }}
        ) as emails_clicked_90d,
        count(*) filter (where email_events.event_type = 'unsubscribe') as unsubscribe_count
    from email_events
    inner join contact_keys
        on email_events.contact_id = contact_keys.contact_id
    inner join customer_cutoffs as cutoffs
        on contact_keys.customer_key = cutoffs.customer_key
        and email_events.occurred_at <= cutoffs.cutoff_at
        -- only the rows a feature counts (the last 90 days; unsubscribes ever): an older
        -- send, open or click only made a row of zeros, which the final left join's
        -- coalesce gives anyway (each email event joined every later cutoff before)
        and (
            email_events.occurred_at > {{ dbt.dateadd('day', -90, 'cutoffs.cutoff_at') }}
            or email_events.event_type = 'unsubscribe'
        )
    where email_events.event_type in ('sent', 'open', 'click', 'unsubscribe')
    group by 1, 2

),

-- digital -----------------------------------------------------------------------------------

sessions_linked as (

    -- a session counts at a cutoff once it started and its anonymous id was linked to the
    -- person by then: visible_at = the later of the two
    select
        anonymous_links.customer_key,
        sessions.started_at,
        case
            when anonymous_links.linked_at > sessions.started_at then anonymous_links.linked_at
            else sessions.started_at
        end as visible_at
    from sessions
    inner join anonymous_links
        on sessions.anonymous_id = anonymous_links.anonymous_id
    where anonymous_links.linked_at is not null

),

sessions_recent as (

    -- the sessions the 30/60-day counts see: each joins at most the cutoffs of 60 days
    select
        sessions_linked.customer_key,
        cutoffs.cutoff_date,
        cutoffs.cutoff_at,
        sessions_linked.started_at
    from sessions_linked
    inner join customer_cutoffs as cutoffs
        on sessions_linked.customer_key = cutoffs.customer_key
        and sessions_linked.visible_at <= cutoffs.cutoff_at
        and sessions_linked.started_at > {{ dbt.dateadd('day', -60, 'cutoffs.cutoff_at') }}

),

session_counts as (

    select
        customer_key,
        cutoff_date,
        count(*) filter (
            where started_at > {{ dbt.dateadd('day', -30, 'cutoff_at') }}
        ) as sessions_last_30d,
        count(*) filter (
            where started_at <= {{ dbt.dateadd('day', -30, 'cutoff_at') }}
        ) as sessions_prior_30d
    from sessions_recent
    group by 1, 2

),

session_buckets as (

    -- the latest session start per person among the sessions the cutoff is the first of
    -- the person's computed cutoffs to see: each session joins one cutoff (it joined every
    -- later one before, the whole history times the grid)
    select
        sessions_linked.customer_key,
        cutoffs.cutoff_date,
        max(sessions_linked.started_at) as last_started_at
    from sessions_linked
    inner join customer_cutoffs as cutoffs
        on sessions_linked.customer_key = cutoffs.customer_key
        and sessions_linked.visible_at <= cutoffs.cutoff_at
        and (
            cutoffs.previous_cutoff_at is null
            or sessions_linked.visible_at > cutoffs.previous_cutoff_at
        )
    group by 1, 2

),

session_latest as (

    -- the latest session seen by each cutoff: a running max over the person's cutoffs
    select
        cutoffs.customer_key,
        cutoffs.cutoff_date,
        max(session_buckets.last_started_at) over (
            partition by cutoffs.customer_key
            order by cutoffs.cutoff_date
            rows between unbounded preceding and current row
        ) as last_session_at
    from customer_cutoffs as cutoffs
    left join session_buckets
        on cutoffs.customer_key = session_buckets.customer_key
        and cutoffs.cutoff_date = session_buckets.cutoff_date

),

session_features as (

    -- persons with a session seen by the cutoff (as before: a row per such person)
    select
        session_latest.customer_key,
        session_latest.cutoff_date,
        coalesce(session_counts.sessions_last_30d, 0) as sessions_last_30d,
        coalesce(session_counts.sessions_prior_30d, 0) as sessions_prior_30d,
        session_latest.last_session_at
    from session_latest
    left join session_counts
        on session_latest.customer_key = session_counts.customer_key
        and session_latest.cutoff_date = session_counts.cutoff_date
    where session_latest.last_session_at is not null

),

events_daily as (

    -- product views and carts counted per device and "ceiling midnight": the first midnight
    -- at or after the event. Every bound an event is compared with below is a midnight (a
    -- cutoff_at minus whole days), and an event is at or before a midnight exactly when its
    -- ceiling is, so counting these groups gives the counts of the events themselves, from
    -- a few rows per device and day instead of every event times its cutoffs.
    select
        anonymous_id,
        event_type,
        case
            when collector_at = cast(cast(collector_at as date) as timestamp) then collector_at
            else cast({{ dbt.dateadd('day', 1, 'cast(collector_at as date)') }} as timestamp)
        end as seen_by,
        count(*) as event_count
    from events
    where event_type in ('product_view', 'add_to_cart')
      -- no pair counts an event from more than 60 days before the grid's earliest cutoff:
      -- the scan covers the grid's span, not the whole history (its bound prunes the
      -- table's older row groups, also under the changed persons' devices below)
      and collector_at > (select {{ dbt.dateadd('day', -61, 'min(cutoff_at)') }} from cutoffs)
    {%- if buckets > 1 %}
      -- a bucket's persons' devices only
      and anonymous_id in (select anonymous_id from anonymous_links)
    {%- endif %}
    {%- if is_incremental() %}
      -- only what this build's pairs count: the 60 days before the earliest cutoff computed
      -- for every buyer, and the devices of changed persons (not the whole history)
      and (
          collector_at > (
              select {{ dbt.dateadd('day', -61, 'min(cutoff_at)') }}
              from cutoffs
              where cutoff_date not in (select cutoff_date from kept_cutoffs)
          )
          {%- if watermark is not none %}
          or anonymous_id in (
              select anonymous_links.anonymous_id
              from anonymous_links
              inner join changed_keys
                  on anonymous_links.customer_key = changed_keys.customer_key
          )
          {%- endif %}
      )
    {%- endif %}
    group by 1, 2, 3

),

events_known as (

    select
        anonymous_links.customer_key,
        cutoffs.cutoff_date,
        cutoffs.cutoff_at,
        events_daily.event_type,
        events_daily.seen_by,
        events_daily.event_count
    from events_daily
    inner join anonymous_links
        on events_daily.anonymous_id = anonymous_links.anonymous_id
    inner join customer_cutoffs as cutoffs
        on anonymous_links.customer_key = cutoffs.customer_key
        and events_daily.seen_by <= cutoffs.cutoff_at
        and events_daily.seen_by > {{ dbt.dateadd('day', -60, 'cutoffs.cutoff_at') }}
        and anonymous_links.linked_at <= cutoffs.cutoff_at

),

event_features as (

    select
        customer_key,
        cutoff_date,
        sum(case
            when event_type = 'product_view' and seen_by > {{ dbt.dateadd('day', -30, 'cutoff_at') }}
                then event_count else 0 end) as product_views_last_30d,
        sum(case
            when event_type = 'product_view' and seen_by <= {{ dbt.dateadd('day', -30, 'cutoff_at') }}
                then event_count else 0 end) as product_views_prior_30d,
        sum(case
            when event_type = 'add_to_cart' and seen_by > {{ dbt.dateadd('day', -30, 'cutoff_at') }}
                then event_count else 0 end) as carts_last_30d,
        sum(case
            when event_type = 'add_to_cart' and seen_by <= {{ dbt.dateadd('day', -30, 'cutoff_at') }}
                then event_count else 0 end) as carts_prior_30d
    from events_known
    group by 1, 2

),

-- assembly ----------------------------------------------------------------------------------

final as (

    select
        cast(eligible.customer_key as {{ text }}) as customer_key,
        cast(eligible.cutoff_date as date) as cutoff_date,
        cast(eligible.cutoff_at as timestamp) as cutoff_at,

        -- commerce
        cast({{ days_between('eligible.last_order_at', 'eligible.cutoff_at') }} as integer) as recency_days,
        cast(eligible.order_count as integer) as frequency,
        {{ stable_double("eligible.monetary") }} as monetary,
        {{ stable_double(safe_divide('eligible.gross_revenue', 'eligible.order_count')) }} as avg_order_value,
        cast(eligible.orders_last_30d as integer) as orders_last_30d,
        cast(eligible.orders_last_90d as integer) as orders_last_90d,
        cast(eligible.orders_prior_90d as integer) as orders_prior_90d,
        {{ stable_double("eligible.revenue_last_30d") }} as revenue_last_30d,
        {{ stable_double("eligible.revenue_last_90d") }} as revenue_last_90d,
        {{ stable_double("eligible.revenue_prior_90d") }} as revenue_prior_90d,
        cast(eligible.orders_last_90d - eligible.orders_prior_90d as integer) as order_trend_90d,
        {{ stable_double("eligible.revenue_last_90d - eligible.revenue_prior_90d") }} as revenue_trend_90d,
        cast({{ days_between('eligible.first_order_at', 'eligible.cutoff_at') }} as integer) as days_since_first_order,
        cast(
            {{ days_between(
                'case when profile_features.first_contact_created_at < eligible.first_order_at'
                ~ ' then profile_features.first_contact_created_at else eligible.first_order_at end',
                'eligible.cutoff_at') }}
            as integer
        ) as tenure_days,
        {{ stable_double("coalesce(category_features.top_category_share, 0)") }} as top_category_share,
        cast(coalesce(category_features.category_count, 0) as integer) as category_count,
        {{ stable_double(safe_divide('eligible.returned_order_count', 'eligible.order_count')) }} as return_rate,
        {{ stable_double(safe_divide('eligible.cancelled_order_count', 'eligible.all_order_count')) }} as cancel_rate,
        cast(eligible.late_delivery_count as integer) as late_delivery_count,

        -- service and voice of the customer
        cast(coalesce(ticket_features.ticket_count, 0) as integer) as ticket_count,
        cast(coalesce(ticket_features.tickets_last_90d, 0) as integer) as tickets_last_90d,
        cast(coalesce(ticket_features.negative_ticket_count, 0) as integer) as negative_ticket_count,
        cast(coalesce(ticket_features.open_ticket_count, 0) as integer) as open_ticket_count,
        {{ stable_double("ticket_features.avg_ticket_sentiment") }} as avg_ticket_sentiment,
        cast(survey_features.last_nps_score as integer) as last_nps_score,
        cast(survey_features.last_csat_score as integer) as last_csat_score,

        -- marketing
        cast(coalesce(email_features.emails_sent_90d, 0) as integer) as emails_sent_90d,
        cast(coalesce(email_features.emails_opened_90d, 0) as integer) as emails_opened_90d,
        cast(coalesce(email_features.emails_clicked_90d, 0) as integer) as emails_clicked_90d,
        cast(case when coalesce(email_features.unsubscribe_count, 0) > 0 then 1 else 0 end as integer) as is_unsubscribed,
        cast(profile_features.marketing_consent as integer) as marketing_consent,

        -- digital
        cast(coalesce(session_features.sessions_last_30d, 0) as integer) as sessions_last_30d,
        cast(coalesce(session_features.sessions_prior_30d, 0) as integer) as sessions_prior_30d,
        cast(coalesce(event_features.product_views_last_30d, 0) as integer) as product_views_last_30d,
        cast(coalesce(event_features.product_views_prior_30d, 0) as integer) as product_views_prior_30d,
        cast(coalesce(event_features.carts_last_30d, 0) as integer) as carts_last_30d,
        cast(coalesce(event_features.carts_prior_30d, 0) as integer) as carts_prior_30d,
        cast({{ days_between('session_features.last_session_at', 'eligible.cutoff_at') }} as integer) as days_since_last_session,

        -- categoricals
        cast(profile_features.country as {{ text }}) as country
    from eligible
    left join category_features
        on eligible.customer_key = category_features.customer_key
        and eligible.cutoff_date = category_features.cutoff_date
    left join profile_features
        on eligible.customer_key = profile_features.customer_key
        and eligible.cutoff_date = profile_features.cutoff_date
    left join ticket_features
        on eligible.customer_key = ticket_features.customer_key
        and eligible.cutoff_date = ticket_features.cutoff_date
    left join survey_features
        on eligible.customer_key = survey_features.customer_key
        and eligible.cutoff_date = survey_features.cutoff_date
    left join email_features
        on eligible.customer_key = email_features.customer_key
        and eligible.cutoff_date = email_features.cutoff_date
    left join session_features
        on eligible.customer_key = session_features.customer_key
        and eligible.cutoff_date = session_features.cutoff_date
    left join event_features
        on eligible.customer_key = event_features.customer_key
        and eligible.cutoff_date = event_features.cutoff_date

)

select * from final
