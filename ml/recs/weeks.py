"""The recommender's timeline of weekly labelled cutoffs (h = ``RecConfig.horizon_days``).

With T = as_of: evaluation cutoff E = T − h (labels in (E, T]), validation V = E − h,
training cutoffs V − h, …, V − train_weeks·h. A :class:`Week` holds, at one cutoff, the
candidates and point-in-time features of the customers who bought in the week after it,
labelled with what they bought.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ml.common.config import RecConfig
from ml.recs import rank
from ml.recs.candidates import Generator, Snapshot, active_customers, cap_candidates
from ml.recs.data import RecData

log = logging.getLogger(__name__)


def cutoffs(
    as_of: pd.Timestamp, cfg: RecConfig
) -> tuple[list[pd.Timestamp], pd.Timestamp, pd.Timestamp]:
    """(training cutoffs oldest first, validation cutoff, evaluation cutoff) for ``as_of``."""
    h = pd.Timedelta(days=cfg.horizon_days)
    ev_at, valid_at = as_of - h, as_of - 2 * h
    return [valid_at - i * h for i in range(cfg.train_weeks, 0, -1)], valid_at, ev_at


@dataclass
class Week:
    """One labelled cutoff: candidates and features of the customers who bought after it."""

    at: pd.Timestamp
    snap: Snapshot
    long: pd.DataFrame  # every source's candidates (uncapped; the baselines use them)
    feats: pd.DataFrame  # capped candidates with features, label and qid
    truth: dict[int, set[int]]


def labelled_week(d: RecData, at: pd.Timestamp, cfg: RecConfig, qid: int, sample: int = 0) -> Week:
    """The week after ``at``: its buyers' candidates, features and labels, built
    ``cfg.batch_customers`` customers at a time (each customer's rows depend only on their
    own history and the snapshot's statistics, so batching changes no value).

    ``sample`` > 0 keeps at most that many buyers, a random sample seeded by (seed, qid):
    training weeks only, to bound the training matrix (its cost in MAP@10 is measured in
    ml/README.md). The validation and evaluation weeks always keep every buyer."""
    snap = Snapshot(d.until(at), at, cfg)
    after = d.items[
        (d.items["ordered_at"] > at)
        & (d.items["ordered_at"] <= at + pd.Timedelta(days=cfg.horizon_days))
    ]
    custs = np.intersect1d(active_customers(snap), after["cust"].unique()).astype(np.int32)
    buyers = len(custs)
    if 0 < sample < buyers:
        rng = np.random.default_rng([cfg.seed, qid])
        custs = np.sort(rng.choice(custs, sample, replace=False)).astype(np.int32)
    after = after[after["cust"].isin(custs)]
    longs, parts = [], []
    for lo in range(0, len(custs), max(cfg.batch_customers, 1)):
        long = Generator(snap, custs[lo : lo + cfg.batch_customers]).generate()
        parts.append(rank.candidate_features(snap, cap_candidates(long, cfg.max_candidates)))
        longs.append(long)
    long = pd.concat(longs, ignore_index=True) if longs else Generator(snap, custs).generate()
    feats = (
        pd.concat(parts, ignore_index=True)
        if parts
        else rank.candidate_features(snap, cap_candidates(long, cfg.max_candidates))
    )
    feats["label"] = rank.label(feats, after, d.n_items)
    feats["qid"] = np.int64(qid) * d.n_customers + feats["cust"].to_numpy(np.int64)
    truth = after.groupby("cust")["item"].apply(lambda s: set(map(int, s))).to_dict()
    n_true = sum(len(v) for v in truth.values())
    log.info(
        "week %s: %d buyers%s, %d candidates (%.0f a customer), candidate recall %.3f",
        at.date(),
        len(custs),
        f" (a sample of {buyers})" if len(custs) < buyers else "",
        len(feats),
        len(feats) / max(len(custs), 1),
        feats["label"].sum() / max(n_true, 1),
    )
    return Week(at, snap, long, feats, truth)


def training_rows(d: RecData, at: pd.Timestamp, cfg: RecConfig, qid: int) -> pd.DataFrame:
    """A training week's labelled features only, its buyers sampled (``cfg.train_customers``):
    the week's snapshot and candidates are released at once, so training holds one week's
    snapshot at a time instead of every week's."""
    return labelled_week(d, at, cfg, qid, sample=cfg.train_customers).feats
