"""Business rules applied to the ranked candidates before the top k is cut.

- Nothing discontinued or out of the catalogue: enforced earlier, every candidate source
  proposes allowed products only (``RecData.allowed``).
- Optional (``RecConfig.exclude_just_bought``): no product the customer bought in the last
  ``just_bought_days`` days whose repeat rate (share of its buyers who bought it on two or
  more days) is below ``repeatable_min_rate`` — nobody needs a second sofa this month.
- Diversity: at most ``max_per_category`` products of one category in a customer's top k.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.common.config import RecConfig
from ml.recs.candidates import Snapshot


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
    x = x.assign(cat=snap.data.category[x["item"].to_numpy()])
    x = x.sort_values(["cust", "score", "item"], ascending=[True, False, True])
    if cfg.max_per_category < cfg.k:
        x = x[x.groupby(["cust", "cat"]).cumcount().to_numpy() < cfg.max_per_category]
    out = x.groupby("cust").head(cfg.k).drop(columns="cat").copy()
    out["rank"] = out.groupby("cust").cumcount() + 1
    return out.reset_index(drop=True)
