"""The CLV training set: ``ml.customer_features`` joined to the revenue labels of every
labelled cutoff (cutoff + L <= as_of), split by customer.

Why by customer and not by time as churn: a label window of months overlaps the next
cutoffs' windows, so a time split either leaks (the same customer's same months in
training and holdout) or purges all but one or two cutoffs. Here the holdout is a fifth
of the customers at the newest labelled cutoff; none of their rows, at any cutoff, trains
or stops the model. What this does not measure: a shift between the period trained on and
the future (the benches measure that on truly later revenue: bench/clv_truth.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.churn.features import FeatureSpec, build_matrix, infer_spec
from ml.clv import labels
from ml.clv.model import add_probabilistic
from ml.common import data
from ml.common.config import ClvConfig
from ml.common.holdout import sample_customers

log = logging.getLogger(__name__)

HIST = "hist__"  # order-history columns (labels, baselines), not features
HISTORY_COLUMNS = ("n_orders", "monetary", "frequency", "recency_span_days", "age_days")


def history_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The order-history columns of a training frame under their own names (baselines)."""
    cols = {c: c.removeprefix(HIST) for c in frame.columns if c.startswith(HIST)}
    return frame[["customer_key", "cutoff_date", *cols]].rename(columns=cols)


@dataclass
class ClvTrainingData:
    frame: pd.DataFrame  # every labelled row, with ``split`` and the ``revenue`` label
    label_days: int
    cutoffs: list[dt.date]
    holdout_cutoff: dt.date
    spec: FeatureSpec
    parts: dict[str, pd.DataFrame]
    X: dict[str, pd.DataFrame]
    y: dict[str, np.ndarray]


def training_data(as_of: dt.date, cfg: ClvConfig) -> ClvTrainingData:
    cutoffs = data.feature_cutoffs()
    label_days = cfg.label_days or labels.label_window(
        cutoffs, as_of, cfg.horizon_days, labels.first_order_day()
    )
    limit = pd.Timestamp(as_of) - pd.Timedelta(days=label_days)
    labelled = sorted(c.date() for c in cutoffs if c <= limit)
    if len(labelled) < 1:
        raise ValueError(
            f"no feature cutoff is {label_days} days before {as_of} (C720_CLV_LABEL_DAYS); "
            "lower it or build ml.customer_features with more history"
        )
    hist = labels.clv_labels(labelled, label_days, cfg.inactivity_days)
    feats = data.load_features(labelled)
    feature_cols = [c for c in feats.columns if c not in data.KEY_COLUMNS]
    renamed = hist.rename(columns={c: HIST + c for c in HISTORY_COLUMNS})
    keep = ["customer_key", "cutoff_date", "revenue", *(HIST + c for c in HISTORY_COLUMNS)]
    frame = feats.merge(renamed[keep], on=["customer_key", "cutoff_date"], how="inner")
    frame, _ = add_probabilistic(frame, hist, label_days)
    frame = frame.sort_values(["cutoff_date", "customer_key"], kind="mergesort").reset_index(
        drop=True
    )
    if frame.empty:
        raise ValueError("no labelled CLV rows: features and orders do not overlap")
    holdout_cutoff = max(labelled)
    at_holdout = frame["cutoff_date"] == pd.Timestamp(holdout_cutoff)
    held = sample_customers(
        frame.loc[at_holdout, "customer_key"].to_numpy(),
        cfg.holdout_share,
        np.random.default_rng(cfg.seed),
    )
    is_held = frame["customer_key"].isin(held)
    rest = frame.loc[~is_held, "customer_key"].to_numpy()
    valid = sample_customers(rest, cfg.valid_share, np.random.default_rng(cfg.seed + 1))
    frame["split"] = np.where(
        is_held, "", np.where(frame["customer_key"].isin(valid), "valid", "train")
    )
    frame.loc[is_held & at_holdout, "split"] = "holdout"
    frame = frame[frame["split"] != ""].reset_index(drop=True)  # held customers' older rows
    model_cols = [*feature_cols, *(c for c in frame.columns if c.startswith("pm_"))]
    parts = {name: frame[frame["split"] == name] for name in ("train", "valid", "holdout")}
    spec = infer_spec(parts["train"][model_cols])
    log.info(
        "CLV training set: label window %d days, cutoffs %s, rows %s",
        label_days,
        [c.isoformat() for c in labelled],
        {k: len(v) for k, v in parts.items()},
    )
    return ClvTrainingData(
        frame=frame,
        label_days=label_days,
        cutoffs=labelled,
        holdout_cutoff=holdout_cutoff,
        spec=spec,
        parts=parts,
        X={k: build_matrix(v, spec) for k, v in parts.items()},
        y={k: v["revenue"].to_numpy(float) for k, v in parts.items()},
    )
