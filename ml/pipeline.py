"""The four ML steps as plain functions for orchestration (Airflow tasks, the run summary).

Each takes the logical date (``datetime.date`` or ISO string) and returns a small summary
dict (orchestrate.stages makes it strict JSON: NaN / infinity as None). Heavy libraries
are imported only when a step runs, so importing this module from a DAG file is cheap.
"""

from __future__ import annotations

import datetime as dt


def newest_cutoff() -> dt.date | None:
    """The newest ``cutoff_date`` in ml.customer_features (the newest marts to train on)."""
    from customer720 import warehouse

    if not warehouse.table_exists("ml", "customer_features"):
        return None
    newest = warehouse.scalar("select max(cutoff_date) from ml.customer_features")
    if newest is None:
        return None
    return newest if isinstance(newest, dt.date) else dt.date.fromisoformat(str(newest)[:10])


def train_churn(as_of: dt.date | str) -> dict:
    """Train, evaluate and register a churn model (champion only if it wins); see ml.train."""
    from ml.train import train_churn as run

    return run(as_of)


def score_churn(as_of: dt.date | str) -> dict:
    """Champion (or newest) churn model → ml.churn_predictions for as_of; see ml.score."""
    from ml.score import score_churn as run

    return run(as_of)


def train_recommender(as_of: dt.date | str) -> dict:
    """Train, evaluate and register a ranker (champion only if it wins); see ml.recommend."""
    from ml.recommend import train_recommender as run

    return run(as_of)


def recommend(as_of: dt.date | str) -> dict:
    """Top-10 products per active customer → ml.product_recommendations, ranked by the
    champion ranker (trained by ``train_recommender``; the blend until one exists)."""
    from ml.recommend import recommend as run

    return run(as_of, evaluate=False)
