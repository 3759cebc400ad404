"""customer720 machine learning: churn model and product recommendations.

Layout: ``ml.common`` (config, data access, metrics, registry with the one ``promote()``,
the output-table contract, the simulator oracle), ``ml.churn`` and ``ml.recs`` (one small
module per step). Entry points for orchestration are in ``ml.pipeline``:
``train_churn``, ``score_churn``, ``train_recommender``, ``recommend`` (scoring only) and
``newest_cutoff``; the command line is ``python -m ml churn|recs train|score|report``.

Each step returns a small dict summary suitable for an Airflow task's return value. Importing
``ml`` or ``ml.pipeline`` is cheap (no LightGBM / matplotlib), so DAG files can import it at
parse time.
"""
