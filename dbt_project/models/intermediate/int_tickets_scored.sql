-- Ticket sentiment from the seed lexicon: the mean weight of the distinct lexicon words
-- found (as whole words) in subject + body; 0 when no lexicon word occurs.
-- Words are matched by padding a letters-only, lower-case copy of the text with spaces and
-- looking for ' word ' (portable: no tokeniser or arrays needed).
with

tickets as (

    select * from {{ ref('stg_crm__tickets') }}

),

lexicon as (

    select * from {{ ref('sentiment_lexicon') }}

),

texts_normalised as (

    select
        ticket_id,
        {{ normalise_text_for_matching("coalesce(subject, '') || ' ' || coalesce(body, '')") }} as ticket_text
    from tickets

),

words_matched as (

    select
        texts_normalised.ticket_id,
        count(*) as matched_word_count,
        sum(lexicon.weight) as weight_sum,
        count(*) filter (where lexicon.weight < 0) as negative_word_count,
        count(*) filter (where lexicon.weight > 0) as positive_word_count
    from texts_normalised
    inner join lexicon
        on texts_normalised.ticket_text like ('% ' || lexicon.word || ' %')
    group by 1

),

scored as (

    select
        ticket_id,
        matched_word_count,
        negative_word_count,
        positive_word_count,
        -- Rounded: a sum of doubles depends on the order DuckDB adds them in, and a re-run
        -- must give the same score to the last digit (a backfill replayed changes nothing).
        {{ stable_double("weight_sum / nullif(matched_word_count, 0)") }} as sentiment_score
    from words_matched

),

final as (

    select
        tickets.ticket_id,
        tickets.contact_id,
        tickets.order_id,
        tickets.status,
        tickets.priority,
        tickets.created_at,
        tickets.resolved_at,
        case
            when tickets.resolved_at is not null
                then cast({{ dbt.datediff('tickets.created_at', 'tickets.resolved_at', 'minute') }} as {{ type_double() }}) / 60.0
        end as resolution_hours,
        cast(coalesce(scored.matched_word_count, 0) as integer) as matched_word_count,
        cast(coalesce(scored.positive_word_count, 0) as integer) as positive_word_count,
        cast(coalesce(scored.negative_word_count, 0) as integer) as negative_word_count,
        cast(coalesce(scored.sentiment_score, 0) as {{ type_double() }}) as sentiment_score,
        coalesce(scored.sentiment_score, 0) < -0.2 as is_negative,
        coalesce(scored.sentiment_score, 0) > 0.2 as is_positive
    from tickets
    left join scored
        on tickets.ticket_id = scored.ticket_id

)

select * from final
