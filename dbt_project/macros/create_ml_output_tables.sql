{#-
    on-run-start hook: make sure the ML output tables exist (empty) so that the
    `tag:needs_scores` models build even when the ML stage has not written scores yet.
    Portable DDL (DuckDB and Postgres both accept these types and `if not exists`).
-#}
{% macro create_ml_output_tables() %}
    {% if execute %}
    create schema if not exists ml;
    create table if not exists ml.churn_predictions (
        customer_key varchar,
        as_of_date date,
        churn_probability double precision,
        risk_band varchar,
        top_reasons varchar,
        model_version varchar,
        scored_at timestamp
    );
    create table if not exists ml.product_recommendations (
        customer_key varchar,
        as_of_date date,
        rank integer,
        product_id bigint,
        score double precision,
        reason varchar,
        model_version varchar,
        scored_at timestamp
    );
    {% endif %}
{% endmacro %}
