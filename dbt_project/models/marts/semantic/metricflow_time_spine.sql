-- One row per day: the calendar MetricFlow joins metrics to (cumulative metrics, gaps
-- filled with zero, metric_time). A fixed range wide enough for any history we load.
{{ config(materialized='table') }}

with

days as (

    {{ dbt.date_spine('day', "cast('1990-01-01' as date)", "cast('2050-01-01' as date)") }}

)

select cast(date_day as date) as date_day
from days
