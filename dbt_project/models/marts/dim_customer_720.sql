{{ config(tags=['needs_scores']) }}

{#- string columns are cast to dbt.type_string() so the enforced contract holds on both engines -#}
{%- set text = dbt.type_string() -%}

with

identity_nodes as {{ not_materialized() }} (

    select * from {{ ref('int_identity_nodes_resolved') }}

),

contacts as (

    select * from {{ ref('stg_crm__contacts') }}

),

orders as (

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

sessions as {{ not_materialized() }} (

    select * from {{ ref('fct_sessions') }}

),

touchpoints as (

    select * from {{ ref('fct_touchpoints') }}

),

as_of_dates as (

    select * from {{ ref('int_as_of_dates_resolved') }}

),

churn_scores as (

    select * from {{ ref('customer_churn_scores') }}

),

value_scores as (

    select * from {{ ref('customer_value_scores') }}

),

recommendations as (

    select * from {{ ref('customer_recommendations') }}

),

-- identity ------------------------------------------------------------------------------

persons as (

    select
        customer_key,
        count(*) filter (where node_type = 'contact') as contact_id_count,
        count(*) filter (where node_type = 'email') as email_hash_count,
        count(*) filter (where node_type = 'anon') as anonymous_id_count,
        min(component_label) as component_label
    from identity_nodes
    group by 1

),

person_contacts as (

    select
        identity_nodes.customer_key,
        contacts.*,
        row_number() over (
            partition by identity_nodes.customer_key
            order by case when contacts.is_deleted then 1 else 0 end, {{ contact_order_key('contacts.contact_id') }}
        ) as contact_rank
    from identity_nodes
    inner join contacts
        on identity_nodes.contact_id = contacts.contact_id
    where identity_nodes.node_type = 'contact'

),

contact_keys as (

    select contact_id, customer_key
    from identity_nodes
    where node_type = 'contact'

),

-- crm 360 ---------------------------------------------------------------------------------

crm_profile as (

    select
        customer_key,
        -- contacts rank non-deleted first, lowest id first
        max(case when contact_rank = 1 and not is_deleted then contact_id end) as primary_contact_id,
        min(created_at) as first_contact_created_at,
        min(case when has_marketing_consent or is_deleted then 1 else 0 end) = 1
            and count(*) filter (where not is_deleted) > 0 as marketing_consent,
        count(*) filter (where not is_deleted) = 0 as is_deleted,
        max(case when contact_rank = 1 then country end) as country,
        max(case when contact_rank = 1 then lifecycle_stage end) as lifecycle_stage,
        max(case when contact_rank = 1 then owner end) as account_owner,
        max(case when contact_rank = 1 then email_hash end) as email_hash
    from person_contacts
    group by 1

),

-- commerce --------------------------------------------------------------------------------

order_summary as (

    select
        customer_key,
        count(*) filter (where not is_cancelled) as order_count,
        -- purchases (macros/purchases.sql): not cancelled, not returned, no credit note; a
        -- customer whose only order was refunded has none and stays a lead
        count(*) filter (where is_purchase) as purchase_count,
        count(*) filter (where is_cancelled) as cancelled_order_count,
        count(*) filter (where is_returned) as returned_order_count,
        count(*) filter (where is_late_delivery) as late_delivery_count,
        count(*) filter (where not is_cancelled and channel in ('web', 'app')) as digital_order_count,
        -- float sums/averages rounded (stable_double): the engine adds in parallel, in no fixed
        -- order, and a rebuild on the same data must give the same bytes
        -- net: returns count 0, credit notes subtract (net_amount, macros/purchases.sql)
        {{ stable_double('sum(net_amount)') }} as total_revenue,
        min(case when is_purchase then ordered_at end) as first_order_at,
        max(case when is_purchase then ordered_at end) as last_order_at
    from orders
    where customer_key is not null
    group by 1

),

category_revenue as (

    select
        customer_key,
        category,
        {{ stable_double('sum(line_amount)') }} as category_amount
    from order_items
    where is_purchase
    group by 1, 2

),

category_ranked as (

    select
        customer_key,
        category,
        row_number() over (partition by customer_key order by category_amount desc, category) as category_rank,
        count(*) over (partition by customer_key) as category_count
    from category_revenue

),

favourite_categories as (

    select customer_key, category as favourite_category, category_count
    from category_ranked
    where category_rank = 1

),

-- service ---------------------------------------------------------------------------------

ticket_summary as (

    select
        contact_keys.customer_key,
        count(*) as ticket_count,
        count(*) filter (where tickets.status in ('open', 'pending')) as open_ticket_count,
        count(*) filter (where tickets.is_negative) as negative_ticket_count,
        {{ stable_double('avg(tickets.resolution_hours)') }} as avg_resolution_hours,
        {{ stable_double('avg(tickets.sentiment_score)') }} as avg_ticket_sentiment,
        max(case when tickets.is_negative then tickets.created_at end) as last_negative_ticket_at
    from tickets
    inner join contact_keys
        on tickets.contact_id = contact_keys.contact_id
    group by 1

),

surveys_ranked as (

    select
        contact_keys.customer_key,
        survey_responses.survey_type,
        survey_responses.score,
        row_number() over (
            partition by contact_keys.customer_key, survey_responses.survey_type
            order by survey_responses.responded_at desc, survey_responses.survey_response_id desc
        ) as response_rank
    from survey_responses
    inner join contact_keys
        on survey_responses.contact_id = contact_keys.contact_id

),

survey_summary as (

    select
        customer_key,
        max(case when survey_type = 'nps' then score end) as last_nps_score,
        max(case when survey_type = 'csat' then score end) as last_csat_score
    from surveys_ranked
    where response_rank = 1
    group by 1

),

-- marketing -------------------------------------------------------------------------------

email_summary as (

    select
        contact_keys.customer_key,
        count(*) filter (where email_events.event_type = 'sent') as emails_sent,
        count(*) filter (where email_events.event_type = 'open') as emails_opened,
        count(*) filter (where email_events.event_type = 'click') as emails_clicked,
        count(*) filter (where email_events.event_type = 'unsubscribe') > 0 as is_unsubscribed
    from email_events
    inner join contact_keys
        on email_events.contact_id = contact_keys.contact_id
    group by 1

),

-- first and last touches by aggregates, not by ranking every touchpoint of every person
-- (two sorts of 9.7M rows at 100k customers, most of this model's time)
touchpoints_known as {{ not_materialized() }} (

    select
        customer_key,
        channel,
        touchpoint_type,
        occurred_at,
        touchpoint_id,
        touchpoint_type not in ('ticket', 'nps', 'csat', 'email_sent', 'email_unsubscribe') as is_acquisition
    from touchpoints
    where customer_key is not null

),

acquisition_times as (

    select
        customer_key,
        min(occurred_at) as first_at,
        max(occurred_at) as last_at
    from touchpoints_known
    where is_acquisition
    group by 1

),

touch_summary as (

    -- the channel of the first and of the last acquisition touch; on a tie in time the
    -- first in channel order (nulls last), as an ordered ranking would take
    select
        touchpoints_known.customer_key,
        min(case when touchpoints_known.occurred_at = acquisition_times.first_at then touchpoints_known.channel end) as first_touch_channel,
        max(case when touchpoints_known.occurred_at = acquisition_times.last_at then touchpoints_known.channel end) as last_touch_channel
    from touchpoints_known
    inner join acquisition_times
        on touchpoints_known.customer_key = acquisition_times.customer_key
    where touchpoints_known.is_acquisition
      and (
          touchpoints_known.occurred_at = acquisition_times.first_at
          or touchpoints_known.occurred_at = acquisition_times.last_at
      )
    group by 1

),

last_touch_ids as (

    -- the last touchpoint: the latest, and of those the greatest touchpoint_id
    select
        touchpoints_known.customer_key,
        max(touchpoints_known.touchpoint_id) as touchpoint_id
    from touchpoints_known
    inner join (
        select customer_key, max(occurred_at) as last_at
        from touchpoints_known
        group by 1
    ) as last_times
        on touchpoints_known.customer_key = last_times.customer_key
        and touchpoints_known.occurred_at = last_times.last_at
    group by 1

),

last_touchpoints as (

    select
        touchpoints_known.customer_key,
        touchpoints_known.occurred_at as last_touchpoint_at,
        touchpoints_known.channel as last_touchpoint_channel,
        touchpoints_known.touchpoint_type as last_touchpoint_type
    from touchpoints_known
    inner join last_touch_ids
        on touchpoints_known.touchpoint_id = last_touch_ids.touchpoint_id

),

-- digital ---------------------------------------------------------------------------------

session_summary as (

    select
        sessions.customer_key,
        count(*) as session_count,
        sum(sessions.page_views) as page_views,
        sum(sessions.product_views) as product_views,
        count(*) filter (where sessions.add_to_carts > 0) as cart_session_count,
        count(*) filter (where sessions.is_cart_abandoned) as abandoned_cart_count,
        count(*) filter (
            where sessions.is_cart_abandoned and sessions.cart_value >= {{ var('high_value_cart_amount') }}
        ) as high_value_abandoned_cart_count,
        count(distinct sessions.platform || '/' || sessions.device_type) as device_count,
        count(*) filter (
            where sessions.session_date > {{ dbt.dateadd('day', -30, 'as_of_dates.as_of_date') }}
              and sessions.session_date <= as_of_dates.as_of_date
        ) as sessions_last_30d,
        count(*) filter (
            where sessions.session_date > {{ dbt.dateadd('day', -60, 'as_of_dates.as_of_date') }}
              and sessions.session_date <= {{ dbt.dateadd('day', -30, 'as_of_dates.as_of_date') }}
        ) as sessions_prior_30d,
        max(sessions.started_at) as last_session_at
    from sessions
    cross join as_of_dates
    where sessions.customer_key is not null
    group by 1

),

devices_distinct as (

    select distinct
        customer_key,
        coalesce(platform, 'unknown') || '/' || coalesce(device_type, 'unknown') as device
    from sessions
    where customer_key is not null

),

device_lists as (

    select
        customer_key,
        {{ dbt.listagg('device', "','", 'order by device') }} as devices
    from devices_distinct
    group by 1

),

channel_ranked as (

    select
        customer_key,
        channel_group,
        row_number() over (partition by customer_key order by count(*) desc, channel_group) as channel_rank
    from sessions
    where customer_key is not null
    group by 1, 2

),

-- predictions -----------------------------------------------------------------------------

recommendation_lists as (

    select
        customer_key,
        {{ dbt.listagg('cast(product_id as ' ~ text ~ ')', "','", 'order by rank') }} as next_best_products,
        max(model_version) as recommendation_model_version
    from recommendations
    group by 1

),

-- assembly --------------------------------------------------------------------------------

joined as (

    select
        persons.customer_key,
        persons.contact_id_count,
        persons.email_hash_count,
        persons.anonymous_id_count,
        crm_profile.primary_contact_id,
        crm_profile.email_hash,
        device_lists.devices,
        coalesce(session_summary.device_count, 0) as device_count,

        crm_profile.country,
        crm_profile.lifecycle_stage,
        coalesce(crm_profile.marketing_consent, false) as marketing_consent,
        crm_profile.account_owner,
        crm_profile.first_contact_created_at,
        {{ days_between('crm_profile.first_contact_created_at', 'as_of_dates.as_of_date') }} as tenure_days,
        coalesce(crm_profile.is_deleted, false) as is_deleted,

        coalesce(order_summary.order_count, 0) as order_count,
        coalesce(order_summary.purchase_count, 0) as purchase_count,
        coalesce(order_summary.total_revenue, 0) as total_revenue,
        order_summary.first_order_at,
        order_summary.last_order_at,
        {{ days_between('order_summary.last_order_at', 'as_of_dates.as_of_date') }} as recency_days,
        {{ safe_divide('order_summary.total_revenue', 'order_summary.order_count') }} as avg_order_value,
        coalesce(order_summary.cancelled_order_count, 0) as cancelled_order_count,
        coalesce(order_summary.returned_order_count, 0) as returned_order_count,
        {{ safe_divide('order_summary.returned_order_count', 'order_summary.order_count') }} as return_rate,
        coalesce(order_summary.late_delivery_count, 0) as late_delivery_count,
        coalesce(order_summary.digital_order_count, 0) as digital_order_count,
        favourite_categories.favourite_category,
        coalesce(favourite_categories.category_count, 0) as category_count,

        coalesce(ticket_summary.ticket_count, 0) as ticket_count,
        coalesce(ticket_summary.open_ticket_count, 0) as open_ticket_count,
        coalesce(ticket_summary.negative_ticket_count, 0) as negative_ticket_count,
        ticket_summary.avg_resolution_hours,
        ticket_summary.avg_ticket_sentiment,
        ticket_summary.last_negative_ticket_at,
        survey_summary.last_nps_score,
        survey_summary.last_csat_score,

        coalesce(email_summary.emails_sent, 0) as emails_sent,
        coalesce(email_summary.emails_opened, 0) as emails_opened,
        coalesce(email_summary.emails_clicked, 0) as emails_clicked,
        coalesce(email_summary.is_unsubscribed, false) as is_unsubscribed,
        touch_summary.first_touch_channel,
        touch_summary.last_touch_channel,

        coalesce(session_summary.session_count, 0) as session_count,
        coalesce(session_summary.page_views, 0) as page_views,
        coalesce(session_summary.product_views, 0) as product_views,
        coalesce(session_summary.cart_session_count, 0) as cart_session_count,
        coalesce(session_summary.abandoned_cart_count, 0) as abandoned_cart_count,
        coalesce(session_summary.high_value_abandoned_cart_count, 0) as high_value_abandoned_cart_count,
        coalesce(session_summary.sessions_last_30d, 0) as sessions_last_30d,
        coalesce(session_summary.sessions_prior_30d, 0) as sessions_prior_30d,
        session_summary.last_session_at,
        channel_ranked.channel_group as top_channel_group,

        last_touchpoints.last_touchpoint_at,
        last_touchpoints.last_touchpoint_channel,
        last_touchpoints.last_touchpoint_type,

        churn_scores.churn_probability,
        churn_scores.risk_band as churn_risk_band,
        churn_scores.top_reasons as churn_top_reasons,
        recommendation_lists.next_best_products,
        churn_scores.model_version,
        churn_scores.scored_at,
        churn_scores.as_of_date as scores_as_of_date,
        recommendation_lists.recommendation_model_version,
        value_scores.clv,
        value_scores.revenue_at_risk,
        value_scores.save_rank,
        value_scores.horizon_days as clv_horizon_days,
        value_scores.clv_model_version,

        as_of_dates.as_of_date
    from persons
    cross join as_of_dates
    left join crm_profile on persons.customer_key = crm_profile.customer_key
    left join order_summary on persons.customer_key = order_summary.customer_key
    left join favourite_categories on persons.customer_key = favourite_categories.customer_key
    left join ticket_summary on persons.customer_key = ticket_summary.customer_key
    left join survey_summary on persons.customer_key = survey_summary.customer_key
    left join email_summary on persons.customer_key = email_summary.customer_key
    left join touch_summary on persons.customer_key = touch_summary.customer_key
    left join last_touchpoints on persons.customer_key = last_touchpoints.customer_key
    left join session_summary on persons.customer_key = session_summary.customer_key
    left join device_lists on persons.customer_key = device_lists.customer_key
    left join channel_ranked
        on persons.customer_key = channel_ranked.customer_key
        and channel_ranked.channel_rank = 1
    left join churn_scores on persons.customer_key = churn_scores.customer_key
    left join recommendation_lists on persons.customer_key = recommendation_lists.customer_key
    left join value_scores on persons.customer_key = value_scores.customer_key

),

classified as (

    select
        *,
        -- journey stage (first matching rule wins):
        --   anonymous      no CRM contact, web identity only
        --   lead           CRM contact(s), no purchase (a fully refunded order is none)
        --   lapsed         last order more than var('lapsed_days') days before as_of_date
        --   at_risk        last order more than var('at_risk_days') days ago, or churn risk band 'high'
        --   repeat         two or more orders
        --   first_purchase exactly one order
        case
            when contact_id_count = 0 then 'anonymous'
            when purchase_count = 0 then 'lead'
            when recency_days > {{ var('lapsed_days') }} then 'lapsed'
            when recency_days > {{ var('at_risk_days') }} or churn_risk_band = 'high' then 'at_risk'
            when order_count >= 2 then 'repeat'
            else 'first_purchase'
        end as journey_stage,
        -- rfm segment: rule based on recency (days) and frequency (orders)
        case
            when contact_id_count = 0 and order_count = 0 then 'visitor'
            when order_count = 0 then 'prospect'
            when recency_days <= 30 and order_count >= 3 then 'champion'
            when recency_days <= 90 and order_count >= 3 then 'loyal'
            when recency_days <= 30 and order_count = 1 then 'new'
            when recency_days <= 90 then 'promising'
            when recency_days <= 180 and order_count >= 2 then 'at_risk'
            when recency_days <= 180 then 'needs_attention'
            else 'hibernating'
        end as rfm_segment,
        case
            when sessions_last_30d = 0 and sessions_prior_30d = 0 then 'inactive'
            when sessions_last_30d > sessions_prior_30d then 'rising'
            when sessions_last_30d < sessions_prior_30d then 'falling'
            else 'stable'
        end as engagement_trend
    from joined

),

final as (

    select
        -- identity
        cast(customer_key as {{ text }}) as customer_key,
        cast(primary_contact_id as {{ dbt.type_string() }}) as primary_contact_id,
        cast(contact_id_count as integer) as contact_id_count,
        cast(email_hash as {{ text }}) as email_hash,
        cast(email_hash_count as integer) as email_hash_count,
        cast(anonymous_id_count as integer) as anonymous_id_count,
        cast(device_count as integer) as device_count,
        cast(devices as {{ text }}) as devices,

        -- crm 360
        cast(country as {{ text }}) as country,
        cast(lifecycle_stage as {{ text }}) as lifecycle_stage,
        cast(marketing_consent as boolean) as marketing_consent,
        cast(account_owner as {{ text }}) as owner,
        cast(first_contact_created_at as timestamp) as first_contact_created_at,
        cast(tenure_days as integer) as tenure_days,
        cast(is_deleted as boolean) as is_deleted,

        -- commerce
        cast(order_count as integer) as order_count,
        cast(total_revenue as {{ type_double() }}) as total_revenue,
        cast(first_order_at as timestamp) as first_order_at,
        cast(last_order_at as timestamp) as last_order_at,
        cast(recency_days as integer) as recency_days,
        cast(order_count as integer) as frequency,
        cast(total_revenue as {{ type_double() }}) as monetary,
        cast(avg_order_value as {{ type_double() }}) as avg_order_value,
        cast(favourite_category as {{ text }}) as favourite_category,
        cast(category_count as integer) as category_count,
        cast(cancelled_order_count as integer) as cancelled_order_count,
        cast(returned_order_count as integer) as returned_order_count,
        cast(return_rate as {{ type_double() }}) as return_rate,
        cast(late_delivery_count as integer) as late_delivery_count,

        -- service and voice of the customer
        cast(ticket_count as integer) as ticket_count,
        cast(open_ticket_count as integer) as open_ticket_count,
        cast(negative_ticket_count as integer) as negative_ticket_count,
        cast(avg_resolution_hours as {{ type_double() }}) as avg_resolution_hours,
        cast(avg_ticket_sentiment as {{ type_double() }}) as avg_ticket_sentiment,
        cast(last_nps_score as integer) as last_nps_score,
        cast(last_csat_score as integer) as last_csat_score,

        -- marketing
        cast(emails_sent as integer) as emails_sent,
        cast(emails_opened as integer) as emails_opened,
        cast(emails_clicked as integer) as emails_clicked,
        cast(is_unsubscribed as boolean) as is_unsubscribed,
        cast(first_touch_channel as {{ text }}) as first_touch_channel,
        cast(last_touch_channel as {{ text }}) as last_touch_channel,

        -- digital
        cast(session_count as integer) as session_count,
        cast(page_views as integer) as page_views,
        cast(product_views as integer) as product_views,
        cast(cart_session_count as integer) as cart_session_count,
        cast(abandoned_cart_count as integer) as abandoned_cart_count,
        cast(sessions_last_30d as integer) as sessions_last_30d,
        cast(sessions_prior_30d as integer) as sessions_prior_30d,
        cast(engagement_trend as {{ text }}) as engagement_trend,
        cast(top_channel_group as {{ text }}) as top_channel_group,
        cast(last_session_at as timestamp) as last_session_at,

        -- journey and moments of impact
        cast(journey_stage as {{ text }}) as journey_stage,
        cast(last_touchpoint_at as timestamp) as last_touchpoint_at,
        cast(last_touchpoint_channel as {{ text }}) as last_touchpoint_channel,
        cast(last_touchpoint_type as {{ text }}) as last_touchpoint_type,
        cast(high_value_abandoned_cart_count > 0 as boolean) as has_high_value_abandoned_cart,
        cast(last_negative_ticket_at as timestamp) as last_negative_ticket_at,
        cast(
            coalesce(last_negative_ticket_at >= {{ dbt.dateadd('day', -90, 'as_of_date') }}, false) as boolean
        ) as has_recent_negative_ticket,

        -- segment
        cast(rfm_segment as {{ text }}) as rfm_segment,
        cast(
            case
                when contact_id_count = 0 then 'anonymous_browser'
                when order_count = 0 and session_count > 0 then 'engaged_prospect'
                when order_count = 0 then 'dormant_lead'
                when negative_ticket_count > 0 then 'service_sensitive'
                when total_revenue >= 500 then 'big_spender'
                when digital_order_count * 2 >= order_count then 'digital_shopper'
                else 'offline_shopper'
            end as {{ text }}
        ) as persona,

        -- predictions (null until the ML stage has scored this person)
        cast(churn_probability as {{ type_double() }}) as churn_probability,
        cast(churn_risk_band as {{ text }}) as churn_risk_band,
        cast(churn_top_reasons as {{ text }}) as churn_top_reasons,
        cast(next_best_products as {{ text }}) as next_best_products,
        cast(model_version as {{ text }}) as model_version,
        cast(scored_at as timestamp) as scored_at,
        cast(scores_as_of_date as date) as scores_as_of_date,
        cast(clv as {{ type_double() }}) as clv,
        cast(revenue_at_risk as {{ type_double() }}) as revenue_at_risk,
        cast(save_rank as integer) as save_rank,
        cast(clv_horizon_days as integer) as clv_horizon_days,
        cast(clv_model_version as {{ text }}) as clv_model_version,

        cast(as_of_date as date) as as_of_date
    from classified

)

select * from final
