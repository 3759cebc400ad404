"""Churn labels and eligibility, computed from orders only (never from the features).

- churn = 1 when the customer has **no purchase in (cutoff, cutoff + H]**
  (``fct_orders.is_purchase``: not cancelled, not returned, no credit note); an order exactly on cutoff + H counts as a purchase, one a day later does not. With
  ``C720_CHURN_LABEL=no_purchase_no_engagement`` churn also needs **no engagement** in that
  window: no web session and no email open or click (``marts.fct_touchpoints``) — a
  customer who still reads the emails or visits the site is not counted as churned.
- eligible at a cutoff = at least one purchase on or before the cutoff (as known at the
  cutoff: an order cancelled or returned later still counts, as in the features) and the
  last one no more than ``inactivity_days`` before it (long-lapsed customers are not
  "churning", they are gone).
- a cutoff is labelled (usable for training) only when cutoff + H <= as_of.
"""

from __future__ import annotations

import datetime as dt
import logging

import pandas as pd

from ml.churn.data import order_history
from ml.common.config import ChurnConfig

log = logging.getLogger(__name__)


def labelled_cutoffs(
    cutoffs: list[pd.Timestamp], as_of: dt.date, horizon_days: int
) -> list[pd.Timestamp]:
    """Cutoffs whose whole horizon has happened by ``as_of`` (oldest first)."""
    limit = pd.Timestamp(as_of) - pd.Timedelta(days=horizon_days)
    return sorted(c for c in cutoffs if c <= limit)


def needs_engagement(cfg: ChurnConfig) -> bool:
    """Whether the label reads engagement (``order_history(..., engagement=True)``)."""
    return cfg.label == "no_purchase_no_engagement"


def label_history(history: pd.DataFrame, cfg: ChurnConfig) -> pd.DataFrame:
    """Add ``eligible`` and ``churned`` to :func:`ml.churn.data.order_history` rows."""
    out = history.copy()
    out["eligible"] = (out["n_orders"] > 0) & (out["days_since_last_order"] <= cfg.inactivity_days)
    churned = out["future_orders"] == 0
    if needs_engagement(cfg):
        if "future_engagements" not in out.columns:
            raise ValueError(
                "the 'no_purchase_no_engagement' label needs order_history(..., engagement=True)"
            )
        churned &= out["future_engagements"] == 0
    out["churned"] = churned.astype("int8")
    return out


def churn_labels(cutoffs: list[pd.Timestamp], cfg: ChurnConfig) -> pd.DataFrame:
    """customer_key, cutoff_date, churned for every eligible customer at each cutoff."""
    history = order_history(cutoffs, cfg.horizon_days, needs_engagement(cfg))
    hist = label_history(history, cfg)
    hist = hist[hist["eligible"]]
    log.info(
        "labelled %d eligible (customer, cutoff) rows over %d cutoffs (label %s); churn rate %.3f",
        len(hist),
        len(cutoffs),
        cfg.label,
        hist["churned"].mean() if len(hist) else float("nan"),
    )
    return hist


def assign_splits(cutoffs: list[pd.Timestamp], cfg: ChurnConfig) -> dict[pd.Timestamp, str]:
    """Time-based split of labelled cutoffs: newest → holdout, then calibration, valid, train.

    Needs at least 2 labelled cutoffs. With fewer than the configured number, calibration
    and validation fall back to sharing cutoffs (logged); the holdout always stays separate.
    Calibration and validation take only cutoffs inside the holdout's label window when
    there are any (those could not train: purge, below), so a coarse grid spends no
    trainable cutoff on them.
    """
    cutoffs = sorted(cutoffs, reverse=True)
    if len(cutoffs) < 2:
        raise ValueError(
            f"need at least 2 labelled cutoffs (cutoff + {cfg.horizon_days} days <= as_of); "
            f"found {len(cutoffs)}. Build ml.customer_features with more history, use a later "
            "--as-of, or lower C720_CHURN_HORIZON_DAYS."
        )
    splits: dict[pd.Timestamp, str] = {}
    plan = [
        ("holdout", cfg.n_holdout_cutoffs),
        ("calibration", cfg.n_calibration_cutoffs),
        ("valid", cfg.n_valid_cutoffs),
    ]
    # Purge: a training label must be fully observed by the holdout cutoff
    # (cutoff + H <= holdout cutoff), else the same customer with nearly the same label sits
    # in training and holdout (fine grids, long horizons). Cutoffs in between are left out.
    # On the default grid (30 days, H = 90) nothing is purged.
    limit = cutoffs[cfg.n_holdout_cutoffs - 1] - pd.Timedelta(days=cfg.horizon_days)
    # Calibration and validation take cutoffs that could not train anyway (inside the
    # holdout's label window) before any that could: with few cutoffs (CDNOW: 91-day steps,
    # H = 182) one such cutoff is shared by both rather than a training one being spent.
    overlap = sum(1 for c in cutoffs[cfg.n_holdout_cutoffs :] if c > limit)
    i = 0
    for name, n in plan:
        for _ in range(n):
            if len(cutoffs) - i <= 1 and name != "holdout":
                break  # keep at least one cutoff for training
            if name != "holdout" and 0 < overlap <= i - cfg.n_holdout_cutoffs:
                break  # the overlapping cutoffs are used up: keep the trainable ones
            splits[cutoffs[i]] = name
            i += 1
    first_holdout = min(c for c, name in splits.items() if name == "holdout")
    rest = cutoffs[i:]
    train = [c for c in rest if c <= limit]
    if not train:
        log.warning(
            "no training cutoff ends its label window by the holdout cutoff %s; "
            "training on the overlapping cutoffs %s (use a coarser grid or more history)",
            first_holdout.date(),
            [c.date().isoformat() for c in rest],
        )
        train = rest
    elif len(train) < len(rest):
        log.info(
            "purged %d cutoff(s) whose label window overlaps the holdout's: %s",
            len(rest) - len(train),
            [c.date().isoformat() for c in rest if c not in train],
        )
    for c in train:
        splits[c] = "train"
    names = set(splits.values())
    if "calibration" not in names or "valid" not in names:
        log.warning(
            "few labelled cutoffs (%d): calibration/validation share the rows available",
            len(cutoffs),
        )
    return splits
