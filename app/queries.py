"""What each page reads from the published marts: plain SQL, one function per block.

Only ``marts.*`` and ``meta.publish_manifest`` of the snapshot; no raw emails or phones
exist there (the scores gate checks it), and none are added here.
"""

from __future__ import annotations

import re

from app.snapshot import Reader

# How many rows a list shows; the counts beside each list say how many there are.
LIST_LIMIT = 50
TIMELINE_LIMIT = 5000

CUSTOMER_KEY = re.compile(r"^[0-9a-f]{32}$")


def find_customers(r: Reader, query: str) -> list[dict]:
    """Persons matching a CRM contact id (any contact stitched to them that the marts name)
    or a customer key (whole, or a prefix of at least 6 characters)."""
    raw = query.strip()
    q = raw.lower()
    if not q:
        return []
    # A contact id exactly as the CRM shows it (text: '0035g00000AbCdEAAZ', 'cus_…', '123').
    # primary_contact_id is the person's lowest contact; other contacts of a person
    # appear in the marts only through their orders (fct_orders.contact_id).
    by_contact = r.rows(
        """select distinct d.customer_key, d.primary_contact_id, d.journey_stage, d.persona,
                  d.order_count, d.total_revenue
             from marts.dim_customer_720 d
            where d.primary_contact_id = ?
               or d.customer_key in (select customer_key from marts.fct_orders where contact_id = ?)
            order by d.customer_key""",
        [raw, raw],
    )
    if by_contact or q.isdigit():
        return by_contact
    if len(q) >= 6 and all(c in "0123456789abcdef" for c in q):
        return r.rows(
            """select customer_key, primary_contact_id, journey_stage, persona, order_count,
                      total_revenue
                 from marts.dim_customer_720 where starts_with(customer_key, ?)
                order by customer_key limit ?""",
            [q, LIST_LIMIT],
        )
    return []


def snapshot_overview(r: Reader) -> dict:
    row = r.row(
        """select count(*) as persons,
                  count(primary_contact_id) as with_contact,
                  count(churn_probability) as scored,
                  max(as_of_date) as as_of_date,
                  max(scores_as_of_date) as scores_as_of_date
             from marts.dim_customer_720"""
    )
    row["publish_id"] = r.version.publish_id
    row["published_at"] = r.version.published_at
    row["examples"] = r.rows(
        """select customer_key, primary_contact_id, journey_stage, churn_probability
             from marts.dim_customer_720 where primary_contact_id is not null
              and churn_probability is not null
            order by churn_probability desc limit 5"""
    )
    return row


def customer(r: Reader, key: str) -> dict | None:
    return r.row("select * from marts.dim_customer_720 where customer_key = ?", [key])


def identities(r: Reader, key: str, person: dict) -> dict:
    """The ids the marts name for a person, beside the identity graph's counts."""
    contact_ids = [
        row["contact_id"]
        for row in r.rows(
            """select contact_id from (
                   select ? as contact_id where ? is not null
                   union select distinct contact_id from marts.fct_orders where customer_key = ?
               ) where contact_id is not null order by contact_id""",
            [person["primary_contact_id"], person["primary_contact_id"], key],
        )
    ]
    anonymous = r.rows(
        """select anonymous_id, count(*) as sessions, min(started_at) as first_seen,
                  max(started_at) as last_seen,
                  string_agg(distinct platform || '/' || device_type, ', ') as devices
             from marts.fct_sessions where customer_key = ?
            group by anonymous_id order by first_seen limit ?""",
        [key, LIST_LIMIT],
    )
    return {"contact_ids": contact_ids, "anonymous": anonymous}


def orders(r: Reader, key: str, limit: int = 10) -> list[dict]:
    return r.rows(
        """select order_id, contact_id, ordered_at, status, channel, total_amount, item_count,
                  is_late_delivery
             from marts.fct_orders where customer_key = ? order by ordered_at desc limit ?""",
        [key, limit],
    )


def sessions(r: Reader, key: str, limit: int = 10) -> list[dict]:
    return r.rows(
        """select started_at, platform, device_type, channel_group, utm_campaign, page_views,
                  product_views, add_to_carts, cart_value, has_purchase, is_cart_abandoned
             from marts.fct_sessions where customer_key = ? order by started_at desc limit ?""",
        [key, limit],
    )


def sessions_by(r: Reader, key: str, column: str) -> list[dict]:
    assert column in {"channel_group", "platform || '/' || device_type"}
    return r.rows(
        f"""select {column} as name, count(*) as sessions, sum(page_views) as page_views,
                   count(*) filter (where has_purchase) as with_purchase
              from marts.fct_sessions where customer_key = ?
             group by 1 order by sessions desc, name""",
        [key],
    )


def churn_history(r: Reader, key: str) -> list[dict]:
    return r.rows(
        """select as_of_date, churn_probability, risk_band, model_version
             from marts.customer_churn_score_history where customer_key = ?
            order by as_of_date""",
        [key],
    )


def recommendations(r: Reader, key: str) -> list[dict]:
    return r.rows(
        """select rec.rank, rec.product_id, p.name, p.category, p.brand, p.price, rec.score,
                  rec.reason
             from marts.customer_recommendations rec
             left join marts.dim_products p on p.product_id = rec.product_id
            where rec.customer_key = ? order by rec.rank""",
        [key],
    )


def moments(r: Reader, key: str | None = None, limit: int = LIST_LIMIT) -> list[dict]:
    where = "where m.customer_key = ?" if key else ""
    return r.rows(
        f"""select m.customer_key, d.primary_contact_id, d.marketing_consent, d.owner,
                   m.moment_type, m.moment_at, m.days_before_as_of, m.channel, m.value_amount,
                   m.reason
              from marts.fct_moments_of_impact m
              join marts.dim_customer_720 d using (customer_key)
              {where}
             order by m.days_before_as_of, m.value_amount desc nulls last, m.moment_at desc
             limit ?""",
        ([key] if key else []) + [limit],
    )


def touchpoints(r: Reader, key: str) -> list[dict]:
    return r.rows(
        """select occurred_at, channel, touchpoint_type, value, sentiment
             from marts.fct_touchpoints where customer_key = ?
            order by occurred_at desc limit ?""",
        [key, TIMELINE_LIMIT],
    )


# --- segments ----------------------------------------------------------------------------

# Value tiers by revenue among buyers: thirds of the persons with revenue, 'no orders' apart.
_VALUE_TIER = """
    case when coalesce(total_revenue, 0) <= 0 then '4 no revenue'
         else case ntile(3) over (partition by coalesce(total_revenue, 0) > 0
                                  order by total_revenue desc)
              when 1 then '1 top third' when 2 then '2 middle third' else '3 bottom third' end
    end"""


def risk_by_value(r: Reader) -> list[dict]:
    return r.rows(
        f"""with tiered as (
                select coalesce(churn_risk_band, 'not scored') as risk_band,
                       {_VALUE_TIER} as value_tier, total_revenue
                  from marts.dim_customer_720)
            select risk_band, value_tier, count(*) as persons,
                   coalesce(sum(total_revenue), 0) as revenue
              from tiered group by all order by all"""
    )


def persona_by_stage(r: Reader) -> list[dict]:
    return r.rows(
        """select persona, journey_stage, count(*) as persons
             from marts.dim_customer_720 group by all order by all"""
    )


_PERSON_COLUMNS = """customer_key, primary_contact_id, owner, journey_stage, persona,
    churn_probability, churn_risk_band, churn_top_reasons, total_revenue, order_count,
    recency_days, last_order_at, last_touchpoint_at, marketing_consent, next_best_products"""


def at_risk_active(r: Reader, limit: int = LIST_LIMIT) -> tuple[int, list[dict]]:
    """High churn risk, or journey stage at_risk (no order for 90+ days), and not lapsed:
    still worth a retention call."""
    where = "(churn_risk_band = 'high' or journey_stage = 'at_risk') and journey_stage <> 'lapsed'"
    count = r.value(f"select count(*) from marts.dim_customer_720 where {where}")
    rows = r.rows(
        f"""select {_PERSON_COLUMNS} from marts.dim_customer_720 where {where}
             order by churn_probability desc nulls last, total_revenue desc nulls last
             limit ?""",
        [limit],
    )
    return count, rows


def lapsed_win_back(r: Reader, limit: int = LIST_LIMIT) -> tuple[int, list[dict]]:
    """Already lapsed: a win-back campaign, most valuable first."""
    where = "journey_stage = 'lapsed'"
    count = r.value(f"select count(*) from marts.dim_customer_720 where {where}")
    rows = r.rows(
        f"""select {_PERSON_COLUMNS} from marts.dim_customer_720 where {where}
             order by total_revenue desc nulls last, last_order_at desc limit ?""",
        [limit],
    )
    return count, rows


def moment_counts(r: Reader) -> list[dict]:
    return r.rows(
        """select moment_type, count(*) as moments, count(distinct customer_key) as persons,
                  count(*) filter (where days_before_as_of = 0) as today,
                  sum(value_amount) as value_at_stake
             from marts.fct_moments_of_impact group by 1 order by 1"""
    )
