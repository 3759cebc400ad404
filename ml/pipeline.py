"""The ML stage's public entry points: train and score each model, and ``newest_cutoff``.

Each takes the logical date (``datetime.date`` or ISO string) and returns a small summary
dict (orchestrate.stages makes it strict JSON: NaN / infinity as None). Heavy libraries
are imported only when a step runs, so importing this module from a DAG file is cheap.
"""

from __future__ import annotations

import datetime as dt


def train_churn(as_of: dt.date | str) -> dict:
    """Train, evaluate and register a churn model (champion only if it wins); see ml.churn.train."""
    from ml.churn.train import train_churn as run

    return run(as_of)


def score_churn(as_of: dt.date | str) -> dict:
    """Champion (or newest) churn model → ml.churn_predictions for as_of; see ml.churn.score."""
    from ml.churn.score import score_churn as run

    return run(as_of)


def train_clv(as_of: dt.date | str) -> dict:
    """Train, evaluate and register a CLV model (champion only if it wins); see ml.clv.train."""
    from ml.clv.train import train_clv as run

    return run(as_of)


def score_clv(as_of: dt.date | str) -> dict:
    """Champion CLV model → ml.clv_predictions for as_of; see ml.clv.score."""
    from ml.clv.score import score_clv as run

    return run(as_of)


def train_recommender(as_of: dt.date | str) -> dict:
    """Train, evaluate and register a ranker (champion only if it wins); see ml.recs.train."""
    from ml.recs.train import train_recommender as run

    return run(as_of)


def recommend(as_of: dt.date | str) -> dict:
    """Top-10 products per active customer → ml.product_recommendations, ranked by the
    champion ranker (trained by ``train_recommender``; the blend until one exists)."""
    from ml.recs.score import recommend as run

    return run(as_of)


def monitor_models(as_of: dt.date | str) -> dict:
    """Realised quality of closed issue weeks and PSI of today's scores → ml.model_monitoring
    (and the monitoring chart of the churn model's report); see ml.monitoring.monitor."""
    from ml.monitoring.monitor import monitor_models as run

    return run(as_of)


def newest_cutoff() -> dt.date | None:
    """The newest ``cutoff_date`` in ``ml.customer_features`` (None if missing or empty):
    the date the ML inputs were last built for. Orchestration asks here instead of
    querying ML tables itself."""
    from ml.common.data import newest_cutoff as run

    return run()
