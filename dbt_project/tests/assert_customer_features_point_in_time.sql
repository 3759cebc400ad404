-- Guard rails for ml.customer_features: nothing from after the cutoff can show up.
select customer_key, cutoff_date, 'negative recency or tenure' as problem
from {{ ref('customer_features') }}
where recency_days < 0 or tenure_days < 0 or days_since_first_order < 0
   or days_since_last_session < 0
union all
select customer_key, cutoff_date, 'cutoff_at is not the start of cutoff_date' as problem
from {{ ref('customer_features') }}
where cast(cutoff_at as date) <> cutoff_date
