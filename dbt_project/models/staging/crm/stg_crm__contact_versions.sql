{#-
    Spark only: the SCD2 history of CRM contacts that the dbt snapshot snap_crm__contacts
    (snapshots/) keeps on DuckDB and Postgres. dbt-spark's snapshots need a MERGE (Delta,
    Iceberg, Hudi), which plain Parquet lacks, so here the history is an append-only table
    of versions: each build appends the contacts whose updated_at is newer than their latest
    stored version (the timestamp strategy); snap_crm__contacts (a view, Spark only) ends
    a version where the next begins (dbt_valid_to), as the snapshot does.
-#}
{{
    config(
        enabled=(target.type == 'spark'),
        materialized='incremental',
        incremental_strategy='append',
        schema='staging',
    )
}}

with

source as (

    select * from {{ source('crm', 'crm_contacts') }}

),

new_versions as (

    select source.*
    from source
    {% if is_incremental() %}
    left join (
        select contact_id, max(dbt_updated_at) as latest
        from {{ this }}
        group by contact_id
    ) as stored
        on source.contact_id = stored.contact_id
    where stored.latest is null or source.updated_at > stored.latest
    {% endif %}

)

select
    new_versions.*,
    {{ dbt.hash("concat(new_versions.contact_id, '|', cast(new_versions.updated_at as string))") }} as dbt_scd_id,
    new_versions.updated_at as dbt_updated_at,
    new_versions.updated_at as dbt_valid_from
from new_versions
