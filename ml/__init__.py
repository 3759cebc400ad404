"""customer720 machine learning: churn model, recommender, evaluation, registry, scoring.

Entry points (also reachable as ``python -m ml train|score|recommend|report``):

- ``ml.train.train_churn(as_of)`` — labels, LightGBM + calibration, baselines, report, registry.
- ``ml.score.score_churn(as_of)`` — champion model → ``ml.churn_predictions``.
- ``ml.recommend.recommend(as_of)`` — candidates + blend → ``ml.product_recommendations``.

Each returns a small dict summary suitable for an Airflow task's return value. Importing
``ml`` itself is cheap (no LightGBM / matplotlib), so DAG files can import it at parse time.
"""
