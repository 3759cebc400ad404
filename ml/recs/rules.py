"""Business rules applied to the ranked candidates before the top k is cut.

- Nothing discontinued or out of the catalogue: enforced earlier, every candidate source
  proposes allowed products only (``RecData.allowed``).
- Optional (``RecConfig.exclude_just_bought``): no product the customer bought in the last
  ``just_bought_days`` days whose repeat rate (share of its buyers who bought it on two or
  more days) is below ``repeatable_min_rate`` — nobody needs a second sofa this month.
- Diversity: at most ``max_per_category`` products of one category in a customer's top k.
  Only real categories count: products without one (null / "unknown") are never capped
  together, and a catalogue with fewer than two real categories has no category cap at all
  (logged once at WARNING; the report says so) — otherwise a company without product
  categories would get 5 recommendations a customer instead of k.

What the rules cost is measured on the evaluation week (:func:`ml.recs.evaluate.evaluate`:
MAP@k with and without them) and shown in the report and the run summary.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from ml.common.config import RecConfig
from ml.recs.candidates import Snapshot
from ml.recs.data import RecData

log = logging.getLogger(__name__)

NO_CATEGORY = {"unknown", "", "none", "null", "nan"}
_warned: set[tuple] = set()


def real_category(d: RecData) -> np.ndarray:
    """Per category code: is it a real category (not null / "unknown")."""
    return np.array([str(c).strip().lower() not in NO_CATEGORY for c in d.categories], bool)


def category_cap(d: RecData, cfg: RecConfig) -> tuple[int | None, str]:
    """(cap, why): the per-category cap in force for this catalogue, None when off."""
    if cfg.max_per_category >= cfg.k:
        return None, f"off (C720_REC_MAX_PER_CATEGORY = {cfg.max_per_category} >= {cfg.k})"
    real = real_category(d)
    n_real = int(np.unique(d.category[d.allowed & real[d.category]]).size) if d.n_items else 0
    if n_real < 2:
        why = (
            f"off: the catalogue has {n_real} real product categor"
            f"{'y' if n_real == 1 else 'ies'} (null / 'unknown' do not count), so a cap of "
            f"{cfg.max_per_category} per category would cut every list to "
            f"{cfg.max_per_category}"
        )
        key = (tuple(map(str, d.categories)), cfg.max_per_category)
        if key not in _warned:
            _warned.add(key)
            log.warning("recommendations: category cap %s", why)
        return None, why
    return cfg.max_per_category, (
        f"at most {cfg.max_per_category} of one category in a list ({n_real} categories)"
    )


def apply_rules(scored: pd.DataFrame, snap: Snapshot, cfg: RecConfig) -> pd.DataFrame:
    """Top k per customer of ``scored`` (cust, item, score) under the rules: cust, item,
    score, rank."""
    x = scored[["cust", "item", "score"]]
    if cfg.exclude_just_bought and len(x):
        rate, _ = snap.repeat_stats
        recent = snap.lines[snap.lines["age"] <= cfg.just_bought_days]
        n = snap.data.n_items
        just = np.unique(recent["cust"].to_numpy(np.int64) * n + recent["item"].to_numpy())
        key = x["cust"].to_numpy(np.int64) * n + x["item"].to_numpy()
        one_off = np.nan_to_num(rate[x["item"].to_numpy()], nan=0.0) < cfg.repeatable_min_rate
        x = x[~(np.isin(key, just) & one_off)]
    d = snap.data
    cap, _ = category_cap(d, cfg)
    items = x["item"].to_numpy()
    cat = d.category[items].astype(np.int64)
    # A product without a real category is its own group: never capped with the others.
    x = x.assign(cat=np.where(real_category(d)[cat], cat, -1 - items.astype(np.int64)))
    x = x.sort_values(["cust", "score", "item"], ascending=[True, False, True])
    if cap is not None:
        x = x[x.groupby(["cust", "cat"]).cumcount().to_numpy() < cap]
    out = x.groupby("cust").head(cfg.k).drop(columns="cat").copy()
    out["rank"] = out.groupby("cust").cumcount() + 1
    return out.reset_index(drop=True)
