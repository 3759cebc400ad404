{#-
    Spark only: the SCD2 history of CRM contacts with the dbt snapshot's columns (the
    snapshot snap_crm__contacts in snapshots/ on DuckDB and Postgres): the versions of
    stg_crm__contact_versions, each valid until the contact's next version.
-#}
{{ config(enabled=(target.type == 'spark'), materialized='view') }}

select
    versions.*,
    lead(versions.dbt_valid_from) over (
        partition by versions.contact_id
        order by versions.dbt_valid_from
    ) as dbt_valid_to
from {{ ref('stg_crm__contact_versions') }} as versions
