"""A classical baseline as the churn champion, when LightGBM does not beat it.

When the LightGBM model's holdout ROC-AUC is not above the best baseline's (the paired
bootstrap interval of the difference includes 0, :func:`ml.common.evaluate.paired_auc_difference`),
that baseline is the honest champion: :func:`ml.churn.train.train_churn` fits it as a
:class:`BaselineModel` and registers it through the same ``promote()`` as any model, with a
version ``baseline-<name>-<as_of>-<hash>``. Scoring then gives probabilities, risk bands and
reasons in plain words from its own inputs.

Each baseline becomes a small logistic regression on its inputs (fitted on the training
rows' order history), so it outputs probabilities:

- ``recency_rule``: log(1 + days since the last order) — monotone, so it ranks as the rule;
- ``rfm_logistic``: log recency, frequency, monetary — the baseline itself;
- ``bgnbd``: log(1 + expected purchases in the horizon), BG/NBD fitted on the scored rows'
  own histories (no labels), as the baseline is evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ml.churn import baselines

NAMES = {"recency_rule": "recency", "rfm_logistic": "RFM logistic", "bgnbd": "BG/NBD"}


def _days(v: float) -> str:
    v = int(round(v))
    return f"{v:,} day" + ("" if v == 1 else "s")


@dataclass
class BaselineModel:
    name: str  # recency_rule | rfm_logistic | bgnbd
    horizon_days: int
    seed: int = 42
    pipeline: object = None
    params: dict = field(default_factory=dict)

    def inputs(self, history: pd.DataFrame) -> np.ndarray:
        if self.name == "recency_rule":
            return np.log1p(history[["days_since_last_order"]].to_numpy(float))
        if self.name == "rfm_logistic":
            return baselines._rfm(history)
        if self.name == "bgnbd":
            expected, self.params = baselines.bgnbd_expected(history, self.horizon_days)
            return np.log1p(np.clip(expected, 0, None)).reshape(-1, 1)
        raise ValueError(f"unknown baseline {self.name!r}")

    def fit(self, train: pd.DataFrame) -> BaselineModel:
        self.pipeline = make_pipeline(
            StandardScaler(), LogisticRegression(max_iter=1000, random_state=self.seed)
        )
        self.pipeline.fit(self.inputs(train), train["churned"].to_numpy(int))
        return self

    def predict_proba(self, history: pd.DataFrame) -> np.ndarray:
        if not len(history):
            return np.zeros(0)
        return self.pipeline.predict_proba(self.inputs(history))[:, 1]

    def reasons(self, history: pd.DataFrame) -> list[str]:
        """Plain words from the baseline's own inputs, e.g. "no order for 210 days"."""
        days = history["days_since_last_order"].to_numpy(float)
        parts = [[f"no order for {_days(d)}"] for d in days]
        if self.name in ("rfm_logistic", "bgnbd"):
            n = history["n_orders"].to_numpy(float)
            for p, k in zip(parts, n, strict=True):
                p.append(f"{int(k):,} order" + ("" if int(k) == 1 else "s") + " so far")
        if self.name == "rfm_logistic":
            spent = history["monetary"].to_numpy(float)
            for p, s in zip(parts, spent, strict=True):
                p.append(f"{s:,.0f} spent so far")
        if self.name == "bgnbd" and len(history):
            expected, _ = baselines.bgnbd_expected(history, self.horizon_days)
            for p, e in zip(parts, expected, strict=True):
                p.append(f"about {e:.1f} orders expected in the next {_days(self.horizon_days)}")
        return ["; ".join(p) for p in parts]


def fit_baseline(name: str, train: pd.DataFrame, horizon_days: int, seed: int) -> BaselineModel:
    return BaselineModel(name, horizon_days, seed).fit(train)
