"""The churn training set: features joined to labels for every labelled cutoff, split by
time (train / valid / calibration / holdout) and turned into model matrices."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.churn import labels
from ml.churn.features import FeatureSpec, build_matrix, infer_spec
from ml.common import data
from ml.common.config import ChurnConfig
from ml.common.holdout import draw_customers, sample_customers

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "calibration", "holdout")
HELD_SHARE = 0.2  # of the customers, for early stopping (and the fallback's calibration)
HIST = "hist__"  # prefix of order-history columns (labels, baselines) in the training frame


def history_view(frame: pd.DataFrame) -> pd.DataFrame:
    """The order-history columns of a training frame, under their own names (for baselines)."""
    cols = {c: c.removeprefix(HIST) for c in frame.columns if c.startswith(HIST)}
    return frame[["customer_key", "cutoff_date", "churned", *cols]].rename(columns=cols)


def build_training_frame(as_of: dt.date, cfg: ChurnConfig) -> tuple[pd.DataFrame, dict]:
    """Features joined to labels for every labelled cutoff, with a ``split`` column."""
    cutoffs = data.feature_cutoffs()
    labelled = labels.labelled_cutoffs(cutoffs, as_of, cfg.horizon_days)
    splits = labels.assign_splits(labelled, cfg)
    hist = labels.churn_labels(labelled, cfg)
    hist, sample = _sample_customers(hist, cfg)
    feats = data.load_features(labelled, customers=sample)
    hist = hist.rename(
        columns={
            c: HIST + c for c in hist.columns if c not in ("customer_key", "cutoff_date", "churned")
        }
    )
    frame = feats.merge(hist, on=["customer_key", "cutoff_date"], how="inner")
    dropped = len(hist) - len(frame)
    if dropped:
        log.info(
            "%d labelled rows have no feature row (customers outside ml.customer_features)", dropped
        )
    frame["split"] = frame["cutoff_date"].map(splits)
    frame = frame[frame["split"].notna()]  # purged cutoffs (labels.assign_splits)
    feature_cols = [c for c in feats.columns if c not in data.KEY_COLUMNS]
    frame = frame.sort_values(["cutoff_date", "customer_key"], kind="mergesort").reset_index(
        drop=True
    )
    if not len(frame):
        raise ValueError(
            "no labelled feature rows: ml.customer_features and marts.fct_orders "
            "do not overlap for the labelled cutoffs"
        )
    info = {
        "all_cutoffs": [c.date() for c in cutoffs],
        "sampled_customers": len(sample) if sample is not None else None,
        "feature_columns": feature_cols,
        "splits": {
            name: sorted(c.date() for c, s in splits.items() if s == name) for name in SPLITS
        },
    }
    return frame, info


def _sample_customers(hist: pd.DataFrame, cfg: ChurnConfig) -> tuple[pd.DataFrame, set | None]:
    """At most ``cfg.train_customers`` customers of the labelled rows, a random sample seeded
    by ``cfg.seed``, with all their cutoffs (so every split keeps whole customers); the
    rows as they are and None when all of them fit."""
    keys = hist["customer_key"].astype(str)
    distinct = keys.unique()
    if not cfg.train_customers or len(distinct) <= cfg.train_customers:
        return hist, None
    sample = draw_customers(distinct, cfg.train_customers, np.random.default_rng(cfg.seed))
    log.info(
        "training on a seeded sample of %d of %d customers (C720_CHURN_TRAIN_CUSTOMERS)",
        len(sample),
        len(distinct),
    )
    return hist[keys.isin(sample)], sample


def _held_customers(rows: pd.DataFrame, seed: int) -> set:
    """A fifth of the customers in ``rows``, drawn within churners and within the others: a
    random fifth of a small company can hold no churner, and a fit then has one class."""
    churner = rows.groupby("customer_key")["churned"].max().astype(bool)
    rng = np.random.default_rng(seed)
    held: set = set()
    for keys in (churner.index[churner].to_numpy(), churner.index[~churner].to_numpy()):
        if len(keys):  # a stratum with no customer draws none (and leaves rng as it is)
            held |= sample_customers(keys, HELD_SHARE, rng)
    return held


def _fallback_split(frame: pd.DataFrame, seed: int) -> pd.DataFrame:
    """With too few cutoffs, carve valid/calibration from the train customers (logged)."""
    names = set(frame["split"])
    if "valid" in names and "calibration" in names:
        return frame
    frame = frame.copy()
    if "valid" in names:
        frame.loc[frame["split"] == "valid", "split"] = "valid+calibration"
        return frame
    if "calibration" in names:
        frame.loc[frame["split"] == "calibration", "split"] = "valid+calibration"
        return frame
    held = _held_customers(frame[frame["split"] == "train"], seed)
    mask = (frame["split"] == "train") & frame["customer_key"].isin(held)
    frame.loc[mask, "split"] = "valid+calibration"
    log.warning(
        "only train + holdout cutoffs: 20%% of train customers used for early stopping "
        "and calibration"
    )
    return frame


def _early_stopping_split(frame: pd.DataFrame, seed: int, horizon_days: int) -> pd.DataFrame:
    """Early stopping on customers the booster never sees: a fifth of the customers, all
    their rows of the cutoffs the booster may fit; the others' rows of those train it.

    Label windows of neighbouring cutoffs overlap (30-day steps, H = 90), so the same
    customer with nearly the same label sits in a training cutoff and the next one: a
    valid cutoff of the same customers rewards memorising them. Measured on the demo
    company (3,000 customers): early stopping picked 943 trees and the holdout ROC-AUC
    was 0.787; on held-out customers 37 trees and 0.825 (0.816-0.822 for other draws).
    The holdout and calibration cutoffs stay as they are, later in time.

    The booster fits only cutoffs whose label window closes by the holdout cutoff (the
    purge of :func:`ml.churn.labels.assign_splits`). The valid cutoff is inside the
    holdout's label window whenever such a cutoff exists (it could not train), and fitted
    it puts the holdout's customers with nearly their holdout label into training: on the
    stationary company of tests/ml/test_model_monitoring.py (weekly grid, valid cutoff 14
    days before the holdout) the holdout ROC-AUC was 0.913 with its rows fitted and 0.858
    without, and the scores issued after training realised 0.85-0.87. Such rows are left
    out (split "purged")."""
    if "valid" not in set(frame["split"]):
        return frame  # the fallback: valid and calibration share held-out customers
    frame = frame.copy()
    holdout_cutoff = frame.loc[frame["split"] == "holdout", "cutoff_date"].min()
    inside = frame["cutoff_date"] + pd.Timedelta(days=horizon_days) > holdout_cutoff
    purged = (frame["split"] == "valid") & inside
    if purged.any():
        log.info(
            "valid cutoff(s) %s inside the holdout's label window: early stopping on "
            "held-out customers of the training cutoffs, and their rows fit nothing",
            sorted({c.date().isoformat() for c in frame.loc[purged, "cutoff_date"]}),
        )
    frame.loc[purged, "split"] = "purged"
    pool = frame["split"].isin(["train", "valid"])
    held = frame["customer_key"].isin(_held_customers(frame[pool], seed))
    frame.loc[pool & held, "split"] = "valid"
    frame.loc[pool & ~held, "split"] = "train"
    return frame


def _rows(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    return frame[
        frame["split"].isin(
            [name, "valid+calibration"] if name in ("valid", "calibration") else [name]
        )
    ]


@dataclass
class TrainingData:
    """What a churn fit needs: the labelled frame and, per split, its rows and matrices."""

    frame: pd.DataFrame  # every labelled row, with its ``split``
    info: dict  # from build_training_frame
    parts: dict[str, pd.DataFrame]  # split name → its rows
    spec: FeatureSpec
    X: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    # Rows of the valid cutoff inside the holdout's label window (split "purged"): the
    # evaluated booster fits none of them; the deployed one does (ml.churn.train). Their
    # labels are known by as_of (labels.labelled_cutoffs). Empty when nothing is purged.
    purged: pd.DataFrame


def training_data(as_of: dt.date, cfg: ChurnConfig) -> TrainingData:
    """Labels, features, split and feature matrices for ``as_of`` (train_churn's inputs)."""
    frame, info = build_training_frame(as_of, cfg)
    frame = _early_stopping_split(_fallback_split(frame, cfg.seed), cfg.seed, cfg.horizon_days)
    parts = {name: _rows(frame, name) for name in SPLITS}
    spec = infer_spec(parts["train"][info["feature_columns"]])
    return TrainingData(
        frame=frame,
        info=info,
        parts=parts,
        spec=spec,
        X={name: build_matrix(rows, spec) for name, rows in parts.items()},
        y={name: rows["churned"].to_numpy(int) for name, rows in parts.items()},
        purged=frame[frame["split"] == "purged"],
    )
